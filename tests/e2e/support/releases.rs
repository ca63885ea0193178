//! Support for release tests: a daemon on a manual clock with the fixture
//! plugins, an inventory and a flow in place; a recorder that sees every
//! deploy and rollback call and decides check verdicts; and waiting on a
//! release through the server-sent event stream, never by sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::Daemon;

/// Where the manual release clock starts.
pub const CLOCK_START_MS: u64 = 1_800_000_000_000;

/// One deploy or rollback call the fixture deployer reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedCall {
    pub action: String,
    pub key: String,
    pub batch: String,
    pub targets: Vec<String>,
}

#[derive(Default)]
struct RecorderState {
    calls: Vec<RecordedCall>,
    /// Verdicts to hand out per stage, in order; then `pass`.
    verdicts: HashMap<String, VecDeque<String>>,
    /// The deploy call (counting from zero) to hold open until released.
    hold: Option<usize>,
    deploys: usize,
    /// The stage whose check calls are held open until released.
    hold_checks: Option<String>,
}

/// A loopback server the fixture deployer reports to and the fixture
/// check asks for verdicts.
pub struct Recorder {
    pub addr: SocketAddr,
    state: Arc<Mutex<RecorderState>>,
    arrived: tokio::sync::Mutex<mpsc::UnboundedReceiver<RecordedCall>>,
    release: Arc<Notify>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let state = Arc::new(Mutex::new(RecorderState::default()));
        let release = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let record = {
            let state = state.clone();
            let release = release.clone();
            let tx = tx.clone();
            move |Path(action): Path<String>, Query(q): Query<HashMap<String, String>>| {
                let state = state.clone();
                let release = release.clone();
                let tx = tx.clone();
                async move {
                    let call = RecordedCall {
                        action: action.clone(),
                        key: q.get("key").cloned().unwrap_or_default(),
                        batch: q.get("batch").cloned().unwrap_or_default(),
                        targets: q
                            .get("targets")
                            .map(|t| t.split(',').map(str::to_string).collect())
                            .unwrap_or_default(),
                    };
                    let hold = {
                        let mut s = state.lock().unwrap();
                        s.calls.push(call.clone());
                        let n = s.deploys;
                        if action == "deploy" {
                            s.deploys += 1;
                        }
                        action == "deploy" && s.hold == Some(n)
                    };
                    let _ = tx.send(call);
                    if hold {
                        release.notified().await;
                    }
                    "ok"
                }
            }
        };
        let verdict = {
            let state = state.clone();
            let release = release.clone();
            let tx = tx.clone();
            move |Query(q): Query<HashMap<String, String>>| {
                let state = state.clone();
                let release = release.clone();
                let tx = tx.clone();
                async move {
                    let stage = q.get("stage").cloned().unwrap_or_default();
                    let hold = state.lock().unwrap().hold_checks.as_ref() == Some(&stage);
                    if hold {
                        let freed = release.notified();
                        let _ = tx.send(RecordedCall {
                            action: "check".into(),
                            batch: q.get("batch").cloned().unwrap_or_default(),
                            ..RecordedCall::default()
                        });
                        freed.await;
                    }
                    let mut s = state.lock().unwrap();
                    s.verdicts
                        .get_mut(&stage)
                        .and_then(|v| v.pop_front())
                        .unwrap_or_else(|| "pass all good".to_string())
                }
            }
        };
        let app = axum::Router::new()
            .route("/verdict", axum::routing::get(verdict))
            .route("/calls/{action}", axum::routing::get(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder {
            addr,
            state,
            arrived: tokio::sync::Mutex::new(rx),
            release,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues verdicts (`"fail error rate 7%"`) for checks in `stage`.
    pub fn verdicts(&self, stage: &str, verdicts: &[&str]) {
        let mut s = self.state.lock().unwrap();
        s.verdicts
            .entry(stage.to_string())
            .or_default()
            .extend(verdicts.iter().map(|v| v.to_string()));
    }

    /// Holds the `n`-th deploy call (from zero) open until [`Self::free`].
    pub fn hold_deploy(&self, n: usize) {
        self.state.lock().unwrap().hold = Some(n);
    }

    /// Holds every check call of `stage` open until [`Self::free`]; each
    /// arrives through [`Self::next_call`] as a `check`.
    pub fn hold_checks(&self, stage: &str) {
        self.state.lock().unwrap().hold_checks = Some(stage.to_string());
    }

    /// Lets held calls answer.
    pub fn free(&self) {
        let mut s = self.state.lock().unwrap();
        s.hold = None;
        s.hold_checks = None;
        drop(s);
        self.release.notify_waiters();
    }

    /// Waits for the next call to arrive.
    pub async fn next_call(&self) -> RecordedCall {
        let mut rx = self.arrived.lock().await;
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no deployer call arrived in time")
            .expect("the recorder stopped")
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls of one action.
    pub fn calls_of(&self, action: &str) -> Vec<RecordedCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.action == action)
            .collect()
    }
}

/// The standard test flow: a precheck, a canary baked for ten minutes with
/// a check every five, an approval by one release manager, then rolling
/// batches of a quarter of the fleet.
pub fn standard_flow(recorder: &Recorder) -> String {
    standard_flow_checked_by(recorder, "health")
}

/// [`standard_flow`] with another check plugin than `health`, given the
/// same parameters (`mode = "remote"` and the recorder's verdict URL).
pub fn standard_flow_checked_by(recorder: &Recorder, check: &str) -> String {
    format!(
        r#"
name = "standard"
version = 1

[[stages]]
name = "prechecks"
kind = "precheck"
plugins = [{{ plugin = "lint" }}]

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
count = 1
bake = "10m"
check_interval = "5m"
checks = [{{ plugin = "{check}", params = {{ mode = "remote", url = "{origin}/verdict" }} }}]

[[stages]]
name = "go-ahead"
kind = "approval"
roles = ["release-manager"]
approvers = 1
starter_may_approve = true
expires_after = "1h"
on_expiry = "rollback"
instructions = "Compare the canary's error rate with the fleet's.\nReject if checkout errors rose."
links = [{{ title = "Shop dashboard", url = "https://grafana.example.com/d/shop" }}]

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
batch = "25%"
checks = [{{ plugin = "{check}", params = {{ mode = "remote", url = "{origin}/verdict" }} }}]
"#,
        origin = recorder.origin()
    )
}

/// A daemon on a manual clock with the fixture plugins uploaded and granted
/// the recorder, and `flow` applied.
pub async fn release_daemon(recorder: &Recorder) -> Daemon {
    let d = Daemon::start_with_config(&format!("manual_clock_ms = {CLOCK_START_MS}\n")).await;
    for (name, fixture) in [
        ("lint", "fixture_precheck"),
        ("agent", "fixture_deployer"),
        ("health", "fixture_check"),
        ("router", "fixture_traffic"),
        ("policy", "fixture_policy"),
    ] {
        d.upload_ok(name, fixture).await;
    }
    for name in ["agent", "health"] {
        d.grant(name, json!({"allowed_hosts": [recorder.origin()]}))
            .await;
    }
    d
}

/// Applies a flow file, which must be accepted.
pub async fn apply_flow(d: &Daemon, text: &str) {
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/flows")
                .header("content-type", "application/toml")
                .body(text.to_string()),
        )
        .await;
    assert!(status == 201 || status == 200, "flow refused: {body}");
}

/// Puts an environment of `n` targets (`web-0`…) into the inventory.
pub async fn put_environment(d: &Daemon, app: &str, env: &str, n: usize, groups: &[&str]) {
    let targets: Vec<Value> = (0..n)
        .map(|i| {
            let mut t = json!({"id": format!("web-{i}"), "address": format!("10.0.0.{i}:8080")});
            if !groups.is_empty() {
                t["group"] = json!(groups[i % groups.len()]);
            }
            t
        })
        .collect();
    let mut body = json!({ "targets": targets });
    if let Some(first) = groups.first() {
        body["live_group"] = json!(first);
    }
    put_inventory(d, app, env, body).await;
}

/// Puts an environment (its targets and live group, as the API takes them)
/// into the inventory; it must be accepted.
pub async fn put_inventory(d: &Daemon, app: &str, env: &str, body: Value) {
    let (status, answer) = d
        .send(
            d.request(
                reqwest::Method::PUT,
                &format!("/api/v1/apps/{app}/envs/{env}"),
            )
            .json(&body),
        )
        .await;
    assert!(
        status == 201 || status == 200,
        "inventory refused: {answer}"
    );
}

/// Starts a release, which must be accepted; returns its id.
pub async fn start_release(d: &Daemon, app: &str, env: &str, version: &str, flow: &str) -> String {
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases")
                .json(&json!({
                    "application": app, "environment": env, "version": version, "flow": flow
                })),
        )
        .await;
    assert_eq!(status, 201, "release refused: {body}");
    body["id"].as_str().unwrap().to_string()
}

/// A release's full state.
pub async fn release(d: &Daemon, id: &str) -> Value {
    let (status, body) = d
        .send(d.request(reqwest::Method::GET, &format!("/api/v1/releases/{id}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Posts a command to a release and returns the answer.
pub async fn command(d: &Daemon, id: &str, what: &str, body: Value) -> (u16, Value) {
    d.send(
        d.request(
            reqwest::Method::POST,
            &format!("/api/v1/releases/{id}/{what}"),
        )
        .json(&body),
    )
    .await
}

/// Moves the daemon's manual clock forward.
pub async fn advance(d: &Daemon, ms: u64) -> u64 {
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/clock")
                .json(&json!({ "advance_ms": ms })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["now_ms"].as_u64().unwrap()
}

/// Sets the daemon's manual clock (after a restart it starts over).
pub async fn set_clock(d: &Daemon, now_ms: u64) {
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/clock")
                .json(&json!({ "now_ms": now_ms })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// How long a release may take to reach a state in a test.
const WAIT: Duration = Duration::from_secs(60);

/// Waits until the release's state satisfies `done`, reading the state
/// again whenever the event stream reports something; panics with the last
/// state after a minute.
pub async fn wait_for(d: &Daemon, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for_within(d, id, what, WAIT, done).await
}

/// [`wait_for`] with a timeout of its own, for releases of real workloads.
pub async fn wait_for_within(
    d: &Daemon,
    id: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/v1/releases/{id}");
    wait_on_within(d, &path, Some(id), what, timeout, done).await
}

/// Waits until the resource at `path` satisfies `done`, reading it again
/// whenever a release event (of `release`, or of any release) is streamed.
pub async fn wait_on(
    d: &Daemon,
    path: &str,
    release: Option<&str>,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_on_within(d, path, release, what, WAIT, done).await
}

async fn wait_on_within(
    d: &Daemon,
    path: &str,
    release: Option<&str>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut request = d.request(reqwest::Method::GET, "/api/v1/events");
    if let Some(id) = release {
        request = request.query(&[("release", id)]);
    }
    let mut stream = request.send().await.expect("event stream");
    assert_eq!(stream.status().as_u16(), 200);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (status, state) = d.send(d.request(reqwest::Method::GET, path)).await;
        assert_eq!(status, 200, "{state}");
        if done(&state) {
            return state;
        }
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(_))) => {}
            Ok(other) => {
                panic!("the event stream ended waiting for {what}: {other:?}; state {state:#}")
            }
            Err(_) => panic!("timed out waiting for {what}; state {state:#}"),
        }
    }
}

/// Waits for a status.
pub async fn wait_status(d: &Daemon, id: &str, status: &str) -> Value {
    wait_for(d, id, status, |r| r["status"] == status).await
}

/// The names of a release's journaled events.
pub async fn journal(d: &Daemon, id: &str) -> Vec<String> {
    journal_details(d, id)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect()
}

/// A release's journaled events, each as its name and what it says.
pub async fn journal_details(d: &Daemon, id: &str) -> Vec<(String, Value)> {
    let (status, body) = d
        .send(d.request(
            reqwest::Method::GET,
            &format!("/api/v1/releases/{id}/journal"),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["detail"].clone()))
        .collect()
}

/// A flow of a canary (one target, baked 10 minutes and checked every 5)
/// and a rolling stage of 50% batches, both deployed by the fixture
/// deployer uploaded as `agent` and recording to `recorder`, each stage with
/// its `checks = [...]` line.
pub fn canary_and_rolling_flow(
    name: &str,
    recorder: &Recorder,
    canary_checks: &str,
    rolling_checks: &str,
) -> String {
    format!(
        r#"
name = "{name}"
version = 1

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
count = 1
bake = "10m"
check_interval = "5m"
{canary_checks}

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
batch = "50%"
{rolling_checks}
"#,
        origin = recorder.origin(),
    )
}

/// Releases `version` of shop/prod with a [`canary_and_rolling_flow`],
/// lets the canary's bake pass on the manual clock and waits for the
/// release to succeed; answers it.
pub async fn release_past_the_bake(d: &Daemon, version: &str, flow: &str) -> Value {
    let id = start_release(d, "shop", "prod", version, flow).await;
    wait_for(d, &id, "the canary bake", |r| !r["next_check_ms"].is_null()).await;
    advance(d, 10 * 60_000).await;
    wait_status(d, &id, "succeeded").await
}

/// The verdicts a release recorded in one stage.
pub fn verdicts_of<'a>(release: &'a Value, stage: &str) -> Vec<&'a Value> {
    release["verdicts"]
        .as_array()
        .map(|all| all.iter().filter(|v| v["stage"] == stage).collect())
        .unwrap_or_default()
}
