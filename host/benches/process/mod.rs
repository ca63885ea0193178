//! A daemon process of its own per measurement, for the benchmarks whose
//! figures a daemon sharing the bench's process would blur (its memory, or
//! work another daemon left running).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `greenlight serve` on loopback and a scratch directory, killed when
/// dropped.
pub struct Daemon {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin token.
    pub token: String,
    _scratch: tempfile::TempDir,
}

impl Daemon {
    /// Starts a daemon with `config` (TOML) as its configuration file.
    pub fn start(config: &str) -> anyhow::Result<Daemon> {
        let scratch = tempfile::tempdir()?;
        let data = scratch.path().join("data");
        let config_file = scratch.path().join("config.toml");
        std::fs::write(&config_file, config)?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_greenlight"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config_file)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut base = None;
        for line in BufReader::new(stdout).lines() {
            if let Some(addr) = line?.strip_prefix("listening on ") {
                base = Some(addr.to_string());
                break;
            }
        }
        let base = base.ok_or_else(|| anyhow::anyhow!("the daemon did not start"))?;
        let token = std::fs::read_to_string(data.join("admin-token"))?
            .trim()
            .to_string();
        Ok(Daemon {
            child,
            base,
            token,
            _scratch: scratch,
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
