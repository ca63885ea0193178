//! Flow routes: apply a flow file, list and show flows.

use axum::Json;
use axum::extract::rejection::{JsonRejection, StringRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::model::{
    AppliedFlowDto, FlowDto, PlanRequest, PlanScope, PlannedStageDto, StageSummaryDto,
};
use super::{ApiError, AppState, Caller};
use crate::catalog;
use crate::store::Role;

impl From<catalog::Error> for ApiError {
    fn from(e: catalog::Error) -> ApiError {
        match e {
            catalog::Error::Invalid(_) => ApiError::bad_request("flow.invalid", e.to_string()),
            catalog::Error::Conflict(m) => {
                ApiError::new(StatusCode::CONFLICT, "flow.version_exists", m)
            }
            catalog::Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            catalog::Error::Store(e) => ApiError::internal("The store failed", &e),
        }
    }
}

/// `POST /api/v1/flows` with a flow file (TOML) as the body: 201 when a new
/// version is stored, 200 when the same text was already applied.
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<String, StringRejection>,
) -> Result<(StatusCode, Json<AppliedFlowDto>), ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let body = body.map_err(|e| {
        ApiError::new(
            e.status(),
            "request.bad_body",
            format!("the flow file could not be read: {}", e.body_text()),
        )
    })?;
    let (flow, created) = state.catalog.apply(&body, &caller.name)?;
    let status = super::created_status(created);
    Ok((
        status,
        Json(AppliedFlowDto {
            created,
            name: flow.name,
            version: flow.version,
            stages: flow
                .stages
                .iter()
                .map(|s| StageSummaryDto {
                    name: s.name.clone(),
                    kind: s.kind.name().to_string(),
                })
                .collect(),
        }),
    ))
}

/// `GET /api/v1/flows`: every applied flow version.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<FlowDto>>, ApiError> {
    Ok(Json(
        state.catalog.list()?.into_iter().map(Into::into).collect(),
    ))
}

/// `GET /api/v1/flows/{name}`: every version of one flow, with its source.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<FlowDto>>, ApiError> {
    Ok(Json(
        state
            .catalog
            .versions(&name)?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// `POST /api/v1/flows/{name}/plan`: every stage, batch and target of a
/// release of this flow over the given targets, or over an environment of
/// the inventory, without running anything.
pub async fn plan(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<PlanRequest>, JsonRejection>,
) -> Result<Json<Vec<PlannedStageDto>>, ApiError> {
    let Json(request) = body.map_err(super::json_error)?;
    let version = request.version;
    let scope = request
        .scope()
        .map_err(|m| ApiError::bad_request("plan.invalid", m))?;
    let (targets, live_group) = match scope {
        PlanScope::Targets {
            targets,
            live_group,
        } => (targets, live_group),
        PlanScope::Inventory {
            application,
            environment,
        } => {
            let env = super::inventory::find(&state, &application, &environment)?;
            (env.targets, env.live_group)
        }
    };
    let plan = state
        .catalog
        .plan(&name, version, &targets, live_group.as_deref())?;
    Ok(Json(plan.stages.into_iter().map(Into::into).collect()))
}
