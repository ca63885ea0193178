//! Real Prometheus scraping the fleet: every instance's `/metrics` with its
//! own `instance` and `version` labels kept (`honor_labels`), from a config
//! and a database in a scratch directory, listening on loopback. Canary
//! analysis reads it as it would read a team's own Prometheus.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Error, Fleet};

/// How long Prometheus may take to start, or a wanted answer to appear.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How often readiness and answers are looked at.
const POLL: Duration = Duration::from_millis(50);

/// A running Prometheus; it stops when dropped.
pub struct Prometheus {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: tokio::process::Child,
    http: reqwest::Client,
}

fn failed(e: impl std::fmt::Display) -> Error {
    Error::Prometheus(e.to_string())
}

impl Prometheus {
    /// Starts Prometheus (`binary`, such as `prometheus` on the `PATH`)
    /// scraping every instance of `fleet` each `interval`, and returns once
    /// it is ready to answer queries.
    pub async fn start(binary: &Path, fleet: &Fleet, interval: Duration) -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(failed)?;
        let targets: Vec<String> = fleet
            .instances()
            .iter()
            .map(|i| format!("'{}'", i.addr))
            .collect();
        let interval_ms = interval.as_millis().max(1);
        let config = format!(
            "global:\n  scrape_interval: {interval_ms}ms\n  scrape_timeout: {interval_ms}ms\n\
             scrape_configs:\n  - job_name: fleet\n    honor_labels: true\n    \
             static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(failed)?;
        let log = std::fs::File::create(dir.path().join("prometheus.log")).map_err(failed)?;
        // Prometheus binds its own port; a port just released by the kernel
        // is free for it to take.
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::Listen)?;
            probe.local_addr().map_err(Error::Listen)?.port()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("{}: {e}", binary.display())))?;
        let mut prometheus = Prometheus {
            addr,
            dir,
            child,
            http: reqwest::Client::new(),
        };
        prometheus.ready().await?;
        Ok(prometheus)
    }

    /// The base URL of the query API, for a plugin's `url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What Prometheus wrote to its log, for an error message.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn ready(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let url = format!("{}/-/ready", self.url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(failed(format!("exited with {status}: {}", self.log())));
            }
            if let Ok(answer) = self.http.get(&url).send().await
                && answer.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > TIMEOUT {
                return Err(failed(format!(
                    "not ready within {TIMEOUT:?}: {}",
                    self.log()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The result of an instant query, as the API answers it
    /// (`data.result`).
    pub async fn query(&self, query: &str) -> Result<Value, Error> {
        let answer: Value = self
            .http
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", query)])
            .send()
            .await
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)?;
        if answer["status"] != "success" {
            return Err(failed(format!("{query}: {answer}")));
        }
        Ok(answer["data"]["result"].clone())
    }

    /// Waits until the instant query's result satisfies `done`, or fails
    /// with the last result after a minute.
    pub async fn until(&self, query: &str, done: impl Fn(&Value) -> bool) -> Result<Value, Error> {
        let started = Instant::now();
        loop {
            let result = self.query(query).await?;
            if done(&result) {
                return Ok(result);
            }
            if started.elapsed() > TIMEOUT {
                return Err(failed(format!(
                    "{query} still answers {result} after {TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
