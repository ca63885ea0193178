//! A load generator: steady requests through a router at a fixed rate,
//! counting those served and those failed, and which version answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::watch;

/// How load is generated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadOptions {
    /// The URL every request goes to.
    pub url: String,
    /// Requests per second, spread over the workers.
    pub rate_per_s: u32,
    /// Requests that may be on their way at once.
    pub workers: u32,
    /// How long one request may take before it counts as failed.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5_000
}

/// What the load saw.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests answered with a success.
    pub served: u64,
    /// Requests answered with an error status, or with no answer at all.
    pub failed: u64,
    /// Successful answers per version (the `x-version` header).
    pub by_version: BTreeMap<String, u64>,
    /// When the first request failed, in milliseconds since the epoch.
    pub first_failure_ms: Option<u64>,
    /// The first few failures, as status or error text.
    pub failures: Vec<String>,
}

impl LoadReport {
    fn record(&mut self, outcome: Result<(u16, String), String>) {
        match outcome {
            Ok((status, version)) if (200..300).contains(&status) => {
                self.served += 1;
                *self.by_version.entry(version).or_default() += 1;
            }
            other => {
                self.failed += 1;
                if self.first_failure_ms.is_none() {
                    self.first_failure_ms = Some(epoch_ms());
                }
                if self.failures.len() < 10 {
                    self.failures.push(match other {
                        Ok((status, version)) => format!("{status} from {version}"),
                        Err(e) => e,
                    });
                }
            }
        }
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Load running in the background until stopped.
pub struct Load {
    report: Arc<Mutex<LoadReport>>,
    /// Bumped after every request, for waiting on a condition of the report.
    progress: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the workers.
    pub fn start(options: &LoadOptions) -> Result<Load, reqwest::Error> {
        // No connection is reused, as many clients of a public service do
        // not; a graceful reload of the router then never meets a request
        // on a connection it is closing.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_millis(options.timeout_ms))
            .build()?;
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let progress = watch::Sender::new(0);
        let (stop, _) = watch::channel(false);
        let workers = options.workers.max(1);
        let period =
            Duration::from_secs_f64(f64::from(workers) / f64::from(options.rate_per_s.max(1)));
        let handles = (0..workers)
            .map(|_| {
                let client = client.clone();
                let url = options.url.clone();
                let report = report.clone();
                let progress = progress.clone();
                let mut stop = stop.subscribe();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        let outcome = request(&client, &url).await;
                        report
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .record(outcome);
                        progress.send_modify(|n| *n += 1);
                    }
                })
            })
            .collect();
        Ok(Load {
            report,
            progress,
            stop,
            workers: handles,
        })
    }

    /// What the load has seen so far.
    pub fn report(&self) -> LoadReport {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the report satisfies `done`.
    pub async fn until(&self, done: impl Fn(&LoadReport) -> bool) -> LoadReport {
        let mut progress = self.progress.subscribe();
        loop {
            let report = self.report();
            if done(&report) {
                return report;
            }
            if progress.changed().await.is_err() {
                return report;
            }
        }
    }

    /// Stops the workers, lets the requests on their way finish, and
    /// returns the report.
    pub async fn stop(mut self) -> LoadReport {
        let _ = self.stop.send(true);
        for w in std::mem::take(&mut self.workers) {
            let _ = w.await;
        }
        self.report()
    }
}

async fn request(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("no answer after {} ms: {e}", started.elapsed().as_millis()))?;
    let status = response.status().as_u16();
    let version = response
        .headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    // The answer counts once its body has arrived whole.
    response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, version))
}
