//! Recording and replaying what a call sees: a recorded call keeps the
//! answers to its outbound HTTP requests (tee'd as the plugin reads them,
//! bounded) and its clock readings; a replayed call gets the same answers
//! and readings, and nothing leaves the host.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use wasmtime_wasi_http::{Error, WasiBody};

use crate::domain::recording::{
    CallRecording, Exchange, KEPT_HEADERS, MAX_CALL_BODY_BYTES, MAX_CLOCK_READS,
};

/// How a call meets the world outside it.
#[derive(Debug, Clone, Default)]
pub enum Tape {
    /// Requests go out; nothing is kept.
    #[default]
    Live,
    /// Requests go out, and what they answer is kept.
    Record,
    /// Requests are answered from a recording made in `release`.
    Replay {
        recording: CallRecording,
        release: String,
    },
}

/// What a taped call leaves behind.
#[derive(Debug, Clone, Default)]
pub struct Taped {
    /// The recording of a recorded call.
    pub recording: Option<CallRecording>,
    /// The requests of a replayed call that the recording does not hold,
    /// in words (`GET http://… was not recorded in release X`).
    pub unrecorded: Vec<String>,
}

/// A recording being made, shared with the bodies being read.
pub(super) type Shared = Arc<Mutex<CallRecording>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, CallRecording> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The clock side of a tape.
#[derive(Debug)]
pub(super) enum ClockTape {
    Live,
    Record(Shared),
    Replay {
        reads: Vec<u64>,
        next: usize,
        at_ms: u64,
    },
}

impl ClockTape {
    /// The reading to give the plugin, from the live clock's `now`.
    pub fn read(&mut self, now: impl FnOnce() -> u64) -> u64 {
        match self {
            ClockTape::Live => now(),
            ClockTape::Record(shared) => {
                let now = now();
                let mut recording = lock(shared);
                if recording.clock_reads.len() < MAX_CLOCK_READS {
                    recording.clock_reads.push(now);
                } else {
                    recording.incomplete.get_or_insert_with(|| {
                        format!("the plugin read the clock more than {MAX_CLOCK_READS} times")
                    });
                }
                now
            }
            // Past the recorded readings the clock stands at the last.
            ClockTape::Replay { reads, next, at_ms } => {
                let read = reads.get(*next).or(reads.last()).copied().unwrap_or(*at_ms);
                *next += 1;
                read
            }
        }
    }
}

/// Marks a recording incomplete and drops its bodies.
fn spoil(shared: &Shared, why: String) {
    lock(shared).drop_exchanges(why);
}

/// Keeps an answer's status and headers, and returns its body wrapped so
/// that what the plugin reads of it is kept too.
pub(super) fn record(
    shared: &Shared,
    method: String,
    url: String,
    response: http::Response<WasiBody>,
) -> http::Response<WasiBody> {
    let (parts, body) = response.into_parts();
    let index = {
        let mut recording = lock(shared);
        if recording.incomplete.is_some() {
            return http::Response::from_parts(parts, body);
        }
        recording.exchanges.push(Exchange {
            method: method.clone(),
            url: url.clone(),
            status: parts.status.as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(*name)?.to_str().ok()?;
                    Some((name.to_string(), value.to_string()))
                })
                .collect(),
            body: Vec::new(),
        });
        recording.exchanges.len() - 1
    };
    let tee = Tee {
        inner: body,
        shared: shared.clone(),
        index,
        what: format!("{method} {url}"),
        ended: false,
    };
    http::Response::from_parts(parts, tee.boxed_unsync())
}

/// The recorded answer to a request, if the recording holds one; requests
/// with the same method and key are answered in the order they were made,
/// the last again when asked more often.
pub(super) fn replay(
    recording: &CallRecording,
    served: &mut Vec<usize>,
    method: &str,
    url: &str,
) -> Option<http::Response<WasiBody>> {
    let matching: Vec<usize> = (0..recording.exchanges.len())
        .filter(|&i| {
            let e = &recording.exchanges[i];
            e.method == method && e.url == url
        })
        .collect();
    let index = matching
        .iter()
        .copied()
        .find(|i| !served.contains(i))
        .or(matching.last().copied())?;
    served.push(index);
    let exchange = &recording.exchanges[index];
    let mut builder = http::Response::builder().status(exchange.status);
    for (name, value) in &exchange.headers {
        builder = builder.header(name, value);
    }
    let body = Full::new(Bytes::from(exchange.body.clone()))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder.body(body).ok()
}

/// A response body that keeps what passes through it.
struct Tee {
    inner: WasiBody,
    shared: Shared,
    index: usize,
    what: String,
    ended: bool,
}

impl Tee {
    fn keep(&self, data: &Bytes) {
        let mut recording = lock(&self.shared);
        if recording.incomplete.is_some() {
            return;
        }
        if recording.body_bytes() + data.len() > MAX_CALL_BODY_BYTES {
            recording.drop_exchanges(format!(
                "the answers passed the {} KiB of bodies kept per call at {}",
                MAX_CALL_BODY_BYTES / 1024,
                self.what
            ));
            return;
        }
        if let Some(exchange) = recording.exchanges.get_mut(self.index) {
            exchange.body.extend_from_slice(data);
        }
    }
}

impl Body for Tee {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.keep(data);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let why = format!("the answer to {} failed: {e}", self.what);
                spoil(&self.shared, why);
            }
            Poll::Ready(None) => self.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if !self.ended && !self.inner.is_end_stream() {
            let why = format!("the plugin did not read all of the answer to {}", self.what);
            spoil(&self.shared, why);
        }
    }
}
