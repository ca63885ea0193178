//! Browser sessions: the web UI signs in with a token once and then carries
//! an HttpOnly, SameSite=Strict cookie, plus a CSRF token on every request
//! that changes state.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{SESSION_COOKIE, session_id};
use super::error::ErrorBody;
use super::{ApiError, AppState, AuditNote, Caller, JsonBody};
use crate::identity::SESSION_MS;

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// An API token; it is checked, never stored in the browser.
    pub token: String,
}

/// Who is signed in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionDto {
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: String,
    /// The value to send as `X-CSRF-Token` with every request that changes
    /// state; absent for bearer-token callers, who need none.
    pub csrf: Option<String>,
    /// When the session ends (milliseconds since the epoch).
    pub expires_ms: Option<u64>,
}

/// The cookie, marked `Secure` when a TLS proxy says the browser reached us
/// over HTTPS (a plain loopback daemon cannot set a `Secure` cookie).
fn cookie(headers: &HeaderMap, value: &str, max_age_s: u64) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Signs a browser in.
///
/// `POST /api/v1/session`: checks the token and answers with a session
/// cookie and the session's CSRF token.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    operation_id = "sign_in",
    tag = "session",
    request_body = SignInRequest,
    responses(
        (status = 201, description = "Signed in; the cookie is set.", body = SessionDto),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 401, description = "The token is unknown or revoked.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<SignInRequest>,
) -> Result<Response, ApiError> {
    let request = body.read()?;
    let opened = state.identity.sign_in(&request.token)?;
    let note = AuditNote {
        signed_in: Some((
            opened.token.name.clone(),
            opened.token.role.as_str().to_string(),
        )),
        ..AuditNote::default()
    };
    let dto = SessionDto {
        name: opened.token.name,
        role: opened.token.role.as_str().to_string(),
        csrf: Some(opened.session.csrf),
        expires_ms: Some(opened.session.expires_ms),
    };
    let id = opened.id;
    let mut response = (StatusCode::CREATED, note, Json(dto)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&headers, &id, SESSION_MS / 1000));
    Ok(response)
}

/// Says who is signed in.
///
/// `GET /api/v1/session`: the caller, with the session's CSRF token when it
/// is a browser session.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    operation_id = "show_session",
    tag = "session",
    responses(
        (status = 200, description = "The caller.", body = SessionDto),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<SessionDto>, ApiError> {
    let session = match session_id(&headers) {
        Some(id) => state.identity.session(&id)?,
        None => None,
    };
    Ok(Json(SessionDto {
        name: caller.name,
        role: caller.role.as_str().to_string(),
        csrf: session.as_ref().map(|s| s.csrf.clone()),
        expires_ms: session.map(|s| s.expires_ms),
    }))
}

/// Signs a browser out.
///
/// `DELETE /api/v1/session`: ends the session and clears the cookie.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    operation_id = "sign_out",
    tag = "session",
    responses(
        (status = 204, description = "Signed out."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "The CSRF token is missing or wrong.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn sign_out(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_id(&headers) {
        state.identity.sign_out(&id)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&headers, "", 0));
    Ok(response)
}
