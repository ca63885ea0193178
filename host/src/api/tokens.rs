//! Token routes (admins only): create a token (its secret is shown once),
//! list tokens, revoke one.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::model::{CreateTokenRequest, CreatedTokenDto, TokenDto};
use super::{ApiError, AppState, Caller};
use crate::store::{self, Role, TokenRecord};

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// `POST /api/v1/tokens`: 201 with the new token's secret.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateTokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedTokenDto>), ApiError> {
    caller.require(&[])?;
    let Json(request) = body.map_err(super::json_error)?;
    if !valid_name(&request.name) {
        return Err(ApiError::bad_request(
            "token.invalid",
            format!(
                "name: `{}` is not a token name: 1 to 64 letters, digits, `-`, `_`, `.` or `@`",
                request.name
            ),
        ));
    }
    let role = Role::parse(&request.role).ok_or_else(|| {
        ApiError::bad_request(
            "token.invalid",
            format!(
                "role: `{}` is not a role: admin, release-manager, plugin-author, scheduler or viewer",
                request.role
            ),
        )
    })?;
    let secret =
        crate::server::new_token().map_err(|e| ApiError::internal("Cannot make a token", &e))?;
    let record = TokenRecord {
        name: request.name,
        role,
        created_at_ms: state.engine.clock().now_ms(),
        revoked: false,
        created_by: Some(caller.name.clone()),
    };
    match state
        .store
        .create_token(&super::token_hash(&secret), &record)
    {
        Err(store::Error::Conflict(m)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "token.exists", m));
        }
        other => other?,
    }
    state.store.flush()?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenDto {
            info: record.into(),
            token: secret,
        }),
    ))
}

/// `GET /api/v1/tokens`: every token, without secrets.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenDto>>, ApiError> {
    caller.require(&[])?;
    Ok(Json(
        state.store.tokens()?.into_iter().map(Into::into).collect(),
    ))
}

/// `DELETE /api/v1/tokens/{name}`: revokes a token at once.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TokenDto>, ApiError> {
    caller.require(&[])?;
    if name == caller.name {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "token.self_revoke",
            "a token cannot revoke itself; use another admin token",
        ));
    }
    let record = state.store.revoke_token(&name)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no token named `{name}`"),
        )
    })?;
    state.store.flush()?;
    Ok(Json(record.into()))
}
