//! One instance of the demo service: it answers traffic with its version,
//! serves `/health` and Prometheus `/metrics`, and implements the agent API
//! of `plugins/README.md` under `/agent`, remembering every step it took
//! under each operation key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::{
    Error, FAULTY_EVERY, FAULTY_SUFFIX, FleetOptions, SLOW_PERCENT, SLOW_SUFFIX, Shared,
    parse_body, refusal,
};

/// Latency buckets of `fleet_request_duration_seconds`, in seconds.
const BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

/// One step an agent completed, as the agent API records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub key: String,
    /// `drained`, `deployed` or `enabled`.
    pub step: String,
    pub version: String,
    /// `deploy` or `rollback`.
    pub operation: String,
}

/// What an instance looks like from outside.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub version: String,
    /// Out of the traffic: drained and not enabled again.
    pub drained: bool,
    pub steps: Vec<StepRecord>,
    /// Requests answered, and those answered with an error.
    pub requests: u64,
    pub errors: u64,
}

impl Snapshot {
    /// How many times a version was installed on this instance.
    pub fn deploys_of(&self, version: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| s.step == "deployed" && s.version == version)
            .count()
    }
}

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// In the traffic.
    Serving,
    /// Out of the traffic; `ready_at` is when a version being deployed
    /// becomes healthy.
    Drained { ready_at: Option<Instant> },
}

/// The latencies of the requests one version answered.
#[derive(Default)]
struct Latencies {
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

struct Counters {
    /// Requests by (version, status).
    by_status: BTreeMap<(String, u16), u64>,
    /// Latencies by version: a canary's can be told from the baseline's.
    latency: BTreeMap<String, Latencies>,
    /// Requests and errors since the current version was installed: the
    /// error ratio a release watches.
    current: (u64, u64),
}

struct Inner {
    version: String,
    phase: Phase,
    steps: Vec<StepRecord>,
    counters: Counters,
}

/// One running instance.
pub struct Instance {
    pub id: String,
    pub index: usize,
    pub group: String,
    pub addr: SocketAddr,
    startup: Duration,
    work: Duration,
    inner: Mutex<Inner>,
    in_flight: watch::Sender<usize>,
    shared: Arc<Shared>,
}

/// A request being answered; it leaves the in-flight count when dropped.
struct InFlight<'a>(&'a watch::Sender<usize>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The body of every `POST` of the agent API.
#[derive(Deserialize)]
struct Operation {
    key: String,
    version: String,
    #[serde(default = "deploy_operation")]
    operation: String,
}

fn deploy_operation() -> String {
    "deploy".into()
}

impl Instance {
    pub(super) async fn start(
        index: usize,
        group: String,
        options: &FleetOptions,
        shared: Arc<Shared>,
    ) -> Result<Arc<Instance>, Error> {
        let listener = super::bind_loopback().await?;
        let addr = listener.local_addr().map_err(Error::Listen)?;
        let instance = Arc::new(Instance {
            id: format!("web-{index}"),
            index,
            group,
            addr,
            startup: Duration::from_millis(options.startup_ms),
            work: Duration::from_millis(options.work_ms),
            inner: Mutex::new(Inner {
                version: options.version.clone(),
                phase: Phase::Serving,
                steps: Vec::new(),
                counters: Counters {
                    by_status: BTreeMap::new(),
                    latency: BTreeMap::new(),
                    current: (0, 0),
                },
            }),
            in_flight: watch::Sender::new(0),
            shared,
        });
        let app = axum::Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/agent/operations/{key}", get(operation))
            .route("/agent/health", get(health))
            .route("/agent/drain", post(drain))
            .route("/agent/deploy", post(deploy))
            .route("/agent/enable", post(enable))
            .route_layer(axum::middleware::from_fn_with_state(instance.clone(), busy))
            .fallback(traffic)
            .with_state(instance.clone());
        super::spawn_server(listener, app);
        Ok(instance)
    }

    /// How long a request to `version` works: a slow version's work takes
    /// [`SLOW_PERCENT`] more.
    fn work_of(&self, version: &str) -> Duration {
        if version.ends_with(SLOW_SUFFIX) {
            self.work * (100 + SLOW_PERCENT) / 100
        } else {
            self.work
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind, which
        // are still worth reading.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let (requests, errors) = inner
            .counters
            .by_status
            .iter()
            .fold((0, 0), |(all, bad), ((_, status), n)| {
                (all + n, if *status >= 500 { bad + n } else { bad })
            });
        Snapshot {
            id: self.id.clone(),
            version: inner.version.clone(),
            drained: matches!(inner.phase, Phase::Drained { .. }),
            steps: inner.steps.clone(),
            requests,
            errors,
        }
    }

    fn record_step(&self, op: &Operation, step: &str) {
        self.lock().steps.push(StepRecord {
            key: op.key.clone(),
            step: step.into(),
            version: op.version.clone(),
            operation: op.operation.clone(),
        });
        self.shared.steps.send_modify(|n| *n += 1);
    }

    /// Answers one request of traffic: the version's answer when in the
    /// traffic, `503` when drained (it should not have been sent here).
    fn answer(&self, started: Instant) -> (StatusCode, String) {
        let mut inner = self.lock();
        let version = inner.version.clone();
        let status = match inner.phase {
            Phase::Drained { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Phase::Serving
                if version.ends_with(FAULTY_SUFFIX)
                    && inner.counters.current.0.is_multiple_of(FAULTY_EVERY) =>
            {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Phase::Serving => StatusCode::OK,
        };
        let c = &mut inner.counters;
        *c.by_status
            .entry((version.clone(), status.as_u16()))
            .or_default() += 1;
        c.current.0 += 1;
        if status.is_server_error() {
            c.current.1 += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        let latency = c.latency.entry(version.clone()).or_default();
        for (bucket, bound) in latency.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        latency.sum += seconds;
        latency.count += 1;
        (status, version)
    }

    fn healthy(&self) -> (bool, String) {
        let inner = self.lock();
        let healthy = match inner.phase {
            Phase::Serving | Phase::Drained { ready_at: None } => true,
            Phase::Drained {
                ready_at: Some(at), ..
            } => Instant::now() >= at,
        };
        (healthy, inner.version.clone())
    }

    /// Takes the instance out of the traffic and waits for the requests
    /// already sent to it to finish.
    async fn take_out(&self) -> Result<(), String> {
        if let Some(rotation) = self.shared.rotation.get() {
            rotation.set_enabled(self.index, false).await?;
        }
        let mut in_flight = self.in_flight.subscribe();
        in_flight
            .wait_for(|n| *n == 0)
            .await
            .map_err(|e| e.to_string())?;
        let mut inner = self.lock();
        if matches!(inner.phase, Phase::Serving) {
            inner.phase = Phase::Drained { ready_at: None };
        }
        Ok(())
    }

    fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let inner = self.lock();
        let c = &inner.counters;
        let id = &self.id;
        let mut out = String::from(
            "# HELP fleet_requests_total Requests answered, by version and status.\n\
             # TYPE fleet_requests_total counter\n",
        );
        for ((version, status), n) in &c.by_status {
            let _ = writeln!(
                out,
                "fleet_requests_total{{instance=\"{id}\",version=\"{version}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP fleet_request_duration_seconds How long requests took.\n\
             # TYPE fleet_request_duration_seconds histogram\n",
        );
        for (version, l) in &c.latency {
            let labels = format!("instance=\"{id}\",version=\"{version}\"");
            for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                let _ = writeln!(
                    out,
                    "fleet_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "fleet_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 fleet_request_duration_seconds_sum{{{labels}}} {}\n\
                 fleet_request_duration_seconds_count{{{labels}}} {}",
                l.count, l.sum, l.count
            );
        }
        // The ratio since the current version was installed; without a
        // request yet there is no sample, which a check reads as no data.
        out.push_str(
            "# HELP fleet_error_ratio Share of requests answered with 5xx since the current version was installed.\n\
             # TYPE fleet_error_ratio gauge\n",
        );
        if c.current.0 > 0 {
            let _ = writeln!(
                out,
                "fleet_error_ratio{{instance=\"{id}\",version=\"{}\"}} {}",
                inner.version,
                c.current.1 as f64 / c.current.0 as f64
            );
        }
        out
    }
}

type This = State<Arc<Instance>>;

/// Notes how long a request to the agent API, health or metrics took.
async fn busy(
    State(i): This,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    i.shared.busy(started, Instant::now());
    response
}

async fn traffic(State(i): This) -> Response {
    i.in_flight.send_modify(|n| *n += 1);
    let _guard = InFlight(&i.in_flight);
    let started = Instant::now();
    let work = i.work_of(&i.lock().version);
    if !work.is_zero() {
        // The service's own work: it is what keeps requests in flight
        // while an instance is drained.
        tokio::time::sleep(work).await;
    }
    let (status, version) = i.answer(started);
    let body = json!({"instance": i.id, "version": version, "status": status.as_u16()});
    (status, [("x-version", version)], axum::Json(body)).into_response()
}

async fn health(State(i): This) -> Response {
    let (healthy, version) = i.healthy();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"healthy": healthy, "version": version})),
    )
        .into_response()
}

async fn metrics(State(i): This) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        i.metrics_text(),
    )
        .into_response()
}

async fn operation(State(i): This, Path(key): Path<String>) -> Response {
    let inner = i.lock();
    match inner.steps.iter().rev().find(|s| s.key == key) {
        Some(s) => axum::Json(json!({
            "step": s.step, "done": s.step == "enabled", "version": s.version
        }))
        .into_response(),
        None => refusal(
            StatusCode::NOT_FOUND,
            "operation.unknown",
            format!("no step was taken under key `{key}`"),
        ),
    }
}

async fn drain(State(i): This, body: Bytes) -> Response {
    let op: Operation = match parse_body(&body) {
        Ok(op) => op,
        Err(refused) => return *refused,
    };
    if let Err(e) = i.take_out().await {
        return refusal(
            StatusCode::BAD_GATEWAY,
            "drain.router_failed",
            format!("the router did not take {} out of the traffic: {e}", i.id),
        );
    }
    i.record_step(&op, "drained");
    axum::Json(json!({"drained": true})).into_response()
}

async fn deploy(State(i): This, body: Bytes) -> Response {
    let op: Operation = match parse_body(&body) {
        Ok(op) => op,
        Err(refused) => return *refused,
    };
    if op.version.trim().is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            "deploy.version_missing",
            "version: must name the version to install",
        );
    }
    {
        let mut inner = i.lock();
        if matches!(inner.phase, Phase::Serving) {
            return refusal(
                StatusCode::CONFLICT,
                "deploy.not_drained",
                format!("{} takes traffic: drain it before deploying", i.id),
            );
        }
        inner.version = op.version.clone();
        let now = Instant::now();
        inner.phase = Phase::Drained {
            ready_at: Some(now + i.startup),
        };
        i.shared.busy(now, now + i.startup);
        inner.counters.current = (0, 0);
    }
    i.record_step(&op, "deployed");
    axum::Json(json!({"version": op.version})).into_response()
}

async fn enable(State(i): This, body: Bytes) -> Response {
    let op: Operation = match parse_body(&body) {
        Ok(op) => op,
        Err(refused) => return *refused,
    };
    let (healthy, version) = i.healthy();
    if !healthy {
        return refusal(
            StatusCode::CONFLICT,
            "enable.not_healthy",
            format!("{} is still starting {version}", i.id),
        );
    }
    i.lock().phase = Phase::Serving;
    if let Some(rotation) = i.shared.rotation.get()
        && let Err(e) = rotation.set_enabled(i.index, true).await
    {
        return refusal(
            StatusCode::BAD_GATEWAY,
            "enable.router_failed",
            format!("the router did not put {} back: {e}", i.id),
        );
    }
    i.record_step(&op, "enabled");
    axum::Json(json!({"enabled": true, "version": version})).into_response()
}
