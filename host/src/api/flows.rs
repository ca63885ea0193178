//! Flow routes: apply a flow file, list and show flows.

use axum::Json;
use axum::extract::rejection::StringRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ErrorBody;
use super::model::{
    AppliedFlowDto, FlowDto, PlanRequest, PlanScope, PlannedStageDto, StageSummaryDto,
};
use super::rules;
use super::{ApiError, AppState, Caller, JsonBody};
use crate::catalog;
use crate::store::Role;

impl From<catalog::Error> for ApiError {
    fn from(e: catalog::Error) -> ApiError {
        match e {
            catalog::Error::Invalid(problems) => ApiError::refused("flow.invalid", &problems),
            catalog::Error::Conflict(m) => {
                ApiError::new(StatusCode::CONFLICT, "flow.version_exists", m)
            }
            catalog::Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            catalog::Error::Store(e) => ApiError::internal("The store failed", &e),
        }
    }
}

/// Applies a flow file.
///
/// `POST /api/v1/flows` with a flow file (TOML) as the body: 201 when a new
/// version is stored, 200 when the same text was already applied.
#[utoipa::path(
    post,
    path = "/api/v1/flows",
    operation_id = "apply_flow",
    tag = "flows",
    request_body(
        description = "A flow file.",
        content = String,
        content_type = "application/toml"
    ),
    responses(
        (status = 201, description = "A new flow version was stored.", body = AppliedFlowDto),
        (status = 200, description = "The same text was already applied.", body = AppliedFlowDto),
        (status = 400, description = "The file is not UTF-8 or not a valid flow; every problem is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not apply flows.", body = ErrorBody),
        (status = 409, description = "Other text was applied under this version.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<String, StringRejection>,
) -> Result<(StatusCode, Json<AppliedFlowDto>), ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let body = body.map_err(|e| {
        // Too large is the same refusal, with the same code, on every route.
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "request.too_large"
        } else {
            "request.bad_body"
        };
        ApiError::new(
            e.status(),
            code,
            format!("the flow file could not be read: {}", e.body_text()),
        )
    })?;
    let (flow, created) = state.catalog.apply(&body, &caller.name)?;
    let warnings = super::reach::drift(
        &state,
        std::slice::from_ref(&flow),
        &state.store.environments()?,
    );
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
            warnings,
        }),
    ))
}

/// Lists flows.
///
/// `GET /api/v1/flows`: every applied flow version.
#[utoipa::path(
    get,
    path = "/api/v1/flows",
    operation_id = "list_flows",
    tag = "flows",
    responses(
        (status = 200, description = "Every applied flow version.", body = Vec<FlowDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<FlowDto>>, ApiError> {
    Ok(Json(
        state.catalog.list()?.into_iter().map(Into::into).collect(),
    ))
}

/// Shows a flow.
///
/// `GET /api/v1/flows/{name}`: every version of one flow, with its source.
#[utoipa::path(
    get,
    path = "/api/v1/flows/{name}",
    operation_id = "show_flow",
    tag = "flows",
    params(("name" = rules::Name, Path, description = "The flow's name.")),
    responses(
        (status = 200, description = "Every version of the flow, oldest first.", body = Vec<FlowDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such flow.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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

/// Plans a release of a flow without running it.
///
/// `POST /api/v1/flows/{name}/plan`: every stage, batch and target of a
/// release of this flow over the given targets, or over an environment of
/// the inventory, without running anything.
#[utoipa::path(
    post,
    path = "/api/v1/flows/{name}/plan",
    operation_id = "plan_flow",
    tag = "flows",
    params(("name" = rules::Name, Path, description = "The flow's name.")),
    request_body = PlanRequest,
    responses(
        (status = 200, description = "Every stage of the release, in order.", body = Vec<PlannedStageDto>),
        (status = 400, description = "A bad body; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such flow, flow version or environment.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "Targets the flow cannot plan over, or target ids used twice; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn plan(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
    body: JsonBody<PlanRequest>,
) -> Result<Json<Vec<PlannedStageDto>>, ApiError> {
    let request = body.read()?;
    let version = request.version;
    let scope = request
        .scope()
        .map_err(|problems| ApiError::refused("plan.invalid", &problems))?;
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
