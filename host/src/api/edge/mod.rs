//! The HTTP edge: accepting connections and serving them with hyper
//! directly, within the limits of `[http]` (see
//! [`crate::config::HttpOptions`]).
//!
//! - At most `max_connections` connections, and `max_connections_per_client`
//!   from one address, are served; one more is accepted, told `503
//!   server.busy` (or `429 request.too_many_connections`) with
//!   `Retry-After`, and closed. Timeouts free the slots: nobody holds one
//!   without sending.
//! - A header block must arrive within `header_timeout_ms`, a kept-alive
//!   connection is closed after `idle_timeout_ms` without a request, and an
//!   answer its client does not take is given up after `idle_timeout_ms`
//!   (`io.rs`). A request being handled is not timed, except its body
//!   (`bodies.rs`): an event stream stays open while its client reads it.
//! - The HTTP layer's own refusals (a malformed request, a header block
//!   over `max_header_bytes`) answer `{code, message}` like the rest.
//! - Requests without a valid token are rate limited per address
//!   ([`rate_limit`]), before the audit log, which they would otherwise
//!   fill: a refused flood costs the log at most the rate.

mod bodies;
mod io;
mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::{ApiError, AppState, auth};
use crate::config::HttpOptions;
use crate::metrics::Metrics;
use bodies::{Answer, BodyClock, BodyPace, InFlight, TimedBody};
use io::{EdgeIo, Phase, Timeouts};
pub use limits::RateLimiter;
use limits::{Admission, ClientKey, Connections};

/// How many refused connections are answered at once; past it, one more
/// is closed at once without an answer.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a refused connection's request is read before the answer.
const REFUSAL_READ: Duration = Duration::from_secs(1);

/// What a client told to come back later is told to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// Serves `app` on `listener` until `stop` turns true, then lets the
/// connections being served finish (graceful, like `axum::serve`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: HttpOptions,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let connections = Connections::new(options.max_connections, options.max_connections_per_client);
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let app = TowerToHyperService::new(app);
    // Every connection task holds a receiver; the server waits for all of
    // them to be dropped.
    let (all_done, done) = watch::channel(());
    let mut stopping = stop.clone();
    let mut stopping = pin!(async move {
        let _ = stopping.wait_for(|s| *s).await;
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut stopping => break,
        };
        let refusal = match connections.admit(ClientKey::of(peer.ip())) {
            Admission::Admitted(slot) => {
                let connection = Connection {
                    app: app.clone(),
                    peer,
                    options: options.clone(),
                    metrics: metrics.clone(),
                };
                let stop = stop.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    connection.serve(stream, stop).await;
                    drop(slot);
                    drop(done);
                });
                continue;
            }
            Admission::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "server.busy",
                format!(
                    "the daemon serves {} connections at once (http.max_connections), and all \
                     are taken; try again shortly",
                    options.max_connections
                ),
            ),
            Admission::ClientBusy => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "request.too_many_connections",
                format!(
                    "this address has {} connections open, the most one client may \
                     (http.max_connections_per_client); reuse them or close some",
                    options.max_connections_per_client
                ),
            ),
        };
        let (status, reason, code, message) = refusal;
        metrics.http_refused(reason);
        // Answered on a task of its own, a few at a time: a flood of
        // connections past the cap costs at most that many.
        if let Ok(turn) = refusals.clone().try_acquire_owned() {
            let done = done.clone();
            tokio::spawn(async move {
                refuse(stream, status, code, &message).await;
                drop(turn);
                drop(done);
            });
        }
    }
    drop(listener);
    drop(done);
    all_done.closed().await;
}

/// What the accept loop does when accepting fails: a connection that went
/// away is nothing, anything else (no descriptors left) waits a moment.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "Cannot accept a connection.");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Answers a connection refused before it is served: reads its request
/// (briefly), answers `{code, message}` with `Retry-After`, and closes
/// after reading out what the client still sends.
async fn refuse(mut stream: TcpStream, status: StatusCode, code: &str, message: &str) {
    let _ = tokio::time::timeout(REFUSAL_READ, read_head(&mut stream)).await;
    let body = serde_json::json!({"code": code, "message": message}).to_string();
    let answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let written = tokio::time::timeout(REFUSAL_READ, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(written, Ok(Ok(()))) {
        let mut scratch = [0u8; 4096];
        let _ = tokio::time::timeout(io::LINGER, async {
            while let Ok(n) = stream.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

/// Reads until the end of a header block, or 8 KiB.
async fn read_head(stream: &mut TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while head.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return;
        }
    }
}

/// One served connection.
struct Connection {
    app: TowerToHyperService<Router>,
    peer: SocketAddr,
    options: HttpOptions,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let options = &self.options;
        let phase = Phase::new();
        let timeouts = Timeouts {
            header: Duration::from_millis(options.header_timeout_ms),
            idle: Duration::from_millis(options.idle_timeout_ms),
        };
        let io = EdgeIo::new(
            stream,
            phase.clone(),
            timeouts,
            options.max_header_bytes,
            self.metrics.clone(),
        );
        let pace = BodyPace {
            grace: Duration::from_millis(options.body_timeout_ms),
            min_bytes_per_second: options.body_min_bytes_per_second,
        };
        let metrics = self.metrics.clone();
        let app = self.app;
        let peer = self.peer;
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                phase.request_started();
                let in_flight = InFlight(phase.clone());
                let clock = BodyClock::default();
                let (mut parts, body) = request.into_parts();
                parts.extensions.insert(ConnectInfo(peer));
                parts.extensions.insert(clock.clone());
                let body = TimedBody::new(body, pace, clock, metrics.clone());
                let answer = hyper::service::Service::call(
                    &app,
                    Request::from_parts(parts, axum::body::Body::new(body)),
                );
                async move {
                    let response = answer.await?;
                    Ok::<_, Infallible>(response.map(|body| Answer::new(body, in_flight)))
                }
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .max_header_size(options.max_header_bytes)
            // The edge times header blocks itself (`io.rs`), from their
            // first byte rather than from the end of the last answer.
            .header_read_timeout(None);
        self.metrics.http_connection(1);
        let mut connection = pin!(builder.serve_connection(TokioIo::new(io), service));
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::select! {
            _ = connection.as_mut() => {}
            () = stopped => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
        self.metrics.http_connection(-1);
    }
}

/// What the edge's checks of a request need.
#[derive(Clone)]
pub struct Checks {
    pub max_uri_bytes: usize,
    pub metrics: Arc<Metrics>,
}

/// The edge's checks of a request, inside the audit log so that what they
/// refuse is recorded: a request target over `max_uri_bytes` is refused
/// before it is handled (`414`), and an answer to a request whose body
/// missed its deadline becomes `408 request.body_timeout`, closing the
/// connection.
pub async fn checks(State(checks): State<Checks>, request: Request, next: Next) -> Response {
    let max_uri_bytes = checks.max_uri_bytes;
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if length > max_uri_bytes {
        checks.metrics.http_refused("uri_too_long");
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "request.uri_too_long",
            format!(
                "the request target is {length} bytes, more than the {max_uri_bytes} this \
                 daemon takes (http.max_uri_bytes)"
            ),
        )
        .into_response();
    }
    let clock = request.extensions().get::<BodyClock>().cloned();
    let response = next.run(request).await;
    if clock.is_some_and(|c| c.timed_out()) {
        let mut response = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request.body_timeout",
            "the request's body did not arrive in time (http.body_timeout_ms, \
             http.body_min_bytes_per_second)",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    response
}

/// What the rate limit needs, shared (a layer's state is cloned for
/// every request).
#[derive(Clone)]
pub struct Limited(pub Arc<(AppState, RateLimiter)>);

/// Limits requests without a valid token (or session) per client address:
/// past the bucket, `429 request.rate_limited` with `Retry-After`. Outside
/// the audit log: what it refuses is counted in the metrics, not recorded
/// one by one, so that a flood cannot fill the log or push older entries
/// out of it faster than the rate. Health probes (`GET /healthz`,
/// `/readyz`) are not limited: an orchestrator probing from a busy address
/// must not see the daemon as down.
pub async fn rate_limit(State(limited): State<Limited>, request: Request, next: Next) -> Response {
    let probe = request.method() == axum::http::Method::GET
        && matches!(request.uri().path(), "/healthz" | "/readyz");
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Some(peer) = peer.filter(|_| !probe) else {
        return next.run(request).await;
    };
    let (state, limiter) = &*limited.0;
    let valid = match auth::identify(state, request.headers()) {
        auth::Identity::Known(record) => !record.revoked,
        _ => false,
    };
    if valid {
        return next.run(request).await;
    }
    match limiter.take(ClientKey::of(peer.ip()), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            state.registry.metrics().http_refused("rate_limited");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "request.rate_limited",
                format!(
                    "too many requests without a valid token from this address \
                     (http.unauthenticated_per_minute); try again in {seconds} s"
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}
