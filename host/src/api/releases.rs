//! Release routes: start, list, show, journal, the human commands (approve,
//! reject, pause, resume, roll back), the event stream, and the manual
//! clock.

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{self, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::release_model::{
    ClockDto, ClockRequest, CommentRequest, EventDto, ReleaseDto, ReleaseSummaryDto,
    RollbackRequest, StartReleaseRequest,
};
use super::{ApiError, AppState, Caller};
use crate::domain::plugin::Artifact;
use crate::domain::release::{Actor, Command};
use crate::engine::{self, StartRequest};
use crate::store::Role;

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> ApiError {
        match e {
            engine::Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            engine::Error::Invalid(_) => ApiError::bad_request("release.invalid", e.to_string()),
            engine::Error::Busy { .. } => {
                ApiError::new(StatusCode::CONFLICT, "release.busy", e.to_string())
            }
            engine::Error::Refused(c) => ApiError::new(StatusCode::CONFLICT, c.code, c.message),
            engine::Error::Forbidden(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "auth.forbidden", m)
            }
            engine::Error::Catalog(e) => e.into(),
            engine::Error::Store(e) => ApiError::internal("The store failed", &e),
        }
    }
}

pub(super) fn actor(caller: &Caller) -> Actor {
    Actor {
        name: caller.name.clone(),
        role: caller.role.as_str().to_string(),
        admin: caller.role == Role::Admin,
    }
}

/// `POST /api/v1/releases`: starts a release; 201 with its state.
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<StartReleaseRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ReleaseDto>), ApiError> {
    caller.require(&[Role::ReleaseManager, Role::Scheduler])?;
    let Json(r) = body.map_err(super::json_error)?;
    let request = StartRequest {
        application: r.application,
        environment: r.environment,
        version: r.version,
        flow: r.flow,
        flow_version: r.flow_version,
        emergency: r.emergency,
        artifacts: r
            .artifacts
            .into_iter()
            .map(|a| Artifact {
                kind: a.kind,
                name: a.name,
                content: a.content,
            })
            .collect(),
        train: None,
    };
    let (spec, release) = state.engine.start_release(request, &actor(&caller)).await?;
    Ok((StatusCode::CREATED, Json(ReleaseDto::new(&spec, &release))))
}

/// Filters of `GET /api/v1/releases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    application: Option<String>,
    environment: Option<String>,
    status: Option<String>,
}

/// `GET /api/v1/releases`: newest first, optionally filtered.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ReleaseSummaryDto>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))?;
    let keep = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    Ok(Json(
        state
            .engine
            .list()?
            .into_iter()
            .filter(|s| {
                keep(&q.application, &s.application)
                    && keep(&q.environment, &s.environment)
                    && keep(&q.status, s.status.as_str())
            })
            .map(Into::into)
            .collect(),
    ))
}

/// `GET /api/v1/releases/{id}`: the full state.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReleaseDto>, ApiError> {
    let (spec, release) = state.engine.release(&id).await?;
    Ok(Json(ReleaseDto::new(&spec, &release)))
}

/// `GET /api/v1/releases/{id}/journal`: every event, oldest first.
pub async fn journal(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventDto>>, ApiError> {
    let events = state.engine.journal(&id)?;
    Ok(Json(
        events
            .iter()
            .enumerate()
            .map(|(seq, e)| EventDto::new(&id, seq as u64, e, None))
            .collect(),
    ))
}

async fn command(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: Command,
) -> Result<Json<ReleaseDto>, ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let (spec, release) = state.engine.command(id, &actor(caller), command).await?;
    Ok(Json(ReleaseDto::new(&spec, &release)))
}

fn comment(body: Result<Json<CommentRequest>, JsonRejection>) -> Result<String, ApiError> {
    match body {
        Ok(Json(c)) => Ok(c.comment),
        // An empty body is an empty comment.
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(String::new()),
        Err(e) => Err(super::json_error(e)),
    }
}

/// `POST /api/v1/releases/{id}/approve`, `…/reject` (a comment saying why
/// is required) and `…/pause`, each with `{"comment": "…"}`.
pub async fn comment_command(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    body: Result<Json<CommentRequest>, JsonRejection>,
) -> Result<Json<ReleaseDto>, ApiError> {
    let comment = comment(body)?;
    let command = match action.as_str() {
        "approve" => Command::Approve { comment },
        "reject" => Command::Reject { comment },
        "pause" => Command::Pause { reason: comment },
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no release action `{action}`: use approve, reject, pause, resume or rollback"
                ),
            ));
        }
    };
    self::command(&state, &caller, &id, command).await
}

/// `POST /api/v1/releases/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReleaseDto>, ApiError> {
    command(&state, &caller, &id, Command::Resume).await
}

/// `POST /api/v1/releases/{id}/rollback`: regular or emergency, with force
/// to pass steps that cannot be undone.
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<RollbackRequest>, JsonRejection>,
) -> Result<Json<ReleaseDto>, ApiError> {
    let request = match body {
        Ok(Json(r)) => r,
        Err(JsonRejection::MissingJsonContentType(_)) => RollbackRequest::default(),
        Err(e) => return Err(super::json_error(e)),
    };
    let mode = request
        .mode()
        .map_err(|m| ApiError::bad_request("request.bad_json", m))?;
    let rollback = Command::Rollback {
        mode,
        force: request.force,
        reason: request.comment,
    };
    command(&state, &caller, &id, rollback).await
}

/// Filter of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    release: Option<String>,
}

/// `GET /api/v1/events`: server-sent events, one per journaled event,
/// optionally for one release.
pub async fn events(
    State(state): State<AppState>,
    _caller: Caller,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))?;
    let rx = state.engine.subscribe();
    let stream = futures_util::stream::unfold((rx, q.release), |(mut rx, filter)| async move {
        loop {
            match rx.recv().await {
                Ok(p) if filter.as_deref().is_none_or(|f| f == p.release) => {
                    let dto = EventDto::new(&p.release, p.seq, &p.event, Some(p.status.as_str()));
                    let event = sse::Event::default()
                        .event(dto.kind.clone())
                        .id(format!("{}:{}", dto.release, dto.seq))
                        .json_data(&dto)
                        .unwrap_or_default();
                    return Some((Ok(event), (rx, filter)));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // A slow client is told how much it missed, so it can
                    // reread the releases it shows.
                    let event = sse::Event::default()
                        .event("lagged")
                        .data(missed.to_string());
                    return Some((Ok(event), (rx, filter)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/v1/clock`: the release clock.
pub async fn clock(State(state): State<AppState>, _caller: Caller) -> Json<ClockDto> {
    let clock = state.engine.clock();
    Json(ClockDto {
        now_ms: clock.now_ms(),
        manual: clock.manual().is_some(),
    })
}

/// `POST /api/v1/clock`: moves a manual clock forward (admins only).
pub async fn move_clock(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ClockRequest>, JsonRejection>,
) -> Result<Json<ClockDto>, ApiError> {
    caller.require(&[])?;
    let Json(request) = body.map_err(super::json_error)?;
    let clock = state.engine.clock();
    let manual = clock.manual().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "clock.not_manual",
            "the release clock is the machine's; start the daemon with manual_clock_ms to move it",
        )
    })?;
    if let Some(by) = request.advance_ms {
        manual.advance_ms(by);
    }
    if let Some(to) = request.now_ms {
        manual.set_ms(to);
    }
    Ok(Json(ClockDto {
        now_ms: clock.now_ms(),
        manual: true,
    }))
}
