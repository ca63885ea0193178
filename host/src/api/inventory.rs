//! Inventory routes: put, show, list and delete the environments of
//! applications.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ErrorBody;
use super::model::{
    ApplicationDto, EnvironmentDto, EnvironmentRequest, PutEnvironmentDto, applications,
};
use super::rules;
use super::{ApiError, AppState, Caller, JsonBody};
use crate::domain::inventory::Environment;

fn not_found(application: &str, environment: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no environment `{environment}` in application `{application}`"),
    )
}

/// An environment of the inventory, or a 404 naming it.
pub fn find(
    state: &AppState,
    application: &str,
    environment: &str,
) -> Result<Environment, ApiError> {
    state
        .store
        .environment(application, environment)?
        .ok_or_else(|| not_found(application, environment))
}

/// Creates or replaces an environment.
///
/// `PUT /api/v1/apps/{app}/envs/{env}`: creates (201) or replaces (200) an
/// environment. Replacing keeps the version running there.
#[utoipa::path(
    put,
    path = "/api/v1/apps/{app}/envs/{env}",
    operation_id = "put_environment",
    tag = "inventory",
    params(
        ("app" = rules::Name, Path, description = "The application."),
        ("env" = rules::Name, Path, description = "The environment."),
    ),
    request_body = EnvironmentRequest,
    responses(
        (status = 201, description = "The environment was created.", body = PutEnvironmentDto),
        (status = 200, description = "The environment was replaced.", body = PutEnvironmentDto),
        (status = 400, description = "A bad body; the field at fault is named.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "Target ids used twice, or a live group that is no target's group; the field is named.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((application, name)): Path<(String, String)>,
    body: JsonBody<EnvironmentRequest>,
) -> Result<(StatusCode, Json<PutEnvironmentDto>), ApiError> {
    caller.require(&[])?;
    // A body of the wrong shape (an unknown or missing field) names the
    // field at fault, like every other inventory error.
    let request = body.read_as("inventory.invalid")?;
    let environment = request.into_environment(&application, &name);
    environment
        .validate()
        .map_err(|errors| ApiError::refused("inventory.invalid", &errors))?;
    let created = state.store.put_environment(&environment)?;
    tracing::info!(application = %application, environment = %name, created, "Environment stored.");
    let stored = find(&state, &application, &name)?;
    let warnings = super::reach::drift(
        &state,
        &state.catalog.latest_flows()?,
        std::slice::from_ref(&stored),
    );
    Ok((
        super::created_status(created),
        Json(PutEnvironmentDto {
            created,
            environment: stored.into(),
            warnings,
        }),
    ))
}

/// Lists applications.
///
/// `GET /api/v1/apps`: every application with a summary of its environments.
#[utoipa::path(
    get,
    path = "/api/v1/apps",
    operation_id = "list_applications",
    tag = "inventory",
    responses(
        (status = 200, description = "Every application, by name.", body = Vec<ApplicationDto>),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<ApplicationDto>>, ApiError> {
    Ok(Json(applications(&state.store.environments()?)))
}

/// Shows an environment.
///
/// `GET /api/v1/apps/{app}/envs/{env}`: one environment with its targets.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{app}/envs/{env}",
    operation_id = "show_environment",
    tag = "inventory",
    params(
        ("app" = rules::Name, Path, description = "The application."),
        ("env" = rules::Name, Path, description = "The environment."),
    ),
    responses(
        (status = 200, description = "The environment.", body = EnvironmentDto),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 404, description = "No such environment.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path((application, name)): Path<(String, String)>,
) -> Result<Json<EnvironmentDto>, ApiError> {
    Ok(Json(find(&state, &application, &name)?.into()))
}

/// Deletes an environment.
///
/// `DELETE /api/v1/apps/{app}/envs/{env}`: 204, or 404 if there was none.
#[utoipa::path(
    delete,
    path = "/api/v1/apps/{app}/envs/{env}",
    operation_id = "delete_environment",
    tag = "inventory",
    params(
        ("app" = rules::Name, Path, description = "The application."),
        ("env" = rules::Name, Path, description = "The environment."),
    ),
    responses(
        (status = 204, description = "The environment was deleted."),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such environment.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((application, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[])?;
    if !state.store.delete_environment(&application, &name)? {
        return Err(not_found(&application, &name));
    }
    tracing::info!(application = %application, environment = %name, "Environment deleted.");
    Ok(StatusCode::NO_CONTENT)
}
