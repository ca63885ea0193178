//! The sample service the host agent's demo and tests release: a small
//! HTTP server run as its own process from an unpacked version, answering
//! with the version in its working directory's `VERSION` file. `GET /`
//! works a few milliseconds and answers `{"version": …}` with an
//! `x-version` header; `GET /health` answers once the service serves. On
//! SIGTERM it stops taking connections and finishes the requests it has.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// Serves the version in `./VERSION` on `listen` until `shutdown`
/// resolves, each request working `work_ms`.
pub async fn serve_sample(
    listen: SocketAddr,
    work_ms: u64,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let version = std::fs::read_to_string("VERSION")
        .map_err(|e| anyhow::anyhow!("cannot read ./VERSION: {e}"))?
        .trim()
        .to_string();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    println!("sample service {version} serving on {listen}");
    let work = Duration::from_millis(work_ms);
    let root = {
        let version = version.clone();
        move || async move {
            tokio::time::sleep(work).await;
            answer(&version, json!({"version": version}))
        }
    };
    let health =
        move || async move { answer(&version, json!({"healthy": true, "version": version})) };
    let app = Router::new()
        .route("/", get(root))
        .route("/health", get(health));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    println!("sample service stopped");
    Ok(())
}

fn answer(version: &str, body: serde_json::Value) -> Response {
    ([("x-version", version.to_string())], axum::Json(body)).into_response()
}
