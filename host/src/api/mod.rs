//! The HTTP API: the only module that knows HTTP and JSON.

mod audit;
mod auth;
mod error;
mod flows;
mod health;
mod inventory;
pub mod model;
mod plugins;
pub mod release_model;
mod releases;
mod tokens;
mod trains;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

pub use audit::AuditEntryDto;
pub use auth::{Caller, token_hash};
pub use error::ApiError;

use crate::catalog::Catalog;
use crate::engine::Engine;
use crate::registry::Registry;
use crate::store::Store;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub catalog: Catalog,
    pub store: Store,
    pub engine: Engine,
}

/// A JSON body that could not be read, as our error shape.
fn json_error(e: JsonRejection) -> ApiError {
    let status = match e {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, "request.bad_json", e.body_text())
}

/// 201 for something new, 200 for something that was already there.
fn created_status(created: bool) -> axum::http::StatusCode {
    if created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    }
}

/// Bodies other than plugin uploads are small JSON documents.
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Every route of the daemon.
pub fn router(state: AppState) -> Router {
    // Uploads may be as large as the runtime accepts, plus room to say so
    // clearly instead of cutting the connection.
    let upload_limit =
        (state.registry.runtime().options().max_upload_bytes as usize).saturating_add(1024 * 1024);
    let uploads = Router::new()
        .route("/api/v1/plugins", post(plugins::upload).get(plugins::list))
        .layer(DefaultBodyLimit::max(upload_limit));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/runtime", get(plugins::runtime))
        .route("/api/v1/flows", post(flows::apply).get(flows::list))
        .route("/api/v1/flows/{name}", get(flows::show))
        .route("/api/v1/flows/{name}/plan", post(flows::plan))
        .route("/api/v1/apps", get(inventory::list))
        .route(
            "/api/v1/apps/{app}/envs/{env}",
            put(inventory::put)
                .get(inventory::show)
                .delete(inventory::delete),
        )
        .route(
            "/api/v1/releases",
            post(releases::start).get(releases::list),
        )
        .route("/api/v1/releases/{id}", get(releases::show))
        .route("/api/v1/releases/{id}/journal", get(releases::journal))
        .route(
            "/api/v1/releases/{id}/{action}",
            post(releases::comment_command),
        )
        .route("/api/v1/releases/{id}/resume", post(releases::resume))
        .route("/api/v1/releases/{id}/rollback", post(releases::rollback))
        .route("/api/v1/trains", post(trains::start).get(trains::list))
        .route("/api/v1/trains/plan", post(trains::plan))
        .route("/api/v1/trains/{id}", get(trains::show))
        .route("/api/v1/trains/{id}/rollback", post(trains::rollback))
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route(
            "/api/v1/tokens/{name}",
            axum::routing::delete(tokens::revoke),
        )
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/events", get(releases::events))
        .route(
            "/api/v1/clock",
            get(releases::clock).post(releases::move_clock),
        )
        .route("/api/v1/plugins/{name}", get(plugins::detail))
        .route("/api/v1/plugins/{name}/grant", put(plugins::set_grant))
        .route("/api/v1/plugins/{name}/{version}", get(plugins::show))
        .route(
            "/api/v1/plugins/{name}/{version}/invoke",
            post(plugins::invoke),
        )
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(uploads)
        .layer(axum::middleware::from_fn(error::uniform))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such route",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .with_state(state)
}
