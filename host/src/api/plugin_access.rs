//! Plugin ownership and approval routes: who publishes under a name, and
//! which versions run under the plugin's grant.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ErrorBody;
use super::model::{OwnersDto, PluginDto};
use super::release_model::CommentRequest;
use super::{ApiError, AppState, AuditNote, Caller, JsonBody, rules};
use crate::store::Role;

/// Refuses a plugin-author who does not own the plugin; admins always pass.
pub(super) fn require_owner(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        return Ok(());
    }
    let owners = state.registry.owners(name)?;
    if owners.contains(&caller.name) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "plugin.not_owner",
        format!(
            "plugin `{name}` belongs to {}; `{}` is not among its owners",
            owners.join(", "),
            caller.name
        ),
    ))
}

/// Approves a plugin version.
///
/// `POST /api/v1/plugins/{name}/{version}/approve` (admin only): the version
/// runs under the plugin's grant from now on, and flows that name no version
/// pick it when it is the highest approved. Approving again changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/plugins/{name}/{version}/approve",
    operation_id = "approve_plugin_version",
    tag = "plugins",
    params(
        ("name" = rules::Name, Path, description = "The plugin's name."),
        ("version" = rules::SemVer, Path, description = "An exact semantic version."),
    ),
    request_body(content = CommentRequest, description = "An optional comment, kept in the audit log."),
    responses(
        (status = 200, description = "The version, approved.", body = PluginDto),
        (status = 400, description = "A bad body or version.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such plugin version.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    body: JsonBody<CommentRequest>,
) -> Result<(AuditNote, Json<PluginDto>), ApiError> {
    caller.require(&[])?;
    let comment =
        super::releases::checked_comment(body.read_or_default()?.comment, "plugin.bad_comment")?;
    let record = state.registry.approve(&name, &version, &caller.name)?;
    Ok((AuditNote::comment(&comment, &[]), Json(record.into())))
}

/// Replaces a plugin's owners.
///
/// `PUT /api/v1/plugins/{name}/owners` (admin only): the token names that
/// may publish new versions under the plugin's name.
#[utoipa::path(
    put,
    path = "/api/v1/plugins/{name}/owners",
    operation_id = "set_plugin_owners",
    tag = "plugins",
    params(("name" = rules::Name, Path, description = "The plugin's name.")),
    request_body = OwnersDto,
    responses(
        (status = 200, description = "The owners now in force.", body = OwnersDto),
        (status = 400, description = "A bad body, or no owner.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such plugin.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn set_owners(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<OwnersDto>,
) -> Result<Json<OwnersDto>, ApiError> {
    caller.require(&[])?;
    let request = body.read()?;
    let owners = state.registry.set_owners(&name, &request.owners)?;
    Ok(Json(OwnersDto { owners }))
}
