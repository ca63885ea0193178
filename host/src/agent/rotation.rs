//! Taking the host out of the traffic and putting it back, through the
//! configured hook, and waiting for the requests in flight to finish.
//!
//! nginx: the agent owns one file included in the upstream block (`include
//! /etc/nginx/upstreams/shop/*.conf;`) holding its `server` line, with
//! `down` while the host is out. It rewrites the file and reloads nginx;
//! with nginx's pid file it then waits until every worker of the old
//! configuration has exited, since an old worker still sends new requests
//! to the host until then. Agents sharing one nginx take turns through a
//! lock file beside their server files, so that the workers a reload
//! starts are known to have read the change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::config::{HttpHook, RotationConfig};
use super::service::parent_of;

/// How often progress is looked at.
const POLL: Duration = Duration::from_millis(5);

/// The configured way in and out of the traffic.
pub struct Rotation {
    config: RotationConfig,
    http: reqwest::Client,
}

impl Rotation {
    pub fn new(config: RotationConfig) -> Rotation {
        Rotation {
            config,
            http: reqwest::Client::new(),
        }
    }

    /// Puts the host in the traffic (`true`) or takes it out; returns once
    /// the change is in force as far as the hook can tell.
    pub async fn set(&self, enabled: bool) -> Result<(), String> {
        match &self.config {
            RotationConfig::None => Ok(()),
            RotationConfig::Nginx {
                server_file,
                server,
                server_options,
                reload,
                pid_file,
                timeout_ms,
            } => {
                let line = format!("{}\n", server_line(server, server_options, enabled));
                let (file, reload, pid_file) =
                    (server_file.clone(), reload.clone(), pid_file.clone());
                let timeout = Duration::from_millis(*timeout_ms);
                nginx_change(&file, &line, &reload, pid_file.as_deref(), timeout).await
            }
            RotationConfig::Http {
                disable,
                enable,
                token_file,
                timeout_ms,
            } => {
                let hook = if enabled { enable } else { disable };
                self.call(hook, token_file.as_deref(), *timeout_ms).await
            }
            RotationConfig::Command {
                disable,
                enable,
                timeout_ms,
            } => {
                let command = if enabled { enable } else { disable };
                run(command, Duration::from_millis(*timeout_ms)).await
            }
        }
    }

    async fn call(
        &self,
        hook: &HttpHook,
        token_file: Option<&Path>,
        timeout_ms: u64,
    ) -> Result<(), String> {
        let method = reqwest::Method::from_bytes(hook.method.as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", hook.method))?;
        let mut request = self
            .http
            .request(method, &hook.url)
            .timeout(Duration::from_millis(timeout_ms))
            .body(hook.body.clone());
        if let Some(path) = token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            request = request.bearer_auth(token.trim());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{} {}: {}", hook.method, hook.url, e.without_url()))?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(format!(
            "{} {} answered {status}: {}",
            hook.method,
            hook.url,
            body.chars().take(200).collect::<String>()
        ))
    }
}

/// Rewrites the server file, reloads nginx and waits for the old workers.
async fn nginx_change(
    file: &Path,
    line: &str,
    reload: &[String],
    pid_file: Option<&Path>,
    timeout: Duration,
) -> Result<(), String> {
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let lock = dir.join(".greenlight-reload.lock");
    let lock = tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| format!("cannot open {}: {e}", lock.display()))?;
        f.lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock.display()))?;
        Ok::<_, String>(f)
    })
    .await
    .map_err(|e| e.to_string())??;
    let result = async {
        write_atomically(file, line)?;
        let before = match pid_file {
            Some(p) => Some((master_pid(p)?, workers_of(master_pid(p)?))),
            None => None,
        };
        run(reload, timeout).await?;
        if let Some((master, old)) = before {
            old_workers_gone(master, &old, timeout).await?;
        }
        Ok(())
    }
    .await;
    drop(lock);
    result
}

fn write_atomically(file: &Path, text: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", file.display());
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let staged = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::fs::write(staged.path(), text).map_err(fail)?;
    staged.persist(file).map_err(|e| fail(e.error))?;
    Ok(())
}

fn master_pid(pid_file: &Path) -> Result<i32, String> {
    std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read nginx's pid file {}: {e}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|_| format!("{} holds no pid", pid_file.display()))
}

/// The processes whose parent is `master`.
fn workers_of(master: i32) -> BTreeSet<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(master))
        .collect()
}

/// Waits until nginx runs workers and none of them is one of `old`.
async fn old_workers_gone(
    master: i32,
    old: &BTreeSet<i32>,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = workers_of(master);
        if !now.is_empty() && now.is_disjoint(old) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let lingering: Vec<String> = now.intersection(old).map(|p| p.to_string()).collect();
            return Err(format!(
                "nginx did not take the new configuration within {} ms: old workers {} still run \
                 (is the configuration valid? `nginx -t` tells)",
                timeout.as_millis(),
                if lingering.is_empty() {
                    "none, but no new worker".to_string()
                } else {
                    lingering.join(", ")
                }
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs a hook command, bounded, failing with its own words.
async fn run(command: &[String], timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("no command".into());
    };
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, output)
        .await
        .map_err(|_| {
            format!(
                "`{}` did not finish within {} ms",
                command.join(" "),
                timeout.as_millis()
            )
        })?
        .map_err(|e| format!("cannot run `{}`: {e}", command.join(" ")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!(
        "`{}` failed ({}): {}",
        command.join(" "),
        output.status,
        stderr.trim().chars().take(300).collect::<String>()
    ))
}

/// Established TCP connections whose local port is `port`: the requests
/// the service still has in flight.
pub fn connections_to(port: u16) -> usize {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|text| established_on(&text, port))
        .sum()
}

fn established_on(table: &str, port: u16) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // `01` is ESTABLISHED.
            local_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// Waits until the service has no connection open, or `timeout` passes;
/// says how many were left when it gave up.
pub async fn drained(port: u16, timeout: Duration) -> Result<(), usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let open = connections_to(port);
        if open == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(open);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Where an agent's nginx server file says the host stands: `Some(true)` in
/// the traffic, `Some(false)` out, `None` without such a file.
/// The `server` line of a host in an nginx upstream, `down` while out.
pub fn server_line(server: &str, options: &str, enabled: bool) -> String {
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(" {options}")
    };
    let down = if enabled { "" } else { " down" };
    format!("server {server}{options}{down};")
}

pub fn nginx_state(file: &PathBuf) -> Option<bool> {
    let text = std::fs::read_to_string(file).ok()?;
    Some(!text.contains(" down;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_established_connections_to_the_port_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:D432 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0 0 0 0 0 0";
        // 0x1F90 is 8080: one listening, one established, one outbound from
        // 0xD431, one in TIME_WAIT.
        assert_eq!(established_on(table, 8080), 1);
        assert_eq!(established_on(table, 54321), 1);
        assert_eq!(established_on(table, 9090), 0);
    }

    #[tokio::test]
    async fn a_real_connection_is_counted_until_it_closes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(connections_to(port), 0);
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(connections_to(port), 1);
        assert_eq!(drained(port, Duration::ZERO).await, Err(1));
        drop(client);
        drop(server);
        drained(port, Duration::from_secs(10)).await.unwrap();
    }

    #[tokio::test]
    async fn a_failing_hook_command_is_reported_in_its_own_words() {
        let e = run(
            &[
                "sh".into(),
                "-c".into(),
                "echo 'upstream refused' >&2; exit 3".into(),
            ],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(e.contains("exit status: 3"), "{e}");
        assert!(e.contains("upstream refused"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web-1.conf");
        let rotation = Rotation::new(RotationConfig::Nginx {
            server_file: file.clone(),
            server: "127.0.0.1:8080".into(),
            server_options: "max_fails=0".into(),
            reload: vec!["true".into()],
            pid_file: None,
            timeout_ms: 10_000,
        });
        rotation.set(false).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "server 127.0.0.1:8080 max_fails=0 down;\n"
        );
        assert_eq!(nginx_state(&file), Some(false));
        rotation.set(true).await.unwrap();
        assert_eq!(nginx_state(&file), Some(true));
    }
}
