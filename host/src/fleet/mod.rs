//! The demo fleet: a sample web service run as N instances on loopback
//! ports, each with the agent API `http-deployer` drives, the routers that
//! put traffic in front of it (a built-in one and real nginx), real
//! Prometheus scraping it and a load generator. It knows HTTP only: no
//! store, no engine, no plugins.
//!
//! The contracts it implements are the agent API and the router API of
//! `plugins/README.md`. Draining is real: an instance asks the router in
//! front of it (its [`Rotation`]) to stop sending it traffic, waits for the
//! requests already on their way to finish, and from then on fails any
//! request that still reaches it, so a release that leaks traffic to a
//! drained instance shows up as failed requests.

mod artifacts;
mod hosts;
mod instance;
mod load;
mod nginx;
mod prometheus;
mod router;
mod sample;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use artifacts::ArtifactStore;
pub use hosts::{Host, Hosts, HostsOptions, find_nginx};
pub use instance::{Instance, Snapshot, StepRecord};
pub use load::{Load, LoadOptions, LoadReport};
pub use nginx::Nginx;
pub use prometheus::Prometheus;
pub use router::Router;
pub use sample::serve_sample;

/// Errors of starting a fleet or a router.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on a loopback port: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot run nginx: {0}")]
    Nginx(String),
    #[error("cannot run Prometheus: {0}")]
    Prometheus(String),
    #[error("cannot run a host agent: {0}")]
    Agent(String),
    #[error("cannot make an artifact: {0}")]
    Artifact(String),
}

/// How a fleet is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetOptions {
    /// How many instances to run.
    pub instances: usize,
    /// The version every instance starts on.
    pub version: String,
    /// The groups instances belong to, handed out in turn (`web-0` to the
    /// first); empty for one unnamed group.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How long a freshly deployed version takes before it is healthy.
    #[serde(default = "default_startup_ms")]
    pub startup_ms: u64,
    /// How long each request works before it answers.
    #[serde(default = "default_work_ms")]
    pub work_ms: u64,
}

fn default_startup_ms() -> u64 {
    30
}

fn default_work_ms() -> u64 {
    2
}

/// A version whose name ends with this fails one request in
/// [`FAULTY_EVERY`], starting with its first, so rollback has something
/// real to detect.
pub const FAULTY_SUFFIX: &str = "-faulty";

/// One request in this many fails on a faulty version (10%).
pub const FAULTY_EVERY: u64 = 10;

/// A version whose name ends with this answers every request
/// [`SLOW_PERCENT`] more slowly than the others: a regression no error
/// ratio shows, for canary analysis to find.
pub const SLOW_SUFFIX: &str = "-slow";

/// How much longer a slow version works on each request, in percent.
pub const SLOW_PERCENT: u32 = 30;

/// Whatever routes traffic to the fleet: instances call it to leave the
/// traffic while they are drained and to come back once enabled.
pub trait Rotation: Send + Sync + 'static {
    /// Takes instance `index` out of the traffic (or puts it back). Taking
    /// it out returns once no new request will be sent to it and every
    /// request already sent to it has been delivered.
    fn set_enabled(&self, index: usize, enabled: bool) -> BoxFuture<'_, Result<(), String>>;
}

/// What the instances of a fleet share.
#[derive(Default)]
struct Shared {
    /// The router in front of the fleet, once there is one.
    rotation: OnceLock<Arc<dyn Rotation>>,
    /// Bumped with every step an agent records, for waiting on progress.
    steps: watch::Sender<usize>,
    /// When the fleet kept a release waiting: each request to an agent, a
    /// health or a metrics endpoint, and each new version's start-up.
    busy: Mutex<Vec<(Instant, Instant)>>,
}

impl Shared {
    fn busy(&self, from: Instant, to: Instant) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((from, to));
    }
}

/// A running fleet; its instances stop when it is dropped (with the runtime
/// that serves them).
pub struct Fleet {
    instances: Vec<Arc<Instance>>,
    shared: Arc<Shared>,
}

/// One instance as an inventory names it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub id: String,
    pub address: String,
    pub group: String,
}

impl Fleet {
    /// Starts the instances, each on a loopback port of its own.
    pub async fn start(options: &FleetOptions) -> Result<Fleet, Error> {
        let shared: Arc<Shared> = Arc::default();
        let mut instances = Vec::with_capacity(options.instances);
        for index in 0..options.instances {
            let group = match options.groups.len() {
                0 => String::new(),
                n => options.groups[index % n].clone(),
            };
            instances.push(Instance::start(index, group, options, shared.clone()).await?);
        }
        Ok(Fleet { instances, shared })
    }

    /// Puts a router in charge of the fleet's traffic; the first one stays.
    fn attach(&self, rotation: Arc<dyn Rotation>) {
        let _ = self.shared.rotation.set(rotation);
    }

    /// Waits until the agents of the fleet have recorded `steps` steps in
    /// all (drained, deployed, enabled).
    pub async fn until_steps(&self, steps: usize) {
        let mut seen = self.shared.steps.subscribe();
        let _ = seen.wait_for(|n| *n >= steps).await;
    }

    /// How long, between `from` and `to`, the fleet kept its caller
    /// waiting: the union of the spans of the requests to its agents,
    /// health and metrics endpoints and of its versions' start-ups.
    pub fn busy_within(&self, from: Instant, to: Instant) -> Duration {
        let mut spans: Vec<(Instant, Instant)> = self
            .shared
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|&(a, b)| (a.max(from), b.min(to)))
            .filter(|(a, b)| a < b)
            .collect();
        spans.sort();
        let mut total = Duration::ZERO;
        let mut current: Option<(Instant, Instant)> = None;
        for (a, b) in spans {
            current = match current {
                Some((s, e)) if a <= e => Some((s, e.max(b))),
                Some((s, e)) => {
                    total += e - s;
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((s, e)) = current {
            total += e - s;
        }
        total
    }

    pub fn instances(&self) -> &[Arc<Instance>] {
        &self.instances
    }

    /// The instances as an environment's inventory lists them.
    pub fn targets(&self) -> Vec<Target> {
        self.instances
            .iter()
            .map(|i| Target {
                id: i.id.clone(),
                address: i.addr.to_string(),
                group: i.group.clone(),
            })
            .collect()
    }

    /// Where each instance listens, with its group, for a router.
    fn backends(&self) -> Vec<(SocketAddr, String)> {
        self.instances
            .iter()
            .map(|i| (i.addr, i.group.clone()))
            .collect()
    }

    /// What each instance looks like now.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.instances.iter().map(|i| i.snapshot()).collect()
    }

    /// The loopback origins of the instances, for a plugin's grant.
    pub fn origins(&self) -> Vec<String> {
        self.instances
            .iter()
            .map(|i| format!("http://{}", i.addr))
            .collect()
    }
}

/// Group weights as the router API carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupWeight {
    pub group: String,
    pub percent: u32,
}

/// The body of `GET` and `PUT {router_url}/weights`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub weights: Vec<GroupWeight>,
}

/// Checks weights against the router API's rules for a fleet with these
/// groups: every group named at most once and known, percents adding up to
/// 100. The problem is said in words fit for a `400` answer.
pub fn validate(weights: &[GroupWeight], groups: &[String]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, w) in weights.iter().enumerate() {
        if !groups.contains(&w.group) {
            return Err(format!(
                "weights[{i}].group: no instance is in group `{}` (groups: {})",
                w.group,
                groups.join(", ")
            ));
        }
        if seen.contains(&w.group.as_str()) {
            return Err(format!("weights[{i}].group: `{}` is named twice", w.group));
        }
        seen.push(&w.group);
    }
    let total: u32 = weights.iter().map(|w| w.percent).sum();
    if total != 100 {
        return Err(format!("weights: the percents add up to {total}, not 100"));
    }
    Ok(())
}

/// The distinct groups of some backends, in order of first appearance.
fn groups_of(backends: &[(SocketAddr, String)]) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for (_, g) in backends {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    groups
}

/// A `{code, message}` error answer.
fn refusal(
    status: axum::http::StatusCode,
    code: &str,
    message: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        axum::Json(serde_json::json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

/// Parses a JSON body, or says what is wrong with it as a `400`.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, Box<axum::response::Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(refusal(
            axum::http::StatusCode::BAD_REQUEST,
            "request.invalid_body",
            format!("the body is not valid: {e}"),
        ))
    })
}

/// Reads the body of `PUT {router_url}/weights` and checks it against the
/// router's groups.
fn wanted_weights(
    body: &[u8],
    groups: &[String],
) -> Result<Weights, Box<axum::response::Response>> {
    let wanted: Weights = parse_body(body)?;
    validate(&wanted.weights, groups).map_err(|problem| {
        Box::new(refusal(
            axum::http::StatusCode::BAD_REQUEST,
            "weights.invalid",
            problem,
        ))
    })?;
    Ok(wanted)
}

/// Serves `app` on a listener for as long as the runtime runs.
fn spawn_server(listener: tokio::net::TcpListener, app: axum::Router) {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

/// Binds a loopback port.
async fn bind_loopback() -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(Error::Listen)
}

#[cfg(test)]
mod tests;
