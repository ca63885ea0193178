//! Train routes: start a train, list and show trains, roll a train back.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::release_model::{PlannedMemberDto, StartTrainRequest, TrainDto};
use super::releases::actor;
use super::{ApiError, AppState, Caller};
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

/// `POST /api/v1/trains/plan`: the members in dependency order, each with
/// its release's plan, without starting anything.
pub async fn plan(
    State(state): State<AppState>,
    _caller: Caller,
    body: Result<Json<StartTrainRequest>, JsonRejection>,
) -> Result<Json<Vec<PlannedMemberDto>>, ApiError> {
    let Json(request) = body.map_err(super::json_error)?;
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

/// `POST /api/v1/trains`: starts the members in dependency order; 201.
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<StartTrainRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<TrainDto>), ApiError> {
    caller.require(&[Role::ReleaseManager, Role::Scheduler])?;
    let Json(request) = body.map_err(super::json_error)?;
    let name = request.name.clone();
    let members = members(request);
    let view = state
        .engine
        .start_train(name, members, &actor(&caller))
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// `GET /api/v1/trains`: newest first.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<TrainDto>>, ApiError> {
    let trains = state.engine.trains().await?;
    Ok(Json(trains.into_iter().map(Into::into).collect()))
}

/// `GET /api/v1/trains/{id}`.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TrainDto>, ApiError> {
    Ok(Json(state.engine.train(&id).await?.into()))
}

/// `POST /api/v1/trains/{id}/rollback`: unwinds every member, dependents
/// first.
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TrainDto>, ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let view = state.engine.rollback_train(&id, &actor(&caller)).await?;
    Ok(Json(view.into()))
}
