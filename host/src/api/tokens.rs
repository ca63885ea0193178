//! Token routes (admins only): create a token (its secret is shown once),
//! list tokens, revoke one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ErrorBody;
use super::model::{CreateTokenRequest, CreatedTokenDto, TokenDto};
use super::{ApiError, AppState, Caller, JsonBody};
use crate::store::{self, Role, TokenRecord};

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Creates a token.
///
/// `POST /api/v1/tokens`: 201 with the new token's secret.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "create_token",
    tag = "tokens",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "The token, with its secret; the only time the secret is shown.", body = CreatedTokenDto),
        (status = 400, description = "A bad body, name or role.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 409, description = "A token of that name exists.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedTokenDto>), ApiError> {
    caller.require(&[])?;
    let request = body.read()?;
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
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenDto {
            info: record.into(),
            token: secret,
        }),
    ))
}

/// Lists tokens.
///
/// `GET /api/v1/tokens`: every token, without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "Every token, without secrets.", body = Vec<TokenDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenDto>>, ApiError> {
    caller.require(&[])?;
    Ok(Json(
        state.store.tokens()?.into_iter().map(Into::into).collect(),
    ))
}

/// Revokes a token.
///
/// `DELETE /api/v1/tokens/{name}`: revokes a token at once.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{name}",
    operation_id = "revoke_token",
    tag = "tokens",
    params(("name" = String, Path, description = "The token's name.")),
    responses(
        (status = 200, description = "The token, now revoked.", body = TokenDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such token.", body = ErrorBody),
        (status = 409, description = "A token cannot revoke itself.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
    Ok(Json(record.into()))
}
