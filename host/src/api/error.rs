//! The one error shape of the API: an HTTP status and
//! `{ "code": "...", "message": "..." }` with a stable code. Internal error
//! chains go to the log, never to the client.
//!
//! The status says what kind of rule a refused request breaks, so that a
//! client (or a fuzzer reading the OpenAPI document) can tell them apart:
//! 400 for a malformed request (not JSON, a wrong type, a name that breaks
//! its pattern: anything the document states), 422 for a request that
//! matches the document but breaks a rule only words state (a cron
//! expression that does not parse, an end not after its start, a target id
//! used twice), and 404 when all it does wrong is name a thing that does
//! not exist. The code stays the route's (`schedule.invalid`) whichever the
//! status, and the message names the field at fault.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::flow::{FlowError, Rule, join_errors, strictest};
use crate::plugins;
use crate::registry;
use crate::store;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"code": "not_found", "message": "no token named `ci`"}))]
pub struct ErrorBody<'a> {
    /// A stable code, such as `not_found`, `auth.unauthorized` or
    /// `plugin.world_mismatch`.
    code: &'a str,
    /// What went wrong, for a human.
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The refusal of a request with `problems`, each naming its field,
    /// answered by the strictest kind of rule they break: 400 when the
    /// request breaks a rule the document states (it is malformed), 422
    /// when it matches the document but breaks a rule only words state,
    /// 404 when all it does wrong is name things that do not exist.
    pub fn refused(code: &'static str, problems: &[FlowError]) -> ApiError {
        let status = match strictest(problems) {
            Rule::Stated => StatusCode::BAD_REQUEST,
            Rule::Worded => StatusCode::UNPROCESSABLE_ENTITY,
            Rule::Missing => StatusCode::NOT_FOUND,
        };
        ApiError::new(status, code, join_errors(problems))
    }

    /// An internal failure: logged in full, answered without details.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context}; see the daemon's log"),
        )
    }
}

/// The code of an error answer, kept on the response for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            code: self.code,
            message: &self.message,
        });
        let mut response = (self.status, body).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

impl From<plugins::Error> for ApiError {
    fn from(e: plugins::Error) -> ApiError {
        use plugins::Error as E;
        let (status, code) = match &e {
            E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "plugin.too_large"),
            E::NotWasm => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.not_wasm"),
            E::CoreModule => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.core_module"),
            E::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.invalid"),
            E::UnknownWorld(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.unknown_world"),
            E::UnknownImport(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.unknown_import"),
            E::Unlinkable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.unlinkable"),
            E::WorldMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "plugin.world_mismatch"),
            E::Setup(_) => return ApiError::internal("The plugin runtime failed", &e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<registry::Error> for ApiError {
    fn from(e: registry::Error) -> ApiError {
        use registry::Error as E;
        match e {
            E::BadName(m) => ApiError::bad_request("plugin.bad_name", m),
            E::BadVersion(m) => ApiError::bad_request("plugin.bad_version", m),
            E::BadGrant(m) => ApiError::bad_request("grant.invalid", m),
            E::GrantAboveBounds(m) | E::GrantTlsUnusable(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "grant.invalid", m)
            }
            E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            E::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "plugin.version_exists", m),
            E::NotOwner(m) => ApiError::new(StatusCode::FORBIDDEN, "plugin.not_owner", m),
            E::NotApproved(m) => ApiError::new(StatusCode::CONFLICT, "plugin.not_approved", m),
            E::Plugin(e) => e.into(),
            E::Store(e) => ApiError::internal("The store failed", &e),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> ApiError {
        match e {
            store::Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            other => ApiError::internal("The store failed", &other),
        }
    }
}

/// Gives every error answer the `{code, message}` shape, including the
/// plain-text refusals of the HTTP layer (a path parameter that is not
/// UTF-8, say), which keep their text as the message.
pub async fn uniform(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status.as_u16() {
        400 => "request.invalid",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "request.too_large",
        415 => "request.unsupported_media_type",
        422 => "request.unprocessable",
        s if s >= 500 => "internal",
        _ => "request.refused",
    };
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() || status.is_server_error() {
        status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_string()
    } else {
        text
    };
    ApiError::new(status, code, message).into_response()
}
