//! The HTTP API: the only module that knows HTTP and JSON.

mod analysis;
pub mod analysis_model;
mod audit;
mod auth;
mod body;
mod drain;
mod edge;
mod error;
mod event_feed;
pub mod event_model;
mod flows;
mod health;
mod inventory;
pub mod model;
pub mod openapi;
mod plugin_access;
mod plugins;
mod reach;
pub mod release_model;
mod releases;
pub mod rules;
pub mod schedule_model;
mod schedules;
mod session;
mod tokens;
mod trains;
mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodFilter, on};

pub use audit::{AuditEntryDto, AuditNote, AuditPageDto};
pub use auth::Caller;
use body::JsonBody;
pub use edge::serve;
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
    pub scheduler: crate::scheduler::Scheduler,
    /// Answers before the change is durable: for the durability benchmark
    /// only (see `Config::answer_before_durable`).
    pub answer_before_durable: bool,
    /// Tokens and browser sessions.
    pub identity: crate::identity::Identity,
    /// The limits at the HTTP edge.
    pub http: crate::config::HttpOptions,
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

/// Declares every route once, as `METHOD "path" => handler`, in groups that
/// share a body limit: `routes()` lists them and `groups()` builds them, so
/// the router serves exactly the routes listed, and a test in `openapi`
/// checks that the document describes exactly those.
macro_rules! routes {
    ($($group:ident { $($method:ident $path:literal => $handler:path,)* })*) => {
        /// Every route of the daemon as `(method, path)`, with path
        /// parameters in braces as both axum and OpenAPI write them.
        pub fn routes() -> &'static [(&'static str, &'static str)] {
            &[$($((stringify!($method), $path),)*)*]
        }

        /// The routes of each group, before their layers.
        struct Groups {
            $($group: Router<AppState>,)*
        }

        fn groups() -> Groups {
            Groups {
                $($group: Router::new()
                    $(.route($path, on(MethodFilter::$method, $handler)))*,)*
            }
        }
    };
}

routes! {
    // Small JSON documents (and flow files).
    json {
        GET "/healthz" => health::alive,
        GET "/readyz" => health::ready,
        GET "/metrics" => health::metrics,
        GET "/api/v1/openapi.json" => openapi::document,
        GET "/api/v1/runtime" => plugins::runtime,
        GET "/api/v1/plugins" => plugins::list,
        GET "/api/v1/plugins/{name}" => plugins::detail,
        PUT "/api/v1/plugins/{name}/grant" => plugins::set_grant,
        PATCH "/api/v1/plugins/{name}/grant" => plugins::edit_grant,
        PUT "/api/v1/plugins/{name}/owners" => plugin_access::set_owners,
        GET "/api/v1/plugins/{name}/{version}" => plugins::show,
        POST "/api/v1/plugins/{name}/{version}/invoke" => plugins::invoke,
        POST "/api/v1/plugins/{name}/{version}/approve" => plugin_access::approve,
        POST "/api/v1/flows" => flows::apply,
        GET "/api/v1/flows" => flows::list,
        GET "/api/v1/flows/{name}" => flows::show,
        POST "/api/v1/flows/{name}/plan" => flows::plan,
        GET "/api/v1/apps" => inventory::list,
        PUT "/api/v1/apps/{app}/envs/{env}" => inventory::put,
        GET "/api/v1/apps/{app}/envs/{env}" => inventory::show,
        DELETE "/api/v1/apps/{app}/envs/{env}" => inventory::delete,
        POST "/api/v1/releases" => releases::start,
        GET "/api/v1/releases" => releases::list,
        GET "/api/v1/releases/{id}" => releases::show,
        GET "/api/v1/releases/{id}/journal" => releases::journal,
        POST "/api/v1/releases/{id}/{action}" => releases::comment_command,
        POST "/api/v1/releases/{id}/resume" => releases::resume,
        POST "/api/v1/releases/{id}/rollback" => releases::rollback,
        POST "/api/v1/releases/{id}/abandon" => releases::abandon,
        GET "/api/v1/events" => releases::events,
        GET "/api/v1/clock" => releases::clock,
        POST "/api/v1/clock" => releases::move_clock,
        POST "/api/v1/trains" => trains::start,
        GET "/api/v1/trains" => trains::list,
        POST "/api/v1/trains/plan" => trains::plan,
        GET "/api/v1/trains/{id}" => trains::show,
        POST "/api/v1/trains/{id}/rollback" => trains::rollback,
        POST "/api/v1/tokens" => tokens::create,
        GET "/api/v1/tokens" => tokens::list,
        DELETE "/api/v1/tokens" => tokens::revoke_named,
        DELETE "/api/v1/tokens/{name}" => tokens::revoke,
        GET "/api/v1/audit" => audit::list,
        POST "/api/v1/analysis/replay" => analysis::replay,
        POST "/api/v1/session" => session::sign_in,
        GET "/api/v1/session" => session::show,
        DELETE "/api/v1/session" => session::sign_out,
        POST "/api/v1/schedules" => schedules::create,
        GET "/api/v1/schedules" => schedules::list,
        GET "/api/v1/schedules/{name}" => schedules::show,
        DELETE "/api/v1/schedules/{name}" => schedules::delete,
        POST "/api/v1/schedules/{name}/enable" => schedules::enable,
        POST "/api/v1/schedules/{name}/disable" => schedules::disable,
        GET "/api/v1/schedules/{name}/next" => schedules::next,
        GET "/api/v1/schedules/{name}/fires" => schedules::fires,
        POST "/api/v1/freezes" => schedules::create_freeze,
        GET "/api/v1/freezes" => schedules::list_freezes,
        DELETE "/api/v1/freezes/{name}" => schedules::delete_freeze,
    }
    // Plugin uploads, as large as the runtime accepts.
    uploads {
        POST "/api/v1/plugins" => plugins::upload,
    }
}

/// Every route of the daemon, behind its layers. From the outside in:
/// reading out refused bodies (`drain`), the rate limit of requests
/// without a valid token (`edge::rate_limit`, not audited), the audit log,
/// the edge's request checks (`edge::checks`: the target's length, a body
/// that missed its deadline), and the `{code, message}` shape. The
/// fallbacks (no such route, no such method) are inside every layer, so
/// a state-changing request to a route that does not exist is audited like
/// any other.
pub fn router(state: AppState) -> Router {
    // Uploads may be as large as the runtime accepts, plus room to say so
    // clearly instead of cutting the connection.
    let upload_limit =
        (state.registry.runtime().options().max_upload_bytes as usize).saturating_add(1024 * 1024);
    let limited = edge::Limited(std::sync::Arc::new((
        state.clone(),
        edge::RateLimiter::new(state.http.unauthenticated_per_minute),
    )));
    let Groups { json, uploads } = groups();
    json.layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(uploads.layer(DefaultBodyLimit::max(upload_limit)))
        .merge(ui::router())
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
        .layer(axum::middleware::from_fn(error::uniform))
        .layer(axum::middleware::from_fn_with_state(
            edge::Checks {
                max_uri_bytes: state.http.max_uri_bytes,
                metrics: state.registry.metrics().clone(),
            },
            edge::checks,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limited,
            edge::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            drain::DrainLimit(upload_limit as u64),
            drain::drain_refused,
        ))
        .with_state(state)
}
