//! The built-in router: a small reverse proxy in front of the fleet that
//! splits requests between groups by weight, sends them only to enabled
//! instances, never retries, and serves the router API of
//! `plugins/README.md` under `/router`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use tokio::sync::watch;

use super::{Error, Fleet, GroupWeight, Rotation, Weights, groups_of, refusal, wanted_weights};

/// The largest request or response body the router passes on.
const BODY_LIMIT: usize = 1 << 20;

struct Table {
    weights: Vec<GroupWeight>,
    enabled: Vec<bool>,
    /// Requests sent to each instance and not yet answered.
    in_flight: Vec<usize>,
    /// Requests routed so far, which spreads them over the weights.
    routed: u64,
}

struct Inner {
    backends: Vec<(SocketAddr, String)>,
    groups: Vec<String>,
    table: Mutex<Table>,
    /// Bumped whenever an in-flight count falls, for drains to wait on.
    settled: watch::Sender<u64>,
    client: reqwest::Client,
}

/// A running built-in router.
#[derive(Clone)]
pub struct Router {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Router {
    /// Starts the router in front of `fleet` and puts it in charge of the
    /// fleet's traffic; all of it goes to `live_group` at first.
    pub async fn start(fleet: &Fleet, live_group: &str) -> Result<Router, Error> {
        let backends = fleet.backends();
        let listener = super::bind_loopback().await?;
        let addr = listener.local_addr().map_err(Error::Listen)?;
        let groups = groups_of(&backends);
        let inner = Arc::new(Inner {
            table: Mutex::new(Table {
                weights: vec![GroupWeight {
                    group: live_group.to_string(),
                    percent: 100,
                }],
                enabled: vec![true; backends.len()],
                in_flight: vec![0; backends.len()],
                routed: 0,
            }),
            backends,
            groups,
            settled: watch::Sender::new(0),
            // Keeping no idle connections means a request is never sent on
            // a connection the instance is closing.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| Error::Listen(std::io::Error::other(e)))?,
        });
        let app = axum::Router::new()
            .route("/router/weights", get(weights).put(set_weights))
            .fallback(proxy)
            .with_state(inner.clone());
        super::spawn_server(listener, app);
        let router = Router { addr, inner };
        fleet.attach(Arc::new(router.clone()));
        Ok(router)
    }

    /// The base URL of the router API, for `http-traffic`'s `router_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/router", self.addr)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks the instance for the next request and counts it in flight.
    fn pick(&self) -> Result<usize, String> {
        let mut t = self.lock();
        t.routed += 1;
        // 37 is coprime with 100, so consecutive requests visit every
        // percent slot once per hundred, interleaved rather than in runs.
        let slot = (t.routed * 37 % 100) as u32;
        let mut upto = 0;
        let group = t
            .weights
            .iter()
            .find(|w| {
                upto += w.percent;
                slot < upto
            })
            .map(|w| w.group.clone())
            .ok_or("no group has any weight")?;
        let candidates: Vec<usize> = (0..self.backends.len())
            .filter(|&i| self.backends[i].1 == group && t.enabled[i])
            .collect();
        if candidates.is_empty() {
            return Err(format!("no instance of group `{group}` is enabled"));
        }
        let chosen = candidates[t.routed as usize % candidates.len()];
        t.in_flight[chosen] += 1;
        Ok(chosen)
    }

    fn done(&self, index: usize) {
        self.lock().in_flight[index] -= 1;
        self.settled.send_modify(|n| *n += 1);
    }
}

/// Ends a routed request's in-flight count however it ends.
struct Routed<'a>(&'a Inner, usize);

impl Drop for Routed<'_> {
    fn drop(&mut self) {
        self.0.done(self.1);
    }
}

impl Rotation for Router {
    fn set_enabled(&self, index: usize, enabled: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let inner = &self.inner;
            {
                let mut t = inner.lock();
                let slot = t
                    .enabled
                    .get_mut(index)
                    .ok_or_else(|| format!("no instance {index}"))?;
                *slot = enabled;
            }
            if !enabled {
                let mut settled = inner.settled.subscribe();
                while inner.lock().in_flight[index] > 0 {
                    settled.changed().await.map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
    }
}

type Proxy = State<Arc<Inner>>;

async fn weights(State(inner): Proxy) -> axum::Json<Weights> {
    axum::Json(Weights {
        weights: inner.lock().weights.clone(),
    })
}

async fn set_weights(State(inner): Proxy, body: Bytes) -> Response {
    match wanted_weights(&body, &inner.groups) {
        Ok(wanted) => {
            inner.lock().weights = wanted.weights.clone();
            axum::Json(wanted).into_response()
        }
        Err(refused) => *refused,
    }
}

/// Passes one request to an instance and its answer back, once: a failed
/// request is the client's to see.
async fn proxy(State(inner): Proxy, request: Request) -> Response {
    let index = match inner.pick() {
        Ok(i) => i,
        Err(problem) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "router.no_backend",
                problem,
            );
        }
    };
    let _routed = Routed(&inner, index);
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("http://{}{path}", inner.backends[index].0);
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return refusal(StatusCode::PAYLOAD_TOO_LARGE, "router.body", e.to_string()),
    };
    let mut forward = inner.client.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            forward = forward.header(name, value);
        }
    }
    let answer = match forward.send().await {
        Ok(a) => a,
        Err(e) => {
            return refusal(
                StatusCode::BAD_GATEWAY,
                "router.backend_failed",
                format!("{}: {e}", inner.backends[index].0),
            );
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return refusal(
                StatusCode::BAD_GATEWAY,
                "router.backend_failed",
                e.to_string(),
            );
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != axum::http::header::CONTENT_LENGTH
            && name != axum::http::header::TRANSFER_ENCODING
        {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
