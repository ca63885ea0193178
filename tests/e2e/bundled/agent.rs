//! A test agent for `http-deployer`, following the contract in
//! `plugins/README.md`: it drains, deploys, reports health and enables, and
//! remembers the operation keys it completed.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Journal, serve};

/// One instance's agent, following the contract in `plugins/README.md`.
pub struct Agent {
    pub id: &'static str,
    pub version: String,
    pub drained: bool,
    /// A broken build: on this version the instance never becomes healthy.
    pub faulty: Option<String>,
    /// A bad build: on this version it stays healthy but fails a fifth of
    /// its requests, as its `/agent/metrics` page shows.
    pub erroring: Option<String>,
    /// Every step taken, as (key, step, version); the last one of a key is
    /// how far that operation got.
    pub progress: Vec<(String, String, String)>,
    journal: Journal,
}

impl Agent {
    fn record(&mut self, body: &Value, step: &str) {
        self.progress.push((
            body["key"].as_str().unwrap().to_string(),
            step.to_string(),
            body["version"].as_str().unwrap().to_string(),
        ));
    }
}

pub type Shared = Arc<Mutex<Agent>>;

async fn operation(State(a): State<Shared>, Path(key): Path<String>) -> (StatusCode, Json<Value>) {
    let a = a.lock().unwrap();
    match a.progress.iter().rev().find(|(k, _, _)| *k == key) {
        Some((_, step, version)) => (
            StatusCode::OK,
            Json(json!({"done": step == "enabled", "step": step, "version": version})),
        ),
        None => (StatusCode::NOT_FOUND, Json(json!({"done": false}))),
    }
}

async fn drain(State(a): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    let mut a = a.lock().unwrap();
    a.drained = true;
    a.journal
        .push(format!("{} drain {}", a.id, body["key"].as_str().unwrap()));
    StatusCode::OK
}

async fn deploy(State(a): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    let mut a = a.lock().unwrap();
    a.version = body["version"].as_str().unwrap().to_string();
    a.record(&body, "deployed");
    a.journal.push(format!(
        "{} {} {}",
        a.id,
        body["operation"].as_str().unwrap(),
        a.version
    ));
    StatusCode::OK
}

async fn health(State(a): State<Shared>) -> Json<Value> {
    let a = a.lock().unwrap();
    let healthy = a.faulty.as_ref() != Some(&a.version);
    Json(json!({"healthy": healthy, "version": a.version}))
}

async fn metrics(State(a): State<Shared>) -> String {
    let a = a.lock().unwrap();
    let ratio = if a.erroring.as_ref() == Some(&a.version) {
        0.2
    } else {
        0.0
    };
    format!(
        "# TYPE app_error_ratio gauge\napp_error_ratio{{version=\"{}\"}} {ratio}\n",
        a.version
    )
}

async fn enable(State(a): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    let mut a = a.lock().unwrap();
    a.drained = false;
    a.record(&body, "enabled");
    a.journal.push(format!("{} enable", a.id));
    StatusCode::OK
}

/// Starts an agent for target `id` on version 1.0.0; on the version
/// `faulty`, if any, it never becomes healthy.
pub async fn agent(
    id: &'static str,
    faulty: Option<&str>,
    journal: &Journal,
) -> (std::net::SocketAddr, Shared) {
    let state = Arc::new(Mutex::new(Agent {
        id,
        version: "1.0.0".into(),
        drained: false,
        faulty: faulty.map(str::to_string),
        erroring: None,
        progress: Vec::new(),
        journal: journal.clone(),
    }));
    let app = Router::new()
        .route("/agent/operations/{key}", get(operation))
        .route("/agent/drain", post(drain))
        .route("/agent/deploy", post(deploy))
        .route("/agent/health", get(health))
        .route("/agent/enable", post(enable))
        .route("/agent/metrics", get(metrics))
        .with_state(state.clone());
    (serve(app).await, state)
}
