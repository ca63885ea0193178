//! The audit trail: a middleware that records every state-changing request
//! (allowed, denied or refused) with who made it, from where, what it did
//! and how it ended; and the route that reads the log.

use std::net::SocketAddr;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::{ApiError, AppState, Caller, JSON_BODY_LIMIT, auth};
use crate::store::{AuditEntry, AuditFilter, Role};

/// Responses are small JSON documents; larger ones are passed on unread.
const RESPONSE_READ_LIMIT: usize = 4 * 1024 * 1024;

fn identify(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match auth::identify(state, headers) {
        auth::Identity::Known(record) => (record.name, Some(record.role.as_str().to_string())),
        auth::Identity::Unknown => ("unknown-token".to_string(), None),
        auth::Identity::Anonymous => ("anonymous".to_string(), None),
    }
}

fn release_in(path: &str) -> Option<String> {
    path.strip_prefix("/api/v1/releases/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// Records every request that is not a read.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let action = format!(
        "{} {}",
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or("(no route)", |p| p.as_str())
    );
    let target = request.uri().path().to_string();
    let from = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let (actor, role) = identify(&state, request.headers());
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut comment = None;
    let request = if is_json {
        let (parts, body) = request.into_parts();
        match to_bytes(body, JSON_BODY_LIMIT).await {
            Ok(bytes) => {
                let body = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
                comment = body
                    .get("comment")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .filter(|c| !c.is_empty());
                // An emergency start and a start inside a freeze window are
                // always called out in the log.
                for (flag, label) in [
                    ("emergency", "emergency release"),
                    ("override_freeze", "freeze override"),
                ] {
                    if body.get(flag) == Some(&Value::Bool(true)) {
                        comment = Some(match comment {
                            Some(c) => format!("{label}: {c}"),
                            None => label.to_string(),
                        });
                    }
                }
                Request::from_parts(parts, Body::from(bytes))
            }
            Err(_) => {
                let response = ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request.too_large",
                    format!("the body is larger than {JSON_BODY_LIMIT} bytes"),
                )
                .into_response();
                let entry = AuditEntry {
                    seq: 0,
                    at_ms: state.engine.clock().now_ms(),
                    actor,
                    role,
                    action,
                    release: release_in(&target),
                    target,
                    from,
                    outcome: "refused".into(),
                    status: 413,
                    code: Some("request.too_large".into()),
                    comment: None,
                };
                append(&state, &entry);
                return response;
            }
        }
    } else {
        request
    };
    let response = next.run(request).await;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, RESPONSE_READ_LIMIT)
        .await
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let release = release_in(&target).or_else(|| {
        (action == "POST /api/v1/releases" && status.is_success())
            .then(|| answer["id"].as_str().map(str::to_string))
            .flatten()
    });
    // A sign-in presents its token in the body, never in the log: the
    // entry names the token it signed in with from the answer instead.
    let (actor, role) = if action == "POST /api/v1/session" && status.is_success() {
        (
            answer["name"].as_str().map_or(actor, str::to_string),
            answer["role"].as_str().map(str::to_string),
        )
    } else {
        (actor, role)
    };
    let outcome = match status.as_u16() {
        s if s < 400 => "allowed",
        401 | 403 => "denied",
        _ => "refused",
    };
    let entry = AuditEntry {
        seq: 0,
        at_ms: state.engine.clock().now_ms(),
        actor,
        role,
        action,
        target,
        from,
        outcome: outcome.into(),
        status: status.as_u16(),
        code: (!status.is_success())
            .then(|| answer["code"].as_str().map(str::to_string))
            .flatten(),
        release,
        comment,
    };
    append(&state, &entry);
    Response::from_parts(parts, Body::from(bytes))
}

fn append(state: &AppState, entry: &AuditEntry) {
    if let Err(e) = state.store.append_audit(entry) {
        tracing::error!(error = %e, action = %entry.action, "An audit entry cannot be written.");
    }
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this release.
    release: Option<String>,
    /// Only entries made with this token name.
    actor: Option<String>,
    /// Only entries at or after this time (milliseconds since the epoch).
    since_ms: Option<u64>,
    /// Only entries at or before this time (milliseconds since the epoch).
    until_ms: Option<u64>,
    /// At most this many entries (1 to 1,000; 100 by default).
    limit: Option<usize>,
}

/// One audit entry as served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryDto {
    pub seq: u64,
    pub at_ms: u64,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub target: String,
    pub from: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub code: Option<String>,
    pub release: Option<String>,
    pub comment: Option<String>,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(e: AuditEntry) -> AuditEntryDto {
        AuditEntryDto {
            seq: e.seq,
            at_ms: e.at_ms,
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target,
            from: e.from,
            outcome: e.outcome,
            status: e.status,
            code: e.code,
            release: e.release,
            comment: e.comment,
        }
    }
}

/// Reads the audit log.
///
/// `GET /api/v1/audit?release=&actor=&since_ms=&until_ms=&limit=`: newest
/// first (at most 1,000, default 100). Admins and release managers.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "The matching entries, newest first.", body = Vec<AuditEntryDto>),
        (status = 400, description = "A bad query.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither an admin nor a release manager.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEntryDto>>, ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))?;
    let filter = AuditFilter {
        release: q.release,
        actor: q.actor,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    Ok(Json(
        state
            .store
            .audit(&filter)?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}
