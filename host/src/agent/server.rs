//! The agent API over HTTP, under `/agent`: bearer tokens only, bodies
//! bounded, every refusal a status with `{"code", "message"}`. Handlers
//! read the request and call one method of the [`Agent`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Agent, Step, StepError, StepRequest, valid_version};

/// The longest operation key accepted.
const MAX_KEY: usize = 512;

pub fn router(agent: Agent) -> Router {
    let limit = agent.max_body_bytes();
    Router::new()
        .route("/agent/operations/{key}", get(operation))
        .route("/agent/status", get(status))
        .route("/agent/drain", post(drain))
        .route("/agent/deploy", post(deploy))
        .route("/agent/enable", post(enable))
        .route_layer(axum::middleware::from_fn_with_state(
            agent.clone(),
            authorize,
        ))
        // Health is open, as load balancers and checks probe it without a
        // token; it says only whether the service is healthy, and on what.
        .route("/agent/health", get(health))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(agent)
}

type This = State<Agent>;

fn refusal(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"code": code, "message": message.into()});
    (status, axum::Json(body)).into_response()
}

/// Lets through requests bearing the agent's token.
async fn authorize(State(agent): This, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => refusal(
            StatusCode::UNAUTHORIZED,
            "auth.missing_token",
            "send `Authorization: Bearer TOKEN` with the agent's token (grant it to the deployer as the secret `agent_token`)",
        ),
        // Compared as digests, so the time taken says nothing of the token.
        Some(token) if Sha256::digest(token.trim()) == Sha256::digest(agent.token()) => {
            next.run(request).await
        }
        Some(_) => refusal(
            StatusCode::UNAUTHORIZED,
            "auth.bad_token",
            "the bearer token is not this agent's",
        ),
    }
}

/// The body of every `POST`.
#[derive(Deserialize)]
struct Body {
    key: String,
    version: String,
    operation: String,
}

/// The request in `body`, or what is wrong with it.
fn step_request(body: &Bytes) -> Result<StepRequest, String> {
    let bad = |message: String| message;
    let body: Body = serde_json::from_slice(body).map_err(|e| bad(format!("the body: {e}")))?;
    if body.key.is_empty() || body.key.len() > MAX_KEY {
        return Err(bad(format!("`key` must be 1 to {MAX_KEY} characters")));
    }
    if !valid_version(&body.version) {
        return Err(bad(format!(
            "`version` `{}` may hold only letters, digits, `.`, `_`, `+` and `-`, and not start with `.`",
            body.version.chars().take(130).collect::<String>()
        )));
    }
    if !matches!(body.operation.as_str(), "deploy" | "rollback") {
        return Err(bad(format!(
            "`operation` must be `deploy` or `rollback`, not `{}`",
            body.operation.chars().take(40).collect::<String>()
        )));
    }
    Ok(StepRequest {
        key: body.key,
        version: body.version,
        operation: body.operation,
    })
}

fn answer(request: &StepRequest, outcome: Result<Step, StepError>) -> Response {
    match outcome {
        Ok(step) => (
            StatusCode::OK,
            axum::Json(
                json!({"key": request.key, "step": step.as_str(), "version": request.version}),
            ),
        )
            .into_response(),
        Err(e) => {
            let status = match e.code {
                "artifact.checksum_mismatch"
                | "artifact.no_checksum"
                | "artifact.too_large"
                | "artifact.unpack_failed" => StatusCode::UNPROCESSABLE_ENTITY,
                "enable.unhealthy" => StatusCode::CONFLICT,
                "agent.journal_failed" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_GATEWAY,
            };
            refusal(status, e.code, e.message)
        }
    }
}

/// A step runs in a task of its own, so that a client that gives up (a
/// deployer's request timing out) does not cut it off half-way.
fn whole(
    joined: Result<Result<Step, StepError>, tokio::task::JoinError>,
) -> Result<Step, StepError> {
    joined.unwrap_or_else(|e| Err(StepError::new("agent.step_panicked", e.to_string())))
}

async fn operation(State(agent): This, Path(key): Path<String>) -> Response {
    match agent.operation(&key) {
        Some(op) => axum::Json(json!({
            "key": op.key,
            "step": op.step.map(Step::as_str),
            "done": op.step == Some(Step::Enabled),
            "version": op.version,
            "operation": op.operation,
            "error": op.error,
        }))
        .into_response(),
        None => refusal(
            StatusCode::NOT_FOUND,
            "operation.unknown",
            format!("no step was done under `{key}`"),
        ),
    }
}

async fn health(State(agent): This) -> Response {
    axum::Json(agent.health().await).into_response()
}

async fn status(State(agent): This) -> Response {
    axum::Json(agent.status().await).into_response()
}

async fn drain(State(agent): This, body: Bytes) -> Response {
    match step_request(&body) {
        Ok(r) => {
            let task = tokio::spawn({
                let r = r.clone();
                async move { agent.drain(&r).await }
            });
            answer(&r, whole(task.await))
        }
        Err(problem) => refusal(StatusCode::BAD_REQUEST, "request.invalid", problem),
    }
}

async fn deploy(State(agent): This, body: Bytes) -> Response {
    match step_request(&body) {
        Ok(r) => {
            let task = tokio::spawn({
                let r = r.clone();
                async move { agent.deploy(&r).await }
            });
            answer(&r, whole(task.await))
        }
        Err(problem) => refusal(StatusCode::BAD_REQUEST, "request.invalid", problem),
    }
}

async fn enable(State(agent): This, body: Bytes) -> Response {
    match step_request(&body) {
        Ok(r) => {
            let task = tokio::spawn({
                let r = r.clone();
                async move { agent.enable(&r).await }
            });
            answer(&r, whole(task.await))
        }
        Err(problem) => refusal(StatusCode::BAD_REQUEST, "request.invalid", problem),
    }
}
