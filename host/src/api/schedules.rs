//! Schedule and freeze-window routes: create, list, show, enable, disable,
//! delete, the next fire times and the journal of fires; the `scheduler`
//! role manages schedules, release managers manage freeze windows (admins
//! always may).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ErrorBody;
use super::rules;
use super::schedule_model::{
    CreateFreezeRequest, CreateScheduleRequest, FireDto, FreezeDto, NextFiresDto, ScheduleDto,
};
use super::{ApiError, AppState, Caller, JsonBody};
use crate::scheduler::Error;
use crate::store::{self, Role};

/// A scheduler error as answered, with `invalid` and `exists` codes of the
/// given kind (`schedule` or `freeze`).
fn answer(e: Error, kind: &str) -> ApiError {
    let (invalid, exists) = match kind {
        "freeze" => ("freeze.invalid", "freeze.exists"),
        _ => ("schedule.invalid", "schedule.exists"),
    };
    match e {
        Error::Invalid(problems) => ApiError::refused(invalid, &problems),
        Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
        Error::Store(store::Error::Conflict(m)) => ApiError::new(StatusCode::CONFLICT, exists, m),
        Error::Store(e) => e.into(),
    }
}

fn schedule_error(e: Error) -> ApiError {
    answer(e, "schedule")
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))
}

/// Creates a schedule.
///
/// `POST /api/v1/schedules`: 201 with the schedule and its next fire.
#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    operation_id = "create_schedule",
    tag = "schedules",
    request_body = CreateScheduleRequest,
    responses(
        (status = 201, description = "The schedule, with its next fire.", body = ScheduleDto),
        (status = 400, description = "A bad body; the message names the field.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither a scheduler nor an admin.", body = ErrorBody),
        (status = 404, description = "The flow or environment named does not exist; the field is named.", body = ErrorBody),
        (status = 409, description = "A schedule of that name exists.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A cron expression or timezone that does not parse, a version URL outside the allowed origins, or a catch-up limit out of range; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<CreateScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleDto>), ApiError> {
    caller.require(&[Role::Scheduler])?;
    let request = body.read()?;
    let schedule = request
        .into_domain()
        .map_err(|p| ApiError::refused("schedule.invalid", &p))?;
    let view = state
        .scheduler
        .create(schedule, &caller.name)
        .await
        .map_err(schedule_error)?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// Lists schedules.
///
/// `GET /api/v1/schedules`: every schedule by name, with its next fire and
/// last outcome.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    operation_id = "list_schedules",
    tag = "schedules",
    responses(
        (status = 200, description = "Every schedule, by name.", body = Vec<ScheduleDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<ScheduleDto>>, ApiError> {
    let views = state.scheduler.list().map_err(schedule_error)?;
    Ok(Json(views.into_iter().map(Into::into).collect()))
}

/// Shows a schedule.
///
/// `GET /api/v1/schedules/{name}`.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{name}",
    operation_id = "show_schedule",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The schedule's name.")),
    responses(
        (status = 200, description = "The schedule, its next fire and last outcome.", body = ScheduleDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDto>, ApiError> {
    Ok(Json(
        state.scheduler.show(&name).map_err(schedule_error)?.into(),
    ))
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    name: &str,
    enabled: bool,
) -> Result<Json<ScheduleDto>, ApiError> {
    caller.require(&[Role::Scheduler])?;
    let view = state
        .scheduler
        .set_enabled(name, enabled)
        .await
        .map_err(schedule_error)?;
    Ok(Json(view.into()))
}

/// Enables a schedule.
///
/// `POST /api/v1/schedules/{name}/enable`: it fires from now on; fires
/// that fell while it was disabled are not caught up.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/enable",
    operation_id = "enable_schedule",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The schedule's name.")),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither a scheduler nor an admin.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDto>, ApiError> {
    set_enabled(&state, &caller, &name, true).await
}

/// Disables a schedule.
///
/// `POST /api/v1/schedules/{name}/disable`: it stops firing; a release it
/// started carries on.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/disable",
    operation_id = "disable_schedule",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The schedule's name.")),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither a scheduler nor an admin.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDto>, ApiError> {
    set_enabled(&state, &caller, &name, false).await
}

/// Deletes a schedule.
///
/// `DELETE /api/v1/schedules/{name}`: 204; its journal of fires goes with
/// it, the releases it started stay.
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{name}",
    operation_id = "delete_schedule",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The schedule's name.")),
    responses(
        (status = 204, description = "The schedule was deleted."),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither a scheduler nor an admin.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Scheduler])?;
    state
        .scheduler
        .delete(&name)
        .await
        .map_err(schedule_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /api/v1/schedules/{name}/next`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NextQuery {
    /// How many fire times (1 to 100; 5 by default).
    #[param(minimum = 1, maximum = 100)]
    count: Option<usize>,
}

/// The next fire times of a schedule.
///
/// `GET /api/v1/schedules/{name}/next?count=N`: from now, in order, with
/// each instant in the schedule's timezone.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{name}/next",
    operation_id = "next_schedule_fires",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The schedule's name."), NextQuery),
    responses(
        (status = 200, description = "The next fire times.", body = NextFiresDto),
        (status = 400, description = "A bad count.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn next(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
    q: Result<Query<NextQuery>, QueryRejection>,
) -> Result<Json<NextFiresDto>, ApiError> {
    let q = query(q)?;
    let fires = state
        .scheduler
        .next(&name, q.count.unwrap_or(5))
        .map_err(schedule_error)?;
    let schedule = state
        .scheduler
        .show(&name)
        .map_err(schedule_error)?
        .schedule;
    Ok(Json(NextFiresDto::new(&name, &schedule.timezone, &fires)))
}

/// Query of `GET /api/v1/schedules/{name}/fires`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FiresQuery {
    /// At most this many (50 by default); fewer than 1 counts as 1, more
    /// than 1,000 as 1,000.
    #[param(maximum = 9_007_199_254_740_991u64)]
    limit: Option<u64>,
}

/// A schedule's fires.
///
/// `GET /api/v1/schedules/{name}/fires`: newest first, each with what
/// became of it and the release it started.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{name}/fires",
    operation_id = "schedule_fires",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The schedule's name."), FiresQuery),
    responses(
        (status = 200, description = "The fires, newest first.", body = Vec<FireDto>),
        (status = 400, description = "A bad query.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn fires(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
    q: Result<Query<FiresQuery>, QueryRejection>,
) -> Result<Json<Vec<FireDto>>, ApiError> {
    let limit = query(q)?.limit.unwrap_or(50);
    if limit > super::rules::MAX_EXACT_INTEGER {
        return Err(ApiError::bad_request(
            "request.bad_query",
            format!("limit: at most {}", super::rules::MAX_EXACT_INTEGER),
        ));
    }
    let limit = limit.clamp(1, 1000) as usize;
    let fires = state
        .scheduler
        .fires(&name, limit)
        .map_err(schedule_error)?;
    Ok(Json(fires.iter().map(FireDto::from).collect()))
}

/// Creates a freeze window.
///
/// `POST /api/v1/freezes`: 201. Release managers and admins.
#[utoipa::path(
    post,
    path = "/api/v1/freezes",
    operation_id = "create_freeze",
    tag = "schedules",
    request_body = CreateFreezeRequest,
    responses(
        (status = 201, description = "The freeze window.", body = FreezeDto),
        (status = 400, description = "A bad body; the message names the field.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither a release manager nor an admin.", body = ErrorBody),
        (status = 409, description = "A freeze window of that name exists.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "An end not after the start, a cron expression or timezone that does not parse, or a duration out of range; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_freeze(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<CreateFreezeRequest>,
) -> Result<(StatusCode, Json<FreezeDto>), ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let request = body.read()?;
    let window = request
        .into_domain()
        .map_err(|p| ApiError::refused("freeze.invalid", &p))?;
    let window = state
        .scheduler
        .create_freeze(window, &caller.name)
        .await
        .map_err(|e| answer(e, "freeze"))?;
    Ok((StatusCode::CREATED, Json(window.into())))
}

/// Lists freeze windows.
///
/// `GET /api/v1/freezes`: every window, by name.
#[utoipa::path(
    get,
    path = "/api/v1/freezes",
    operation_id = "list_freezes",
    tag = "schedules",
    responses(
        (status = 200, description = "Every freeze window, by name.", body = Vec<FreezeDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_freezes(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<FreezeDto>>, ApiError> {
    let windows = state
        .scheduler
        .freezes_now()
        .map_err(|e| answer(e, "freeze"))?;
    Ok(Json(
        windows
            .into_iter()
            .map(|(w, open)| FreezeDto {
                open_now: Some(open),
                ..w.into()
            })
            .collect(),
    ))
}

/// Deletes a freeze window.
///
/// `DELETE /api/v1/freezes/{name}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/freezes/{name}",
    operation_id = "delete_freeze",
    tag = "schedules",
    params(("name" = rules::Name, Path, description = "The freeze window's name.")),
    responses(
        (status = 204, description = "The window was deleted."),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither a release manager nor an admin.", body = ErrorBody),
        (status = 404, description = "No such window.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_freeze(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    state
        .scheduler
        .delete_freeze(&name)
        .await
        .map_err(|e| answer(e, "freeze"))?;
    Ok(StatusCode::NO_CONTENT)
}
