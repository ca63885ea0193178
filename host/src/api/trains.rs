//! Train routes: start a train, list and show trains, roll a train back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ErrorBody;
use super::release_model::{CommentRequest, PlannedMemberDto, StartTrainRequest, TrainDto};
use super::releases::{actor, checked_comment};
use super::rules;
use super::{ApiError, AppState, AuditNote, Caller, JsonBody};
use crate::domain::train::Member;
use crate::store::Role;

fn members(request: StartTrainRequest) -> Vec<Member> {
    request
        .members
        .into_iter()
        .map(|m| Member {
            application: m.application,
            environment: m.environment,
            version: m.version,
            flow: m.flow,
            flow_version: m.flow_version,
            depends_on: m.depends_on,
        })
        .collect()
}

/// Plans a train without starting it.
///
/// `POST /api/v1/trains/plan`: the members in dependency order, each with
/// its release's plan, without starting anything.
#[utoipa::path(
    post,
    path = "/api/v1/trains/plan",
    operation_id = "plan_train",
    tag = "trains",
    request_body = StartTrainRequest,
    responses(
        (status = 200, description = "The members in dependency order, each with its plan.", body = Vec<PlannedMemberDto>),
        (status = 400, description = "A bad body; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "A member names no environment or flow; the member is named.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A dependency cycle, a member twice, or a member that cannot be planned; the member is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn plan(
    State(state): State<AppState>,
    _caller: Caller,
    body: JsonBody<StartTrainRequest>,
) -> Result<Json<Vec<PlannedMemberDto>>, ApiError> {
    let request = body.read()?;
    let members = members(request);
    let plans = state.engine.plan_train(&members)?;
    Ok(Json(
        plans
            .into_iter()
            .map(|(i, plan)| {
                let m = &members[i];
                PlannedMemberDto {
                    application: m.application.clone(),
                    environment: m.environment.clone(),
                    version: m.version.clone(),
                    flow: m.flow.clone(),
                    depends_on: m.depends_on.clone(),
                    stages: plan.stages.into_iter().map(Into::into).collect(),
                }
            })
            .collect(),
    ))
}

/// Starts a train.
///
/// `POST /api/v1/trains`: starts the members in dependency order; 201.
#[utoipa::path(
    post,
    path = "/api/v1/trains",
    operation_id = "start_train",
    tag = "trains",
    request_body = StartTrainRequest,
    responses(
        (status = 201, description = "The train started.", body = TrainDto),
        (status = 400, description = "A bad body; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not start trains.", body = ErrorBody),
        (status = 404, description = "A member names no environment or flow; the member is named.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A dependency cycle, a member twice or a dependency on no member; the member is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<StartTrainRequest>,
) -> Result<(StatusCode, Json<TrainDto>), ApiError> {
    caller.require(&[Role::ReleaseManager, Role::Scheduler])?;
    let request = body.read()?;
    let name = request.name.clone();
    let members = members(request);
    let view = state
        .engine
        .start_train(name, members, &actor(&caller))
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// Lists trains.
///
/// `GET /api/v1/trains`: newest first.
#[utoipa::path(
    get,
    path = "/api/v1/trains",
    operation_id = "list_trains",
    tag = "trains",
    responses(
        (status = 200, description = "Every train, newest first.", body = Vec<TrainDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<TrainDto>>, ApiError> {
    let trains = state.engine.trains().await?;
    Ok(Json(trains.into_iter().map(Into::into).collect()))
}

/// Shows a train.
///
/// `GET /api/v1/trains/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/trains/{id}",
    operation_id = "show_train",
    tag = "trains",
    params(("id" = rules::Id, Path, description = "The train's id.")),
    responses(
        (status = 200, description = "The train and its members.", body = TrainDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such train.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TrainDto>, ApiError> {
    Ok(Json(state.engine.train(&id).await?.into()))
}

/// Rolls a train back.
///
/// `POST /api/v1/trains/{id}/rollback`: unwinds every member, dependents
/// first.
#[utoipa::path(
    post,
    path = "/api/v1/trains/{id}/rollback",
    operation_id = "rollback_train",
    tag = "trains",
    params(("id" = rules::Id, Path, description = "The train's id.")),
    request_body(
        content = ref("#/components/schemas/CommentRequest"),
        content_type = "application/json",
        description = "Why: recorded in the audit log and in each member's rollback reason; an empty body is an empty comment."
    ),
    responses(
        (status = 200, description = "The train after the request.", body = TrainDto),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not roll trains back.", body = ErrorBody),
        (status = 404, description = "No such train.", body = ErrorBody),
        (status = 409, description = "The train has already rolled back.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<CommentRequest>,
) -> Result<(AuditNote, Json<TrainDto>), ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let comment = checked_comment(body.read_or_default()?.comment, "train.invalid")?;
    let view = state
        .engine
        .rollback_train(&id, &actor(&caller), &comment)
        .await?;
    Ok((AuditNote::comment(&comment, &[]), Json(view.into())))
}
