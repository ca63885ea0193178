//! Readiness and metrics: `/readyz` says whether the store answers and the
//! engine runs; `/metrics` serves the Prometheus text format.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{ApiError, AppState, Caller};
use crate::domain::release::Status;

/// `GET /readyz`: 200 when the store answers and the engine runs, 503
/// otherwise, with what is wrong.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = match state.store.has_tokens() {
        Ok(_) => "ok".to_string(),
        Err(e) => {
            tracing::error!(error = %e, "The store does not answer.");
            "unavailable".to_string()
        }
    };
    let engine = if state.engine.running() {
        "running"
    } else {
        "stopping"
    };
    let ok = store == "ok" && engine == "running";
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"store": store, "engine": engine})))
}

/// `GET /metrics` (any token): the Prometheus text format.
pub async fn metrics(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let summaries = state.engine.list()?;
    let counts: Vec<(&str, i64)> = Status::ALL
        .iter()
        .map(|s| {
            let n = summaries.iter().filter(|r| r.status == *s).count() as i64;
            (s.as_str(), n)
        })
        .collect();
    let metrics = state.registry.metrics();
    metrics.set_releases(&counts);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    ))
}
