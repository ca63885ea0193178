//! Plugin routes: upload, list, show, grant, invoke.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use super::model::{
    GrantDto, GrantView, InvokeRequest, InvokeResponse, PluginDetailDto, PluginDto, RuntimeDto,
    UploadDto,
};
use super::{ApiError, AppState, Caller};
use crate::store::{PutOutcome, Role};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: String,
    version: String,
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request("request.bad_query", e.body_text())
}

/// `POST /api/v1/plugins?name=N&version=V` with the component's bytes. Waits
/// for the compile (on a blocking thread) and answers 201, or 200 when the
/// same bytes were already stored. An upload whose declared length is above
/// the limit is refused before its body is read.
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
    let body = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| too_large())?;
    let (record, outcome) = state
        .registry
        .upload(&q.name, &q.version, body.to_vec(), &caller.name)
        .await?;
    let created = outcome == PutOutcome::Created;
    let status = super::created_status(created);
    Ok((
        status,
        Json(UploadDto {
            created,
            plugin: record.into(),
        }),
    ))
}

/// `GET /api/v1/plugins`: every plugin version.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<PluginDto>>, ApiError> {
    let records = state.registry.list()?;
    Ok(Json(records.into_iter().map(Into::into).collect()))
}

/// `GET /api/v1/plugins/{name}`: the versions and the grant.
pub async fn detail(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PluginDetailDto>, ApiError> {
    let versions = state.registry.versions(&name)?;
    let grant = state.registry.grant(&name)?;
    Ok(Json(PluginDetailDto {
        name,
        versions: versions.into_iter().map(Into::into).collect(),
        grant: GrantView::from(&*grant),
    }))
}

/// `GET /api/v1/plugins/{name}/{version}`; `latest` names the highest version.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<PluginDto>, ApiError> {
    Ok(Json(state.registry.version(&name, &version)?.into()))
}

/// `PUT /api/v1/plugins/{name}/grant`: replaces the grant (admin only).
pub async fn set_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<GrantDto>, JsonRejection>,
) -> Result<Json<GrantView>, ApiError> {
    caller.require(&[])?;
    let Json(dto) = body.map_err(super::json_error)?;
    let grant = dto
        .into_grant()
        .map_err(|m| ApiError::bad_request("grant.invalid", m))?;
    let grant = state.registry.set_grant(&name, grant)?;
    Ok(Json(GrantView::from(&*grant)))
}

/// `POST /api/v1/plugins/{name}/{version}/invoke`: runs one call through the
/// real sandbox; a plugin's failure is reported in the body, not as an
/// HTTP error.
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
    body: Result<Json<InvokeRequest>, JsonRejection>,
) -> Result<Json<InvokeResponse>, ApiError> {
    caller.require(&[Role::PluginAuthor, Role::ReleaseManager])?;
    let Json(request) = body.map_err(super::json_error)?;
    let record = state.registry.version(&name, &version)?;
    let kind = record
        .kind
        .parse()
        .map_err(|e: String| ApiError::internal("A stored plugin has an unknown kind", &e))?;
    let call = request
        .into_call(kind)
        .map_err(|m| ApiError::bad_request("invoke.bad_input", m))?;
    let result = state.registry.invoke(&name, &record.version, call).await?;
    Ok(Json(result.into()))
}

/// `GET /api/v1/runtime`: runtime counters.
pub async fn runtime(State(state): State<AppState>, _caller: Caller) -> Json<RuntimeDto> {
    let s = state.registry.runtime().stats();
    Json(RuntimeDto {
        artifact_cache_hits: s.artifact_cache_hits,
        artifact_cache_misses: s.artifact_cache_misses,
        in_flight: s.in_flight,
    })
}
