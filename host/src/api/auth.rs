//! Bearer-token authentication: the token's hash is looked up in the store.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::store::Role;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
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

/// The hash a token is stored under.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let unauthorized = |message: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.unauthorized",
                message.to_string(),
            )
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("an `Authorization: Bearer TOKEN` header is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
        let record = state
            .store
            .token(&token_hash(token))
            .map_err(|e| ApiError::internal("Cannot read tokens", &e))?
            .filter(|r| !r.revoked)
            .ok_or_else(|| unauthorized("the token is unknown or revoked"))?;
        Ok(Caller {
            name: record.name,
            role: record.role,
        })
    }
}
