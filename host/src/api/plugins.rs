//! Plugin routes: upload, list, show, grant, invoke.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::model::{
    GrantDto, GrantEditDto, GrantView, InvokeRequest, InvokeResponse, PluginDetailDto, PluginDto,
    RuntimeDto, UploadDto,
};
use super::rules;
use super::{ApiError, AppState, Caller, JsonBody};
use crate::registry::Publisher;
use crate::store::{PutOutcome, Role};

/// The query of an upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The plugin's name.
    #[param(value_type = rules::Name)]
    name: String,
    /// The version, a semantic version.
    #[param(value_type = rules::SemVer)]
    version: String,
}

// Only describes, in the API document, the body `upload` reads as raw bytes.
/// A WebAssembly component's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, content_media_type = "application/wasm")]
#[expect(dead_code, reason = "describes a body read as raw bytes")]
pub struct ComponentBytes(Vec<u8>);

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request("request.bad_query", e.body_text())
}

/// Uploads a plugin version.
///
/// `POST /api/v1/plugins?name=N&version=V` with the component's bytes. Waits
/// for the compile (on a blocking thread) and answers 201, or 200 when the
/// same bytes were already stored. An upload whose declared length is above
/// the limit is refused before its body is read.
#[utoipa::path(
    post,
    path = "/api/v1/plugins",
    operation_id = "upload_plugin",
    tag = "plugins",
    params(UploadQuery),
    request_body(
        description = "The WebAssembly component's bytes.",
        content(
            (ComponentBytes = "application/wasm"),
            (ComponentBytes = "application/octet-stream")
        )
    ),
    responses(
        (status = 201, description = "Validated, compiled and stored.", body = UploadDto),
        (status = 200, description = "The same bytes were already stored under this version.", body = UploadDto),
        (status = 400, description = "A bad query, name or version.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not upload plugins, or another team owns the name.", body = ErrorBody),
        (status = 409, description = "Other bytes are stored under this version.", body = ErrorBody),
        (status = 413, description = "The upload is larger than the limit.", body = ErrorBody),
        (status = 422, description = "Not a valid plugin component.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadDto>), ApiError> {
    caller.require(&[Role::PluginAuthor])?;
    let Query(q) = query.map_err(query_error)?;
    let limit = state.registry.runtime().options().max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "plugin.too_large",
            format!("the upload is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    // The body is read only in its turn, and dropped before the next turn
    // begins, so concurrent uploads cost a bounded amount of memory.
    let _turn = state.registry.upload_turn().await;
    let body = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| too_large())?;
    let (record, outcome) = state
        .registry
        .upload(
            &q.name,
            &q.version,
            Vec::from(body),
            Publisher {
                name: &caller.name,
                admin: caller.role == Role::Admin,
            },
        )
        .await?;
    let created = outcome == PutOutcome::Created;
    let status = super::created_status(created);
    Ok((
        status,
        Json(UploadDto {
            created,
            advice: crate::plugins::stack_advice(
                record.stack_bytes,
                state.registry.runtime().options(),
            ),
            plugin: record.into(),
        }),
    ))
}

/// Lists plugins.
///
/// `GET /api/v1/plugins`: every plugin version.
#[utoipa::path(
    get,
    path = "/api/v1/plugins",
    operation_id = "list_plugins",
    tag = "plugins",
    responses(
        (status = 200, description = "Every plugin version.", body = Vec<PluginDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<PluginDto>>, ApiError> {
    let records = state.registry.list()?;
    Ok(Json(records.into_iter().map(Into::into).collect()))
}

/// Shows a plugin.
///
/// `GET /api/v1/plugins/{name}`: the versions and the grant.
#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}",
    operation_id = "show_plugin",
    tag = "plugins",
    params(("name" = rules::Name, Path, description = "The plugin's name.")),
    responses(
        (status = 200, description = "The plugin's versions and grant.", body = PluginDetailDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such plugin.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn detail(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PluginDetailDto>, ApiError> {
    let versions = state.registry.versions(&name)?;
    let grant = state.registry.grant(&name)?;
    let used_by = state.catalog.flows_using(&name)?;
    let kv_used_bytes = crate::plugins::KvBackend::used_bytes(&state.store, &name)
        .map_err(|e| ApiError::internal("Cannot read a plugin's key-value usage", &e))?;
    let kv_quota_bytes = state
        .registry
        .runtime()
        .options()
        .kv_quota_mib
        .saturating_mul(1 << 20);
    let owners = state.registry.owners(&name)?;
    Ok(Json(PluginDetailDto {
        owners,
        name,
        versions: versions.into_iter().map(Into::into).collect(),
        grant: GrantView::from(&*grant),
        used_by,
        kv_used_bytes,
        kv_quota_bytes,
    }))
}

/// Shows a plugin version.
///
/// `GET /api/v1/plugins/{name}/{version}`; `latest` names the highest version.
#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}/{version}",
    operation_id = "show_plugin_version",
    tag = "plugins",
    params(
        ("name" = rules::Name, Path, description = "The plugin's name."),
        ("version" = rules::PluginVersion, Path, description = "A semantic version, or `latest`."),
    ),
    responses(
        (status = 200, description = "The plugin version.", body = PluginDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such plugin version.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<PluginDto>, ApiError> {
    Ok(Json(state.registry.version(&name, &version)?.into()))
}

/// Replaces a plugin's grant.
///
/// `PUT /api/v1/plugins/{name}/grant`: replaces the grant (admin only).
#[utoipa::path(
    put,
    path = "/api/v1/plugins/{name}/grant",
    operation_id = "set_grant",
    tag = "plugins",
    params(("name" = rules::Name, Path, description = "The plugin's name.")),
    request_body = GrantDto,
    responses(
        (status = 200, description = "The grant now in force, without secret values.", body = GrantView),
        (status = 400, description = "A bad body, or an origin or limit the document refuses; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such plugin.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A limit above this daemon's bound; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn set_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<GrantDto>,
) -> Result<Json<GrantView>, ApiError> {
    caller.require(&[])?;
    let dto = body.read()?;
    let grant = dto
        .into_grant()
        .map_err(|m| ApiError::bad_request("grant.invalid", m))?;
    let grant = state.registry.set_grant(&name, grant)?;
    Ok(Json(GrantView::from(&*grant)))
}

/// Changes a plugin's grant.
///
/// `PATCH /api/v1/plugins/{name}/grant`: adds, changes and removes entries
/// (admin only), keeping everything the edit does not name, secrets
/// included. The result is checked as a whole grant would be.
#[utoipa::path(
    patch,
    path = "/api/v1/plugins/{name}/grant",
    operation_id = "edit_grant",
    tag = "plugins",
    params(("name" = rules::Name, Path, description = "The plugin's name.")),
    request_body = GrantEditDto,
    responses(
        (status = 200, description = "The grant now in force, without secret values.", body = GrantView),
        (status = 400, description = "A bad body, an origin or limit the document refuses, or the removal of an entry the grant does not hold; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such plugin.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A limit above this daemon's bound, or TLS settings the grant cannot use; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn edit_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<GrantEditDto>,
) -> Result<Json<GrantView>, ApiError> {
    caller.require(&[])?;
    let edit = body
        .read()?
        .into_edit()
        .map_err(|m| ApiError::bad_request("grant.invalid", m))?;
    let grant = state.registry.edit_grant(&name, &edit)?;
    Ok(Json(GrantView::from(&*grant)))
}

/// Invokes a plugin version.
///
/// `POST /api/v1/plugins/{name}/{version}/invoke`: runs one call through the
/// real sandbox; a plugin's failure is reported in the body, not as an
/// HTTP error.
#[utoipa::path(
    post,
    path = "/api/v1/plugins/{name}/{version}/invoke",
    operation_id = "invoke_plugin",
    tag = "plugins",
    params(
        ("name" = rules::Name, Path, description = "The plugin's name."),
        ("version" = rules::PluginVersion, Path, description = "A semantic version, or `latest`."),
    ),
    request_body = InvokeRequest,
    responses(
        (status = 200, description = "The call ran; a plugin's failure is reported in the body.", body = InvokeResponse),
        (status = 400, description = "A bad body, or targets the document refuses; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not invoke plugins, or it does not own this one.", body = ErrorBody),
        (status = 404, description = "No such plugin version.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "Input the function cannot take, such as a target id used twice or a deployer's call without an idempotency key.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    body: JsonBody<InvokeRequest>,
) -> Result<Json<InvokeResponse>, ApiError> {
    caller.require(&[Role::PluginAuthor])?;
    let request = body.read()?;
    let record = state.registry.version(&name, &version)?;
    super::plugin_access::require_owner(&state, &caller, &name)?;
    let kind = record
        .kind
        .parse()
        .map_err(|e: String| ApiError::internal("A stored plugin has an unknown kind", &e))?;
    let call = request
        .into_call(kind)
        .map_err(|problems| ApiError::refused("invoke.bad_input", &problems))?;
    let result = state.registry.invoke(&name, &record.version, call).await?;
    let mut response = InvokeResponse::from(result);
    response.grant_applied = record.approval.is_some();
    Ok(Json(response))
}

/// Reads the plugin runtime's counters.
///
/// `GET /api/v1/runtime`: runtime counters.
#[utoipa::path(
    get,
    path = "/api/v1/runtime",
    operation_id = "runtime",
    tag = "operations",
    responses(
        (status = 200, description = "The runtime's counters.", body = RuntimeDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn runtime(State(state): State<AppState>, _caller: Caller) -> Json<RuntimeDto> {
    let s = state.registry.runtime().stats();
    Json(RuntimeDto {
        artifact_cache_hits: s.artifact_cache_hits,
        artifact_cache_misses: s.artifact_cache_misses,
        in_flight: s.in_flight,
        quick_compiles: s.quick_compiles,
        optimising: s.optimising,
        optimised: s.optimised,
    })
}
