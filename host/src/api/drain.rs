//! Reading out the rest of a refused request's body. A request refused
//! before its body is read (no valid token, a bad query, a body over a
//! route's limit) would otherwise end with the connection closed under a
//! client still sending: it sees a broken pipe instead of the answer. So the
//! rest is read and dropped first, within a bound of bytes and of time, and
//! the answer goes out after it. A body declared larger than the bound is
//! not read at all: that client is refused from its `Content-Length` alone.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// How long a refused request's sender gets to finish sending.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The bound of bytes read out of a refused request: the largest body any
/// route accepts.
#[derive(Clone, Copy)]
pub struct DrainLimit(pub u64);

/// A request body the handler reads while this layer keeps hold of it, so
/// that what the handler left unread can be read out after the answer is
/// made.
struct Shared(Arc<Mutex<Body>>);

impl Shared {
    fn body(&self) -> std::sync::MutexGuard<'_, Body> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.body()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body().size_hint()
    }
}

/// Answers a refusal only after reading out what its sender still sends.
pub async fn drain_refused(
    State(DrainLimit(limit)): State<DrainLimit>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let held = Arc::new(Mutex::new(body));
    let request = Request::from_parts(parts, Body::new(Shared(held.clone())));
    let response = next.run(request).await;
    let refused = response.status().is_client_error() || response.status().is_server_error();
    if refused && declared.is_none_or(|n| n <= limit) {
        let rest = std::mem::replace(
            &mut *held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            Body::empty(),
        );
        let _ = tokio::time::timeout(DRAIN_TIME, read_out(rest, limit)).await;
    }
    response
}

/// Reads and drops a body, up to `limit` bytes.
async fn read_out(mut body: Body, limit: u64) {
    let mut read = 0u64;
    while read <= limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Some(Err(_)) | None => return,
        }
    }
}
