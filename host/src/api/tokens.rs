//! Token routes (admins only): create a token (its secret is shown once),
//! list tokens, revoke one.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ErrorBody;
use super::model::{CreateTokenRequest, CreatedTokenDto, TokenDto};
use super::rules;
use super::{ApiError, AppState, AuditNote, Caller, JsonBody};
use crate::identity;

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
    let (record, secret) =
        state
            .identity
            .create_token(&request.name, &request.role, Some(&caller.name))?;
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
        state
            .identity
            .tokens()?
            .into_iter()
            .map(Into::into)
            .collect(),
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
    params(("name" = rules::Name, Path, description = "The token's name.")),
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
    let record = state.identity.revoke_token(&name, &caller.name)?;
    Ok(Json(record.into()))
}

/// The query naming a token to revoke.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevokeQuery {
    /// The token's name, exactly as stored: names from before the name rule
    /// (such as `..`, which a path cannot carry) are revoked this way.
    #[param(max_length = 1024, min_length = 1)]
    name: String,
}

/// Revokes a token named in the query.
///
/// `DELETE /api/v1/tokens?name=NAME`: the same as `DELETE
/// /api/v1/tokens/{name}`, for any stored name, including those a URL path
/// cannot carry (`.` and `..` are collapsed on the way).
#[utoipa::path(
    delete,
    path = "/api/v1/tokens",
    operation_id = "revoke_token_named",
    tag = "tokens",
    params(RevokeQuery),
    responses(
        (status = 200, description = "The token, now revoked.", body = TokenDto),
        (status = 400, description = "A bad query.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such token.", body = ErrorBody),
        (status = 409, description = "A token cannot revoke itself.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_named(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<RevokeQuery>, QueryRejection>,
) -> Result<(AuditNote, Json<TokenDto>), ApiError> {
    caller.require(&[])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))?;
    let record = state.identity.revoke_token(&q.name, &caller.name)?;
    // The path does not name the token, so the audit entry says which.
    let note = AuditNote::comment(&format!("token `{}`", record.name), &[]);
    Ok((note, Json(record.into())))
}

impl From<identity::Error> for ApiError {
    fn from(e: identity::Error) -> ApiError {
        use identity::Error as E;
        match e {
            E::Invalid(m) => ApiError::bad_request("token.invalid", m),
            E::Exists(m) => ApiError::new(StatusCode::CONFLICT, "token.exists", m),
            E::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            E::SelfRevoke => {
                ApiError::new(StatusCode::CONFLICT, "token.self_revoke", e.to_string())
            }
            E::Unknown => {
                ApiError::new(StatusCode::UNAUTHORIZED, "auth.unauthorized", e.to_string())
            }
            E::Randomness(_) | E::Keep(_) => ApiError::internal("Cannot make a secret", &e),
            E::Store(e) => ApiError::internal("The store failed", &e),
        }
    }
}
