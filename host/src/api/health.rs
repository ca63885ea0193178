//! Liveness, readiness and metrics: `/healthz` answers while the process
//! serves, `/readyz` says whether the store answers and the engine runs;
//! `/metrics` serves the Prometheus text format.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::release::Status;

// Only describes, in the API document, the body `ready` writes with `json!`.
/// Whether the daemon is ready, part by part.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes a body built with `json!`")]
pub struct ReadinessDto {
    /// `ok` or `unavailable`.
    store: String,
    /// `running` or `stopping`.
    engine: String,
}

/// Checks that the process is alive.
///
/// `GET /healthz`: `ok` while the process serves.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "alive",
    tag = "operations",
    responses((status = 200, description = "The process serves.", body = String, example = "ok"))
)]
pub async fn alive() -> &'static str {
    "ok"
}

/// Checks that the daemon is ready.
///
/// `GET /readyz`: 200 when the store answers and the engine runs, 503
/// otherwise, with what is wrong.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ready",
    tag = "operations",
    responses(
        (status = 200, description = "The store answers and the engine runs.", body = ReadinessDto,
            example = json!({"store": "ok", "engine": "running"})),
        (status = 503, description = "The store does not answer or the engine is stopping.", body = ReadinessDto,
            example = json!({"store": "unavailable", "engine": "running"})),
    )
)]
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

/// Scrapes the metrics.
///
/// `GET /metrics` (any token): the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Plugin invocations by outcome with their latency, stage durations, releases by status and approvals waiting.",
            body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
