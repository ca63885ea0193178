//! The bodies the edge wraps: a request body that must arrive in time, and
//! an answer whose end tells the connection it is idle again.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::io::Phase;
use crate::metrics::Metrics;

/// Whether a request's body missed its deadline: the middleware that turns
/// the handler's answer into `408 request.body_timeout` reads it.
#[derive(Clone, Default)]
pub struct BodyClock(Arc<AtomicBool>);

impl BodyClock {
    pub fn timed_out(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How fast a body must arrive.
#[derive(Clone, Copy)]
pub struct BodyPace {
    /// The time allowed before the rate counts.
    pub grace: Duration,
    /// Bytes a second, on average, after the grace; 0 for none.
    pub min_bytes_per_second: u64,
}

/// A request body with a deadline: from when its reader first asks for
/// it, the grace plus a second for every `min_bytes_per_second` bytes
/// received. Past it, the body fails (and keeps failing), and the clock says
/// so. A body nobody reads has no deadline: an upload waiting for its turn
/// is not timed.
pub struct TimedBody<B> {
    inner: B,
    pace: BodyPace,
    clock: BodyClock,
    started: Option<Instant>,
    received: u64,
    sleep: Option<Pin<Box<Sleep>>>,
    metrics: Arc<Metrics>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, pace: BodyPace, clock: BodyClock, metrics: Arc<Metrics>) -> TimedBody<B> {
        TimedBody {
            inner,
            pace,
            clock,
            started: None,
            received: 0,
            sleep: None,
            metrics,
        }
    }

    fn deadline(&self, started: Instant) -> Instant {
        let allowed = match self.pace.min_bytes_per_second {
            0 => self.pace.grace,
            rate => self.pace.grace + Duration::from_secs_f64(self.received as f64 / rate as f64),
        };
        started + allowed
    }
}

fn timeout_error() -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.clock.timed_out() {
            return Poll::Ready(Some(Err(timeout_error())));
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline(started);
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                ready!(sleep.as_mut().poll(cx));
                this.clock.0.store(true, Ordering::Relaxed);
                this.metrics.http_refused("body_timeout");
                Poll::Ready(Some(Err(timeout_error())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.clock.timed_out() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Ends a request on its connection when dropped: the answer has been sent
/// (or abandoned), and the connection waits for its next request.
pub struct InFlight(pub Arc<Phase>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// An answer's body, holding its request in flight until it ends.
pub struct Answer {
    inner: axum::body::Body,
    in_flight: Option<InFlight>,
}

impl Answer {
    pub fn new(inner: axum::body::Body, in_flight: InFlight) -> Answer {
        Answer {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.in_flight.take();
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
