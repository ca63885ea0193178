//! Release routes: start, list, show, journal, the human commands (approve,
//! reject, pause, resume, roll back), the event stream, and the manual
//! clock.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{self, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ErrorBody;
use super::release_model::{
    ClockDto, ClockRequest, CommentRequest, EventDto, ReleaseDto, ReleaseSummaryDto,
    RollbackRequest, StartReleaseRequest,
};
use super::rules;
use super::{ApiError, AppState, AuditNote, Caller, JsonBody};
use crate::domain::plugin::Artifact;
use crate::domain::release::{Actor, Command};
use crate::engine::{self, StartOptions, StartRequest};
use crate::store::Role;

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> ApiError {
        match e {
            engine::Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            engine::Error::Invalid(problems) => ApiError::refused("release.invalid", &problems),
            engine::Error::Busy { .. } => {
                ApiError::new(StatusCode::CONFLICT, "release.busy", e.to_string())
            }
            engine::Error::Refused(c) => ApiError::new(StatusCode::CONFLICT, c.code, c.message),
            engine::Error::Forbidden(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "auth.forbidden", m)
            }
            engine::Error::Frozen(m) => ApiError::new(StatusCode::CONFLICT, "release.frozen", m),
            engine::Error::Catalog(e) => e.into(),
            engine::Error::Store(e) => ApiError::internal("The store failed", &e),
        }
    }
}

/// A comment, or its refusal under `code` when it breaks the rule of free
/// text (`domain::name::check_text`): it is shown in the journal, the log
/// and the UI.
pub(super) fn checked_comment(comment: String, code: &'static str) -> Result<String, ApiError> {
    crate::domain::name::check_text("comment", &comment, crate::domain::name::MAX_TEXT_LEN)
        .map_err(|e| ApiError::bad_request(code, e.to_string()))?;
    Ok(comment)
}

pub(super) fn actor(caller: &Caller) -> Actor {
    Actor {
        name: caller.name.clone(),
        role: caller.role.as_str().to_string(),
        admin: caller.role == Role::Admin,
    }
}

/// Starts a release.
///
/// `POST /api/v1/releases`: starts a release; 201 with its state.
#[utoipa::path(
    post,
    path = "/api/v1/releases",
    operation_id = "start_release",
    tag = "releases",
    request_body = StartReleaseRequest,
    responses(
        (status = 201, description = "The release started, or was queued behind the environment's active release.", body = ReleaseDto),
        (status = 400, description = "A bad body; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not start releases, or an emergency release or freeze override by a non-admin.", body = ErrorBody),
        (status = 404, description = "No such flow, flow version or environment.", body = ErrorBody),
        (status = 409, description = "The environment is busy and the flow does not queue (`release.busy`), or a freeze window is open (`release.frozen`).", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A release the flow cannot make over the environment; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<StartReleaseRequest>,
) -> Result<(StatusCode, AuditNote, Json<ReleaseDto>), ApiError> {
    caller.require(&[Role::ReleaseManager, Role::Scheduler])?;
    let mut r = body.read()?;
    r.comment = checked_comment(r.comment, "release.invalid")?;
    // An emergency start and a start inside a freeze window are always
    // called out in the log.
    let labels: Vec<&str> = [
        (r.override_freeze, "freeze override"),
        (r.emergency, "emergency release"),
    ]
    .into_iter()
    .filter_map(|(on, label)| on.then_some(label))
    .collect();
    let note = AuditNote::comment(&r.comment, &labels);
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
    let options = StartOptions {
        override_freeze: r.override_freeze,
        ..StartOptions::default()
    };
    let (spec, release) = state
        .engine
        .start_release_with(request, &actor(&caller), options)
        .await?;
    Ok((
        StatusCode::CREATED,
        note.with_release(&spec.id),
        Json(ReleaseDto::new(&spec, &release)),
    ))
}

/// Filters of `GET /api/v1/releases`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only releases of this application.
    application: Option<String>,
    /// Only releases to this environment.
    environment: Option<String>,
    /// Only releases with this status, such as `running` or `succeeded`.
    status: Option<String>,
}

/// Lists releases.
///
/// `GET /api/v1/releases`: newest first, optionally filtered.
#[utoipa::path(
    get,
    path = "/api/v1/releases",
    operation_id = "list_releases",
    tag = "releases",
    params(ListQuery),
    responses(
        (status = 200, description = "The releases, newest first.", body = Vec<ReleaseSummaryDto>),
        (status = 400, description = "A bad query.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
            .list_now()
            .await?
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

/// Shows a release.
///
/// `GET /api/v1/releases/{id}`: the full state.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}",
    operation_id = "show_release",
    tag = "releases",
    params(("id" = rules::Id, Path, description = "The release's id.")),
    responses(
        (status = 200, description = "The release's full state.", body = ReleaseDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such release.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReleaseDto>, ApiError> {
    let (spec, release) = state.engine.release(&id).await?;
    Ok(Json(ReleaseDto::new(&spec, &release)))
}

/// Reads a release's journal.
///
/// `GET /api/v1/releases/{id}/journal`: every event, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}/journal",
    operation_id = "release_journal",
    tag = "releases",
    params(("id" = rules::Id, Path, description = "The release's id.")),
    responses(
        (status = 200, description = "Every event, oldest first.", body = Vec<EventDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such release.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn journal(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventDto>>, ApiError> {
    let events = state.engine.journal(&id).await?;
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
    note: AuditNote,
) -> Result<(AuditNote, Json<ReleaseDto>), ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let (spec, release) = state.engine.command(id, &actor(caller), command).await?;
    Ok((note, Json(ReleaseDto::new(&spec, &release))))
}

/// Approves, rejects or pauses a release.
///
/// `POST /api/v1/releases/{id}/approve`, `…/reject` (a comment saying why
/// is required) and `…/pause`, each with `{"comment": "…"}`.
#[utoipa::path(
    post,
    path = "/api/v1/releases/{id}/{action}",
    operation_id = "command_release",
    tag = "releases",
    params(
        ("id" = rules::Id, Path, description = "The release's id."),
        ("action" = String, Path, description = "`approve`, `reject` or `pause`.", pattern = "^(approve|reject|pause)$"),
    ),
    request_body(
        content = ref("#/components/schemas/CommentRequest"),
        content_type = "application/json",
        description = "A comment; an empty body is an empty comment."
    ),
    responses(
        (status = 200, description = "The release's state after the command.", body = ReleaseDto),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not command releases, or not this one.", body = ErrorBody),
        (status = 404, description = "No such release or action.", body = ErrorBody),
        (status = 409, description = "The release refuses the command in its state; the code says why.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn comment_command(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    body: JsonBody<CommentRequest>,
) -> Result<(AuditNote, Json<ReleaseDto>), ApiError> {
    // An empty body is an empty comment.
    let comment = checked_comment(body.read_or_default()?.comment, "release.invalid")?;
    let note = AuditNote::comment(&comment, &[]);
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
    self::command(&state, &caller, &id, command, note).await
}

/// Resumes a paused release.
///
/// `POST /api/v1/releases/{id}/resume`.
#[utoipa::path(
    post,
    path = "/api/v1/releases/{id}/resume",
    operation_id = "resume_release",
    tag = "releases",
    params(("id" = rules::Id, Path, description = "The release's id.")),
    request_body(
        content = ref("#/components/schemas/CommentRequest"),
        content_type = "application/json",
        description = "A comment, recorded in the audit log; an empty body is an empty comment."
    ),
    responses(
        (status = 200, description = "The release's state after the command.", body = ReleaseDto),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not command releases, or not this one.", body = ErrorBody),
        (status = 404, description = "No such release.", body = ErrorBody),
        (status = 409, description = "The release refuses the command in its state; the code says why.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<CommentRequest>,
) -> Result<(AuditNote, Json<ReleaseDto>), ApiError> {
    let comment = checked_comment(body.read_or_default()?.comment, "release.invalid")?;
    let note = AuditNote::comment(&comment, &[]);
    command(&state, &caller, &id, Command::Resume, note).await
}

/// Rolls a release back.
///
/// `POST /api/v1/releases/{id}/rollback`: regular or emergency, with force
/// to pass steps that cannot be undone.
#[utoipa::path(
    post,
    path = "/api/v1/releases/{id}/rollback",
    operation_id = "rollback_release",
    tag = "releases",
    params(("id" = rules::Id, Path, description = "The release's id.")),
    request_body(
        content = ref("#/components/schemas/RollbackRequest"),
        content_type = "application/json",
        description = "How to roll back; an empty body is a regular rollback."
    ),
    responses(
        (status = 200, description = "The release's state after the command.", body = ReleaseDto),
        (status = 400, description = "A bad body or mode.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not command releases, or not this one.", body = ErrorBody),
        (status = 404, description = "No such release.", body = ErrorBody),
        (status = 409, description = "The release refuses the command in its state; the code says why.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<RollbackRequest>,
) -> Result<(AuditNote, Json<ReleaseDto>), ApiError> {
    let mut request = body.read_or_default()?;
    request.comment = checked_comment(request.comment, "release.invalid")?;
    let note = AuditNote::comment(&request.comment, &[]);
    let mode = request
        .mode()
        .map_err(|m| ApiError::bad_request("request.bad_json", m))?;
    let rollback = Command::Rollback {
        mode,
        force: request.force,
        reason: request.comment,
    };
    command(&state, &caller, &id, rollback, note).await
}

/// Abandons a release that cannot finish.
///
/// `POST /api/v1/releases/{id}/abandon` with `{"comment": "…"}` (required):
/// ends an unfinished release where it stands, deploying and undoing
/// nothing more; its environment is freed and what runs there is recorded
/// as unknown until a release finishes there again. Admins only.
#[utoipa::path(
    post,
    path = "/api/v1/releases/{id}/abandon",
    operation_id = "abandon_release",
    tag = "releases",
    params(("id" = rules::Id, Path, description = "The release's id.")),
    request_body(
        content = ref("#/components/schemas/CommentRequest"),
        content_type = "application/json",
        description = "Why the release is abandoned."
    ),
    responses(
        (status = 200, description = "The release's state after the command.", body = ReleaseDto),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such release.", body = ErrorBody),
        (status = 409, description = "The release has finished (`release.finished`) or no comment says why (`release.comment_required`).", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn abandon(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<CommentRequest>,
) -> Result<(AuditNote, Json<ReleaseDto>), ApiError> {
    caller.require(&[])?;
    let reason = checked_comment(body.read_or_default()?.comment, "release.invalid")?;
    let note = AuditNote::comment(&reason, &[]);
    let (spec, release) = state
        .engine
        .command(&id, &actor(&caller), Command::Abandon { reason })
        .await?;
    Ok((note, Json(ReleaseDto::new(&spec, &release))))
}

/// Filter of `GET /api/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only the events of this release.
    release: Option<String>,
}

/// Streams release events.
///
/// `GET /api/v1/events`: server-sent events, one per journaled event,
/// optionally for one release.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "release_events",
    tag = "releases",
    params(EventsQuery),
    responses(
        (
            status = 200,
            description = "Server-sent events: for each journaled event, `event:` its kind, `id:` `{release}:{seq}` and `data:` an `EventDto` as JSON with the release's status; a slow client gets a `lagged` event whose data is how many events it missed; when the caller's token is revoked or its session signs out, an `ended` event closes the stream.",
            body = String,
            content_type = "text/event-stream"
        ),
        (status = 400, description = "A bad query.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<sse::Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))?;
    let stream = super::event_feed::feed(
        state.engine.subscribe(),
        q.release,
        state.identity.clone(),
        caller.access,
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Reads the release clock.
///
/// `GET /api/v1/clock`: the release clock.
#[utoipa::path(
    get,
    path = "/api/v1/clock",
    operation_id = "show_clock",
    tag = "operations",
    responses(
        (status = 200, description = "The release clock.", body = ClockDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn clock(State(state): State<AppState>, _caller: Caller) -> Json<ClockDto> {
    let clock = state.engine.clock();
    Json(ClockDto {
        now_ms: clock.now_ms(),
        manual: clock.manual().is_some(),
    })
}

/// Moves a manual release clock.
///
/// `POST /api/v1/clock`: moves a manual clock forward (admins only).
#[utoipa::path(
    post,
    path = "/api/v1/clock",
    operation_id = "move_clock",
    tag = "operations",
    request_body = ClockRequest,
    responses(
        (status = 200, description = "The release clock after the move.", body = ClockDto),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "The clock is the machine's, not a manual one.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn move_clock(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<ClockRequest>,
) -> Result<Json<ClockDto>, ApiError> {
    caller.require(&[])?;
    let request = body.read()?;
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
