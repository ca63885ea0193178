//! What concurrent plugin uploads cost in memory: the daemon's peak
//! resident memory (VmHWM) grown by one upload just under the size limit,
//! against eight such uploads sent at once, each on a fresh daemon process.
//! Run with the default `max_concurrent_uploads` (2: the others wait,
//! unread) and with 8 (every body read at once, as before uploads took
//! turns), in one run. Prints the growth of each and the ratio of eight to
//! one.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const CONCURRENT: usize = 8;
const LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// The no-std fixture check padded with a custom section to just under the
/// upload limit.
fn padded_component() -> anyhow::Result<Vec<u8>> {
    let path = Path::new(env!("GREENLIGHT_PLUGINS_DIR")).join("fixture_no_std_check.wasm");
    let mut bytes = std::fs::read(path)?;
    let name = b"padding";
    let payload = LIMIT_BYTES - bytes.len() - 64 * 1024;
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(section.len() + payload, 0);
    bytes.push(0); // a custom section
    let mut size = section.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    Ok(bytes)
}

struct Daemon {
    child: Child,
    base: String,
    token: String,
    _scratch: tempfile::TempDir,
}

impl Daemon {
    fn start(max_concurrent_uploads: u32) -> anyhow::Result<Daemon> {
        let scratch = tempfile::tempdir()?;
        let data = scratch.path().join("data");
        let config = scratch.path().join("config.toml");
        std::fs::write(
            &config,
            format!("[plugins]\nmax_concurrent_uploads = {max_concurrent_uploads}\n"),
        )?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_greenlight"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
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

    /// A line of the daemon's /proc status, in KiB.
    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no {field} in /proc status"))
    }

    /// Peak resident memory grown by `uploads` uploads sent at once, MiB.
    async fn growth(&self, component: &[u8], uploads: usize) -> anyhow::Result<f64> {
        let before = self.status_kib("VmRSS:")?;
        let http = reqwest::Client::new();
        let mut sends = Vec::new();
        for i in 0..uploads {
            let request = http
                .post(format!(
                    "{}/api/v1/plugins?name=big{i}&version=1.0.0",
                    self.base
                ))
                .bearer_auth(&self.token)
                .body(component.to_vec());
            sends.push(tokio::spawn(async move {
                let response = request.send().await?;
                let status = response.status();
                anyhow::ensure!(status.is_success(), "{status}: {}", response.text().await?);
                anyhow::Ok(())
            }));
        }
        for send in sends {
            send.await??;
        }
        let peak = self.status_kib("VmHWM:")?;
        Ok(peak.saturating_sub(before) as f64 / 1024.0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let component = padded_component()?;
    println!(
        "Peak daemon memory grown by uploads of {:.1} MiB (limit {} MiB)",
        component.len() as f64 / (1024.0 * 1024.0),
        LIMIT_BYTES / (1024 * 1024)
    );
    println!(
        "  {:<28} {:>10} {:>12} {:>8}",
        "max_concurrent_uploads", "1 upload", "8 at once", "ratio"
    );
    for turns in [2, CONCURRENT as u32] {
        let one = Daemon::start(turns)?.growth(&component, 1).await?;
        let many = Daemon::start(turns)?.growth(&component, CONCURRENT).await?;
        println!(
            "  {:<28} {:>7.0} MiB {:>8.0} MiB {:>8.2}",
            turns,
            one,
            many,
            many / one
        );
    }
    Ok(())
}
