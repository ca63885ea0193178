//! The daemon's configuration: one TOML file into one `Config`, with
//! command-line flags taking precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugins;

/// Everything the daemon is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Where the store, compiled artifacts and the admin token live.
    pub data_dir: PathBuf,
    /// The plugin runtime.
    pub plugins: plugins::Options,
    /// Starts the release clock at this instant (milliseconds since the
    /// Unix epoch) and moves it only through `POST /api/v1/clock`, so that
    /// bake periods and approval expiries pass on request. For tests and
    /// demos; unset, the clock is the machine's.
    pub manual_clock_ms: Option<u64>,
    /// Threads that run releases (plugin calls and journal commits), apart
    /// from the threads that serve the API.
    pub engine_threads: usize,
    /// How much the release threads yield the processor to API requests:
    /// the Linux nice value they run at (0 to 19; 0 is equal footing with
    /// the API's threads).
    /// Plugin calls and journal commits of many releases at once then
    /// delay one another by microseconds instead of delaying a read by
    /// milliseconds.
    pub engine_nice: i32,
    /// The scheduler.
    pub scheduler: crate::scheduler::Options,
    /// Where the key that seals plugin secrets is kept.
    pub security: crate::secrets_key::Options,
    /// Answers state-changing requests before their change is durable.
    /// Never read from a file: only the durability benchmark sets it, to
    /// measure what the durability promise costs.
    #[serde(skip)]
    pub answer_before_durable: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir: PathBuf::from("greenlight-data"),
            plugins: plugins::Options::default(),
            manual_clock_ms: None,
            engine_threads: 2,
            engine_nice: 10,
            scheduler: crate::scheduler::Options::default(),
            security: crate::secrets_key::Options::default(),
            answer_before_durable: false,
        }
    }
}

impl Config {
    /// Reads a config file, naming the file and the problem when it is bad.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_named() {
        let err = toml::from_str::<Config>("[plugins]\nmemory = 3\n").unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn the_scheduler_section_is_read_and_checked() {
        let c: Config = toml::from_str("[scheduler]\ngrace_ms = 5000\n").unwrap();
        assert_eq!(c.scheduler.grace_ms, 5000);
        assert_eq!(c.scheduler.resolve_timeout_ms, 10_000);
        let err = toml::from_str::<Config>("[scheduler]\ngrace = 5\n").unwrap_err();
        assert!(err.to_string().contains("grace"), "{err}");
    }

    #[test]
    fn the_security_section_names_the_key_file_and_nothing_else() {
        let c: Config = toml::from_str("[security]\nsecrets_key_file = \"/etc/gl/key\"\n").unwrap();
        assert_eq!(
            c.security.secrets_key_file,
            Some(PathBuf::from("/etc/gl/key"))
        );
        assert_eq!(Config::default().security.secrets_key_file, None);
        let err = toml::from_str::<Config>("[security]\nkey_file = \"k\"\n").unwrap_err();
        assert!(err.to_string().contains("key_file"), "{err}");
    }

    #[test]
    fn partial_files_keep_the_defaults() {
        let c: Config = toml::from_str("[plugins]\ndefault_deadline_ms = 100\n").unwrap();
        assert_eq!(c.plugins.default_deadline_ms, 100);
        assert_eq!(c.plugins.max_concurrent_invocations, 64);
        assert_eq!(c.plugins.keep_resident_kib, 192);
    }

    #[test]
    fn the_resident_windows_are_set_from_the_file() {
        let c: Config = toml::from_str(
            "[plugins]
keep_resident_kib = 256
table_keep_resident_kib = 32
",
        )
        .unwrap();
        assert_eq!(
            (
                c.plugins.keep_resident_kib,
                c.plugins.table_keep_resident_kib
            ),
            (256, 32)
        );
    }
}
