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
    /// Limits at the HTTP edge: timeouts, connections, sizes and the rate
    /// of unauthenticated requests.
    pub http: HttpOptions,
    /// How much of the audit log is kept.
    pub audit: AuditOptions,
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
            http: HttpOptions::default(),
            audit: AuditOptions::default(),
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

    /// The settings that are well-formed TOML but make no sense, named by
    /// their path in the file.
    pub fn check(&self) -> Result<(), String> {
        self.scheduler.origins()?;
        self.http.check()?;
        self.audit.check()
    }
}

/// Limits at the HTTP edge (`[http]`). Every refusal they make answers
/// `{code, message}`, except a connection cut by a timeout, which has
/// nothing left to answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpOptions {
    /// How long a client may take to send a request's header block: from
    /// its connection for the first request, from the block's first byte
    /// on a kept-alive connection. Then the connection is closed.
    pub header_timeout_ms: u64,
    /// How long a request's body may take to start arriving and how far
    /// behind `body_min_bytes_per_second` it may fall: the body's deadline
    /// is this long after the handler starts reading it, plus one second
    /// for every `body_min_bytes_per_second` bytes received. A body that
    /// misses it is refused (`408 request.body_timeout`) and the connection
    /// closed.
    pub body_timeout_ms: u64,
    /// The slowest a body may arrive, on average, once its grace
    /// (`body_timeout_ms`) is spent. 0 makes `body_timeout_ms` the whole
    /// body's time, whatever its size.
    pub body_min_bytes_per_second: u64,
    /// How long a kept-alive connection may wait for its next request, and
    /// how long an answer may wait for its client to take more of it. Not
    /// while a request is being handled: an event stream stays open as
    /// long as its client reads it.
    pub idle_timeout_ms: u64,
    /// The most connections served at once; one more is answered
    /// `503 server.busy` with `Retry-After` and closed.
    pub max_connections: usize,
    /// The most connections served at once from one client address (an
    /// IPv6 /64 counts as one address); one more is answered `429
    /// request.too_many_connections` and closed. Behind a reverse proxy
    /// every client has the proxy's address: raise it to `max_connections`.
    pub max_connections_per_client: usize,
    /// The largest request header block, request line included (at least
    /// 1024), and at most 100 headers: `431 request.headers_too_large`.
    pub max_header_bytes: usize,
    /// The longest request target (path and query): `414
    /// request.uri_too_long`.
    pub max_uri_bytes: usize,
    /// Requests without a valid token or session, per client address and
    /// minute, in bursts of up to as many; more are answered `429
    /// request.rate_limited` with `Retry-After`, and not audited. Requests
    /// with a valid token, and health probes (`GET /healthz`, `/readyz`),
    /// are not limited.
    pub unauthenticated_per_minute: u32,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            body_min_bytes_per_second: 16 * 1024,
            idle_timeout_ms: 60_000,
            max_connections: 512,
            max_connections_per_client: 64,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            unauthenticated_per_minute: 300,
        }
    }
}

impl HttpOptions {
    fn check(&self) -> Result<(), String> {
        let positive = [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_client",
                self.max_connections_per_client as u64,
            ),
            ("max_uri_bytes", self.max_uri_bytes as u64),
            (
                "unauthenticated_per_minute",
                u64::from(self.unauthenticated_per_minute),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("http.{name} must be at least 1"));
        }
        if self.max_header_bytes < 1024 {
            return Err("http.max_header_bytes must be at least 1024".to_string());
        }
        Ok(())
    }
}

/// How much of the audit log is kept (`[audit]`): entries past either
/// bound are removed, oldest first, as new ones are appended (and every
/// few minutes for age).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditOptions {
    /// Entries older than this many days (on the release clock) are
    /// removed; 0 keeps them whatever their age.
    pub max_age_days: u64,
    /// The most the entries may take in all, in MiB of stored records (the
    /// store's files take somewhat more: they hold free space until it is
    /// reused).
    pub max_mib: u64,
}

impl Default for AuditOptions {
    fn default() -> AuditOptions {
        AuditOptions {
            max_age_days: 365,
            max_mib: 256,
        }
    }
}

impl AuditOptions {
    fn check(&self) -> Result<(), String> {
        if self.max_mib == 0 {
            return Err("audit.max_mib must be at least 1".to_string());
        }
        Ok(())
    }

    /// The store's retention.
    pub fn retention(&self) -> crate::store::AuditRetention {
        crate::store::AuditRetention {
            max_age_ms: (self.max_age_days > 0)
                .then(|| self.max_age_days.saturating_mul(86_400_000)),
            max_bytes: self.max_mib.saturating_mul(1024 * 1024),
        }
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
    fn the_edge_and_audit_sections_are_read_and_checked() {
        let c: Config = toml::from_str(
            "[http]\nheader_timeout_ms = 200\nmax_connections = 4\n[audit]\nmax_mib = 1\n",
        )
        .unwrap();
        assert_eq!(c.http.header_timeout_ms, 200);
        assert_eq!(c.http.max_connections, 4);
        assert_eq!(c.http.idle_timeout_ms, 60_000);
        assert_eq!(c.audit.max_mib, 1);
        assert_eq!(c.audit.max_age_days, 365);
        c.check().unwrap();
        let err = toml::from_str::<Config>("[http]\nheader_timeout = 5\n").unwrap_err();
        assert!(err.to_string().contains("header_timeout"), "{err}");
        let zero: Config = toml::from_str("[http]\nmax_connections = 0\n").unwrap();
        assert!(zero.check().unwrap_err().contains("http.max_connections"));
        let zero: Config = toml::from_str("[audit]\nmax_mib = 0\n").unwrap();
        assert!(zero.check().unwrap_err().contains("audit.max_mib"));
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
