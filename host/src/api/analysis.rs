//! Analysis routes: replaying a flow's checks and policy over what past
//! releases recorded.

use axum::Json;
use axum::extract::State;

use super::analysis_model::{ReplayDto, ReplayRequestDto};
use super::error::ErrorBody;
use super::{ApiError, AppState, Caller, JsonBody};
use crate::engine;
use crate::store::Role;

/// Replays a flow over past releases.
///
/// `POST /api/v1/analysis/replay`: runs the checks and policy of a flow
/// (a flow file's text, or an applied flow) over the observations the
/// newest finished releases recorded, and says which releases it would
/// have decided differently. Nothing is journaled and no plugin reaches
/// the network: each check is answered from its round's recording.
#[utoipa::path(
    post,
    path = "/api/v1/analysis/replay",
    operation_id = "replay_analysis",
    tag = "analysis",
    request_body = ReplayRequestDto,
    responses(
        (status = 200, description = "Every release looked at, newest first, and how the flow would have decided it.", body = ReplayDto),
        (status = 400, description = "A bad body, or a flow file that is not a valid flow; the field is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "The token's role may not run analyses.", body = ErrorBody),
        (status = 404, description = "No such applied flow or flow version.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "A field breaks its rule, or the flow names a plugin that does not fit; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<ReplayRequestDto>,
) -> Result<Json<ReplayDto>, ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let request = body
        .read_as("replay.invalid")?
        .request()
        .map_err(|problems| ApiError::refused("replay.invalid", &problems))?;
    let report = state.engine.replay(request).await.map_err(|e| match e {
        engine::Error::Invalid(problems) => ApiError::refused("flow.invalid", &problems),
        other => other.into(),
    })?;
    Ok(Json(report.into()))
}
