//! The host agent's configuration: one TOML file, unknown fields refused,
//! checked as a whole before the agent starts, and described in words by
//! `greenlight agent --check`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{field}` {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

/// The whole configuration of one agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Where the agent API listens, such as `0.0.0.0:7070`.
    pub listen: SocketAddr,
    /// A file holding the bearer token every request must carry.
    pub token_file: PathBuf,
    /// Where the agent keeps versions, its journal and the service's log:
    /// `versions/`, the `current` link, `journal.json`, `service.log`.
    pub state_dir: PathBuf,
    /// The largest request body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    pub artifact: ArtifactConfig,
    pub service: ServiceConfig,
    pub health: HealthConfig,
    #[serde(default)]
    pub rotation: RotationConfig,
    #[serde(default)]
    pub drain: DrainConfig,
}

fn default_max_body_bytes() -> usize {
    16 * 1024
}

/// Where versions come from and how many stay on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactConfig {
    /// The artifact of a version, a `.tar.gz`: `{version}` is replaced by
    /// the version, such as `https://artifacts.example.com/shop/{version}.tar.gz`.
    pub url: String,
    /// Where its SHA-256 is published: a file holding the hex digest
    /// (`{version}` replaced), such as `{url}.sha256`, or a manifest
    /// listing `DIGEST  NAME` lines (`sha256sum`'s output), where the line
    /// naming the artifact's file name counts.
    pub sha256_url: String,
    /// How many versions stay unpacked, the current one included (at least 2,
    /// so that a rollback needs no download).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// The longest an artifact may be, in bytes.
    #[serde(default = "default_max_artifact_bytes")]
    pub max_bytes: u64,
    /// The longest a download may take, in milliseconds.
    #[serde(default = "default_download_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_keep() -> usize {
    3
}

fn default_max_artifact_bytes() -> u64 {
    1 << 30
}

fn default_download_timeout_ms() -> u64 {
    120_000
}

/// How the service is run: by systemd, or by the agent itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// A systemd unit started and stopped through `systemctl`; its
    /// `ExecStart` and `WorkingDirectory` point into `{state_dir}/current`.
    pub systemd_unit: Option<String>,
    /// Or a command the agent runs itself, from `{state_dir}/current`
    /// (a relative program is looked up there first).
    pub command: Option<Vec<String>>,
    /// Environment variables for the command; `GREENLIGHT_VERSION` is
    /// always set to the version started.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// How long the command has to exit after SIGTERM before SIGKILL.
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
    /// Where the command's output goes; `{state_dir}/service.log` when unset.
    pub log_file: Option<PathBuf>,
}

fn default_stop_grace_ms() -> u64 {
    10_000
}

/// How the agent knows the service is up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// A URL answering `2xx` once the service serves, such as
    /// `http://127.0.0.1:8080/health`.
    pub url: String,
    /// The bound on one probe.
    #[serde(default = "default_probe_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_probe_timeout_ms() -> u64 {
    2_000
}

/// How the host leaves and rejoins the traffic.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RotationConfig {
    /// Nothing routes to the host that the agent could steer.
    #[default]
    None,
    /// An nginx upstream: the agent owns one file included in the upstream
    /// block, holding its `server` line (with `down` while out), rewrites
    /// it and reloads nginx.
    Nginx {
        server_file: PathBuf,
        /// The `server` line's address, such as `10.0.0.5:8080`.
        server: String,
        /// Anything after the address on the `server` line (`max_fails=0`).
        #[serde(default)]
        server_options: String,
        /// The command that reloads nginx.
        #[serde(default = "default_nginx_reload")]
        reload: Vec<String>,
        /// nginx's pid file: with it the agent waits until every worker of
        /// the old configuration has exited, so that no request is sent to
        /// the host afterwards.
        pid_file: Option<PathBuf>,
        /// The longest a reload may take, in milliseconds.
        #[serde(default = "default_reload_timeout_ms")]
        timeout_ms: u64,
    },
    /// A load balancer's HTTP API.
    Http {
        disable: HttpHook,
        enable: HttpHook,
        /// A file holding a bearer token for both calls.
        token_file: Option<PathBuf>,
        #[serde(default = "default_reload_timeout_ms")]
        timeout_ms: u64,
    },
    /// Commands run for each change (`consul maint -enable`, say).
    Command {
        disable: Vec<String>,
        enable: Vec<String>,
        #[serde(default = "default_reload_timeout_ms")]
        timeout_ms: u64,
    },
}

fn default_nginx_reload() -> Vec<String> {
    vec!["nginx".into(), "-s".into(), "reload".into()]
}

fn default_reload_timeout_ms() -> u64 {
    10_000
}

/// One call to a load balancer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHook {
    #[serde(default = "default_hook_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub body: String,
}

fn default_hook_method() -> String {
    "POST".into()
}

/// How the agent waits for requests in flight once the host is out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainConfig {
    /// The service's port whose open connections are requests in flight;
    /// the health URL's port when unset.
    pub port: Option<u16>,
    /// The longest the agent waits for them to finish.
    #[serde(default = "default_drain_timeout_ms")]
    pub timeout_ms: u64,
    /// A pause after leaving rotation before connections are counted, for
    /// load balancers that take a moment to act on a change.
    #[serde(default)]
    pub settle_ms: u64,
}

impl Default for DrainConfig {
    fn default() -> DrainConfig {
        DrainConfig {
            port: None,
            timeout_ms: default_drain_timeout_ms(),
            settle_ms: 0,
        }
    }
}

fn default_drain_timeout_ms() -> u64 {
    30_000
}

/// How the service is run, once the configuration is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    Systemd(String),
    Command(Vec<String>),
}

impl AgentConfig {
    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        AgentConfig::parse(path, &text)
    }

    /// Parses and checks `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<AgentConfig, ConfigError> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config
            .validate()
            .map_err(|(field, problem)| ConfigError::Invalid {
                path: path.to_path_buf(),
                field: field.into(),
                problem,
            })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let url = |field: &'static str, value: &str| match reqwest::Url::parse(
            &value.replace("{version}", "1.0.0"),
        ) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            Ok(u) => Err((
                field,
                format!("must be http or https, not `{}`", u.scheme()),
            )),
            Err(e) => Err((field, format!("is not a URL: {e}"))),
        };
        url("artifact.url", &self.artifact.url)?;
        if !self.artifact.url.contains("{version}") {
            return Err(("artifact.url", "must contain `{version}`".into()));
        }
        url("artifact.sha256_url", &self.artifact.sha256_url)?;
        if !(self.artifact.url.ends_with(".tar.gz") || self.artifact.url.ends_with(".tgz")) {
            return Err((
                "artifact.url",
                "must name a `.tar.gz` or `.tgz` artifact".into(),
            ));
        }
        if self.artifact.keep < 2 {
            return Err((
                "artifact.keep",
                format!(
                    "must be at least 2 (the current version and the one a rollback returns to), not {}",
                    self.artifact.keep
                ),
            ));
        }
        url("health.url", &self.health.url)?;
        self.service_kind()?;
        if self.drain.port.is_none() && self.health_port().is_none() {
            return Err((
                "drain.port",
                "is needed: the health URL names no port".into(),
            ));
        }
        match &self.rotation {
            RotationConfig::None => {}
            RotationConfig::Nginx { reload, server, .. } => {
                if reload.is_empty() {
                    return Err(("rotation.reload", "must name a command".into()));
                }
                if server.trim().is_empty() || server.contains(';') {
                    return Err((
                        "rotation.server",
                        "must be an address such as `10.0.0.5:8080`".into(),
                    ));
                }
            }
            RotationConfig::Http {
                disable, enable, ..
            } => {
                url("rotation.disable.url", &disable.url)?;
                url("rotation.enable.url", &enable.url)?;
            }
            RotationConfig::Command {
                disable, enable, ..
            } => {
                if disable.is_empty() {
                    return Err(("rotation.disable", "must name a command".into()));
                }
                if enable.is_empty() {
                    return Err(("rotation.enable", "must name a command".into()));
                }
            }
        }
        Ok(())
    }

    /// The service's runner, once exactly one is configured.
    pub fn service_kind(&self) -> Result<ServiceKind, (&'static str, String)> {
        match (&self.service.systemd_unit, &self.service.command) {
            (Some(unit), None) if !unit.trim().is_empty() => Ok(ServiceKind::Systemd(unit.clone())),
            (None, Some(command)) if !command.is_empty() => {
                Ok(ServiceKind::Command(command.clone()))
            }
            (Some(_), Some(_)) => Err((
                "service",
                "names both `systemd_unit` and `command`: choose one".into(),
            )),
            (Some(_), None) => Err(("service.systemd_unit", "is empty".into())),
            (None, Some(_)) => Err(("service.command", "is empty".into())),
            (None, None) => Err((
                "service",
                "needs `systemd_unit` (run by systemd) or `command` (run by the agent)".into(),
            )),
        }
    }

    fn health_port(&self) -> Option<u16> {
        reqwest::Url::parse(&self.health.url)
            .ok()
            .and_then(|u| u.port_or_known_default())
    }

    /// The port whose connections are the service's requests in flight.
    pub fn drain_port(&self) -> u16 {
        self.drain.port.or_else(|| self.health_port()).unwrap_or(80)
    }

    /// Where the service's output goes.
    pub fn log_file(&self) -> PathBuf {
        self.service
            .log_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("service.log"))
    }

    /// What the agent would do, in words, for `--check`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Serves the agent API on http://{}/agent, to bearer tokens in {}.",
            self.listen,
            self.token_file.display()
        );
        let _ = writeln!(
            out,
            "Fetches version V from {} and checks its SHA-256 against {}; unpacks it into {}/versions/V, switches {}/current to it, and keeps the last {} versions.",
            self.artifact.url.replace("{version}", "V"),
            self.artifact.sha256_url.replace("{version}", "V"),
            self.state_dir.display(),
            self.state_dir.display(),
            self.artifact.keep
        );
        match self.service_kind() {
            Ok(ServiceKind::Systemd(unit)) => {
                let _ = writeln!(
                    out,
                    "Runs the service as the systemd unit {unit}: `systemctl stop {unit}` before a switch, `systemctl start {unit}` after."
                );
            }
            Ok(ServiceKind::Command(command)) => {
                let _ = writeln!(
                    out,
                    "Runs `{}` in {}/current itself, output to {}; stops it with SIGTERM, then SIGKILL after {} ms.",
                    command.join(" "),
                    self.state_dir.display(),
                    self.log_file().display(),
                    self.service.stop_grace_ms
                );
            }
            Err((_, problem)) => {
                let _ = writeln!(out, "Service: {problem}");
            }
        }
        let _ = writeln!(
            out,
            "Counts the service healthy once {} answers 2xx.",
            self.health.url
        );
        let _ = writeln!(out, "{}", self.rotation_words());
        let _ = write!(
            out,
            "Waits up to {} ms for connections to port {} to close before stopping the service.",
            self.drain.timeout_ms,
            self.drain_port()
        );
        out
    }

    fn rotation_words(&self) -> String {
        match &self.rotation {
            RotationConfig::None => {
                "Leaves and rejoins no traffic rotation (nothing to steer).".into()
            }
            RotationConfig::Nginx {
                server_file,
                server,
                server_options,
                reload,
                pid_file,
                ..
            } => format!(
                "Takes the host out of traffic by writing `{}` to {} and running `{}`{}; back in by writing `{}`.",
                super::rotation::server_line(server, server_options, false),
                server_file.display(),
                reload.join(" "),
                match pid_file {
                    Some(p) => format!(
                        ", then waits for nginx's old workers (pid file {}) to exit",
                        p.display()
                    ),
                    None => String::new(),
                },
                super::rotation::server_line(server, server_options, true),
            ),
            RotationConfig::Http {
                disable, enable, ..
            } => format!(
                "Takes the host out of traffic with {} {}, back in with {} {}.",
                disable.method, disable.url, enable.method, enable.url
            ),
            RotationConfig::Command {
                disable, enable, ..
            } => format!(
                "Takes the host out of traffic with `{}`, back in with `{}`.",
                disable.join(" "),
                enable.join(" ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:7070"
token_file = "/etc/greenlight/agent.token"
state_dir = "/var/lib/shop"

[artifact]
url = "https://artifacts.example.com/shop/{version}.tar.gz"
sha256_url = "https://artifacts.example.com/shop/{version}.tar.gz.sha256"

[service]
command = ["bin/shop", "--port", "8080"]

[health]
url = "http://127.0.0.1:8080/health"

[rotation]
kind = "nginx"
server_file = "/etc/nginx/upstreams/shop/web-1.conf"
server = "10.0.0.5:8080"
pid_file = "/run/nginx.pid"
"#;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        AgentConfig::parse(Path::new("agent.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_configuration_is_described_in_words() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.drain_port(), 8080);
        assert_eq!(c.artifact.keep, 3);
        let words = c.describe();
        for part in [
            "http://127.0.0.1:7070/agent",
            "https://artifacts.example.com/shop/V.tar.gz",
            "keeps the last 3 versions",
            "Runs `bin/shop --port 8080` in /var/lib/shop/current itself",
            "`server 10.0.0.5:8080 down;`",
            "`nginx -s reload`",
            "pid file /run/nginx.pid",
            "port 8080",
        ] {
            assert!(words.contains(part), "{part} missing from {words}");
        }
    }

    #[test]
    fn unknown_and_bad_fields_are_named() {
        let unknown = parse(&GOOD.replace("[health]", "colour = 1\n[health]")).unwrap_err();
        assert!(unknown.contains("colour"), "{unknown}");
        let both = parse(&GOOD.replace(
            "[service]\n",
            "[service]\nsystemd_unit = \"shop.service\"\n",
        ))
        .unwrap_err();
        assert!(both.contains("`service` names both"), "{both}");
        let keep = parse(&GOOD.replace("[service]", "keep = 1\n[service]")).unwrap_err();
        assert!(
            keep.contains("`artifact.keep` must be at least 2"),
            "{keep}"
        );
        let no_version =
            parse(&GOOD.replace("shop/{version}.tar.gz\"", "shop/x.tar.gz\"")).unwrap_err();
        assert!(
            no_version.contains("`artifact.url` must contain"),
            "{no_version}"
        );
        let scheme = parse(&GOOD.replace("http://127.0.0.1:8080/health", "ftp://h/x")).unwrap_err();
        assert!(scheme.contains("`health.url` must be http"), "{scheme}");
        let server = parse(&GOOD.replace("\"10.0.0.5:8080\"", "\"a; b\"")).unwrap_err();
        assert!(server.contains("`rotation.server`"), "{server}");
        let kind = parse(&GOOD.replace("kind = \"nginx\"", "kind = \"haproxy\"")).unwrap_err();
        assert!(kind.contains("haproxy"), "{kind}");
    }

    #[test]
    fn systemd_and_hook_rotations_read_as_configured() {
        let text = GOOD
            .replace(
                "command = [\"bin/shop\", \"--port\", \"8080\"]",
                "systemd_unit = \"shop.service\"",
            )
            .split("[rotation]")
            .next()
            .unwrap()
            .to_string()
            + "[rotation]\nkind = \"command\"\ndisable = [\"lb\", \"out\"]\nenable = [\"lb\", \"in\"]\n";
        let c = parse(&text).unwrap();
        assert_eq!(
            c.service_kind().unwrap(),
            ServiceKind::Systemd("shop.service".into())
        );
        let words = c.describe();
        assert!(words.contains("`systemctl stop shop.service`"), "{words}");
        assert!(words.contains("`lb out`"), "{words}");
    }
}
