//! Authentication: a bearer token, or a browser session cookie opened with
//! one; either way the token's hash is looked up in the store.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};

use super::{ApiError, AppState};
use crate::identity::{Access, hash};
use crate::store::{Role, SessionRecord, TokenRecord};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// What the caller was let in with, for answers that outlive the request.
    pub access: Access,
}

impl Caller {
    /// Refuses the call unless the caller has one of the roles (admin always may).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!(
                "token `{}` has role {}, and this needs {}",
                self.name,
                self.role.as_str(),
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .chain(["admin"])
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ))
    }
}

/// The cookie that carries a browser session's id.
pub const SESSION_COOKIE: &str = "greenlight_session";

/// The header a cookie-authenticated, state-changing request must carry,
/// holding the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a request presents to say who it is.
enum Credential {
    None,
    /// `Authorization: Bearer TOKEN`; it wins over a cookie.
    Bearer(String),
    /// The session cookie's id.
    Session(String),
    /// An `Authorization` header that is not `Bearer TOKEN`.
    Malformed,
}

fn credential(headers: &HeaderMap) -> Credential {
    if let Some(header) = headers.get(header::AUTHORIZATION) {
        return header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map_or(Credential::Malformed, |t| Credential::Bearer(t.to_string()));
    }
    session_id(headers).map_or(Credential::None, Credential::Session)
}

/// The session id in the request's cookies, if any.
pub(super) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether two secrets are equal, in time that does not depend on where
/// they first differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token behind a request's credential, as far as it can be found:
/// the audit log names callers even when they are refused.
pub(super) enum Identity {
    Anonymous,
    Unknown,
    Known(TokenRecord),
}

/// Finds who a request claims to be, without judging whether it may act.
pub(super) fn identify(state: &AppState, headers: &HeaderMap) -> Identity {
    let token_hash = match credential(headers) {
        Credential::None => return Identity::Anonymous,
        Credential::Malformed => return Identity::Unknown,
        Credential::Bearer(token) => hash(&token),
        Credential::Session(id) => match state.store.session(&hash(&id)) {
            Ok(Some(session)) => session.token_hash,
            _ => return Identity::Unknown,
        },
    };
    match state.store.token(&token_hash) {
        Ok(Some(record)) => Identity::Known(record),
        _ => Identity::Unknown,
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "auth.unauthorized",
        message.to_string(),
    )
}

fn csrf_refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "auth.csrf", message.to_string())
}

/// Checks a cookie-authenticated request that changes state: it must come
/// from our own pages (same origin) and carry the session's CSRF token,
/// which a cross-site form or script cannot read.
fn check_csrf(parts: &Parts, session: &SessionRecord) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if host.is_none() || origin_host != host {
            return Err(csrf_refused(
                "the request comes from another origin than this daemon's pages",
            ));
        }
    }
    let presented = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            csrf_refused(
                "a signed-in browser request that changes state needs the X-CSRF-Token header",
            )
        })?;
    if !same_secret(presented, &session.csrf) {
        return Err(csrf_refused(
            "the X-CSRF-Token header does not match the session",
        ));
    }
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let mut session_hash = None;
        let hash = match credential(&parts.headers) {
            Credential::None => {
                return Err(unauthorized(
                    "an `Authorization: Bearer TOKEN` header or a signed-in session is required",
                ));
            }
            Credential::Malformed => {
                return Err(unauthorized(
                    "the Authorization header must be `Bearer TOKEN`",
                ));
            }
            Credential::Bearer(token) => hash(&token),
            Credential::Session(id) => {
                let id_hash = hash(&id);
                let session = state
                    .store
                    .session(&id_hash)
                    .map_err(|e| ApiError::internal("Cannot read sessions", &e))?
                    .filter(|s| s.expires_ms > state.engine.clock().now_ms())
                    .ok_or_else(|| unauthorized("the session has ended; sign in again"))?;
                check_csrf(parts, &session)?;
                session_hash = Some(id_hash);
                session.token_hash
            }
        };
        let record = state
            .store
            .token(&hash)
            .map_err(|e| ApiError::internal("Cannot read tokens", &e))?
            .filter(|r| !r.revoked)
            .ok_or_else(|| unauthorized("the token is unknown or revoked"))?;
        Ok(Caller {
            name: record.name,
            role: record.role,
            access: Access {
                token_hash: hash,
                session_hash,
            },
        })
    }
}
