//! A connection's bytes as the edge sees them: reads that must come in
//! time, writes a client must take in time, the HTTP layer's own refusals
//! given the `{code, message}` body, and a close that lets the answer
//! arrive.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// How long a closing connection reads out what its client still sends, so
/// that the client reads the answer instead of a reset.
pub const LINGER: Duration = Duration::from_secs(2);

/// The most a closing connection reads out.
const LINGER_BYTES: usize = 1024 * 1024;

/// The timeouts of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// Where a connection is between requests, shared by its bytes and the
/// requests it carries.
pub struct Phase(Mutex<PhaseState>);

struct PhaseState {
    /// A request is being handled or answered: no read is timed (its body
    /// is, by its reader), so an event stream stays open.
    in_flight: bool,
    /// No request yet: the first header block is due a header timeout
    /// after the connection.
    fresh: bool,
    /// When the connection was accepted or its last answer ended.
    idle_since: Instant,
    /// When the first byte of the next header block arrived.
    head_since: Option<Instant>,
    /// The task waiting to read, woken when the answer ends: its read was
    /// not timed while the request was in flight, and must now be.
    reader: Option<Waker>,
}

impl Phase {
    pub fn new() -> Arc<Phase> {
        Arc::new(Phase(Mutex::new(PhaseState {
            in_flight: false,
            fresh: true,
            idle_since: Instant::now(),
            head_since: None,
            reader: None,
        })))
    }

    fn state(&self) -> MutexGuard<'_, PhaseState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A request's header block has been read.
    pub fn request_started(&self) {
        let mut s = self.state();
        s.in_flight = true;
        s.fresh = false;
        s.head_since = None;
    }

    /// A request's answer has ended.
    pub fn request_ended(&self) {
        let reader = {
            let mut s = self.state();
            s.in_flight = false;
            s.idle_since = Instant::now();
            s.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    fn in_flight(&self) -> bool {
        self.state().in_flight
    }

    /// Bytes arrived: between requests, they begin a header block.
    fn bytes_read(&self) {
        let mut s = self.state();
        if !s.in_flight && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
        }
    }

    /// When a read that is waiting must give up, and why; none while a
    /// request is in flight, and then `waker` is woken when it ends.
    fn read_deadline(&self, t: &Timeouts, waker: &Waker) -> Option<(Instant, &'static str)> {
        let mut s = self.state();
        if s.in_flight {
            if !s.reader.as_ref().is_some_and(|r| r.will_wake(waker)) {
                s.reader = Some(waker.clone());
            }
            None
        } else if let Some(since) = s.head_since {
            Some((since + t.header, "header_timeout"))
        } else if s.fresh {
            Some((s.idle_since + t.header, "header_timeout"))
        } else {
            Some((s.idle_since + t.idle, "idle_timeout"))
        }
    }
}

/// A refusal hyper makes by itself (a request it cannot parse, a URI or a
/// header block too large), which it answers with an empty body, and the
/// `{code, message}` answer written in its place.
fn refusal_for(written: &[u8], max_header_bytes: usize) -> Option<(&'static str, Vec<u8>)> {
    let head = &written[..written.len().min(512)];
    let status = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?
        .get(..3)?;
    let (status, reason, code, message) = match status {
        b"400" => (
            400,
            "Bad Request",
            "request.malformed",
            "the request is not HTTP/1.1 this daemon can read: its request line or a header \
             is malformed"
                .to_string(),
        ),
        b"414" => (
            414,
            "URI Too Long",
            "request.uri_too_long",
            "the request target is too long".to_string(),
        ),
        b"431" => (
            431,
            "Request Header Fields Too Large",
            "request.headers_too_large",
            format!(
                "the request's header block is larger than {max_header_bytes} bytes or has \
                 more than 100 headers (http.max_header_bytes)"
            ),
        ),
        _ => return None,
    };
    // Every answer of the router to a refusal has a body; an empty one
    // is hyper's own.
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if !text.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let body = serde_json::json!({"code": code, "message": message}).to_string();
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let metric = code.strip_prefix("request.").unwrap_or(code);
    Some((metric, answer.into_bytes()))
}

/// Polls a timer set to `deadline`, making or moving it as needed.
fn expired(slot: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let sleep = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if sleep.deadline() != deadline {
        sleep.as_mut().reset(deadline);
    }
    sleep.as_mut().poll(cx).is_ready()
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

/// A served connection's stream.
pub struct EdgeIo {
    stream: TcpStream,
    phase: Arc<Phase>,
    timeouts: Timeouts,
    max_header_bytes: usize,
    metrics: Arc<Metrics>,
    read_timer: Option<Pin<Box<Sleep>>>,
    /// Since when a write has waited for the client to take more.
    write_stalled: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
    /// An answer written in place of one of hyper's, and how much of it
    /// is out.
    replacement: Vec<u8>,
    replaced: usize,
    /// Closing: the write side is shut, and what the client still sends
    /// is read out until then.
    linger_until: Option<Instant>,
    linger_timer: Option<Pin<Box<Sleep>>>,
    lingered: usize,
}

impl EdgeIo {
    pub fn new(
        stream: TcpStream,
        phase: Arc<Phase>,
        timeouts: Timeouts,
        max_header_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> EdgeIo {
        EdgeIo {
            stream,
            phase,
            timeouts,
            max_header_bytes,
            metrics,
            read_timer: None,
            write_stalled: None,
            write_timer: None,
            replacement: Vec::new(),
            replaced: 0,
            linger_until: None,
            linger_timer: None,
            lingered: 0,
        }
    }

    /// A write that could not go: fails once the client has taken nothing
    /// for the idle timeout.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let since = *self.write_stalled.get_or_insert_with(Instant::now);
        if expired(&mut self.write_timer, since + self.timeouts.idle, cx) {
            self.metrics.http_refused("idle_timeout");
            return Poll::Ready(Err(timed_out(
                "the client took none of the answer within the idle timeout",
            )));
        }
        Poll::Pending
    }

    fn wrote<T>(&mut self, result: io::Result<T>) -> Poll<io::Result<T>> {
        self.write_stalled = None;
        Poll::Ready(result)
    }

    /// Writes out the rest of a replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.replaced < self.replacement.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.replacement[self.replaced..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.write_stalled = None;
                    self.replaced += n;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.stalled(cx),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for EdgeIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phase.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.phase.read_deadline(&this.timeouts, cx.waker()) {
                Some((deadline, reason)) if expired(&mut this.read_timer, deadline, cx) => {
                    this.metrics.http_refused(reason);
                    Poll::Ready(Err(timed_out(reason)))
                }
                _ => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for EdgeIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        if let Some((reason, answer)) = refusal_for(buf, this.max_header_bytes)
            && !this.phase.in_flight()
        {
            this.metrics.http_refused(reason);
            this.replacement = answer;
            this.replaced = 0;
            // What is left goes out with the flush that follows.
            if let Poll::Ready(Err(e)) = this.poll_replacement(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(result) => this.wrote(result),
            Poll::Pending => this.stalled(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        // hyper writes a head it makes itself as one buffer.
        let first = bufs.iter().find(|b| !b.is_empty());
        if let Some((reason, answer)) =
            first.and_then(|head| refusal_for(head, this.max_header_bytes))
            && !this.phase.in_flight()
        {
            this.metrics.http_refused(reason);
            this.replacement = answer;
            this.replaced = 0;
            if let Poll::Ready(Err(e)) = this.poll_replacement(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => this.wrote(result),
            Poll::Pending => this.stalled(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Ready(result) => this.wrote(result),
            Poll::Pending => this.stalled(cx),
        }
    }

    /// Sends everything, shuts the write side, then reads out what the
    /// client still sends until it closes too, for at most [`LINGER`]: a
    /// connection closed with unread bytes would be reset, and the client
    /// could lose the answer it has not read yet.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        if this.linger_until.is_none() {
            match Pin::new(&mut this.stream).poll_shutdown(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return this.stalled(cx),
            }
            this.linger_until = Some(Instant::now() + LINGER);
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut out = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut out) {
                Poll::Ready(Ok(())) if !out.filled().is_empty() => {
                    this.lingered += out.filled().len();
                    if this.lingered > LINGER_BYTES {
                        return Poll::Ready(Ok(()));
                    }
                }
                // The client has closed, or is gone.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    let until = this.linger_until.unwrap_or_else(Instant::now);
                    if expired(&mut this.linger_timer, until, cx) {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_refusals_are_replaced() {
        let hyper =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let (reason, answer) = refusal_for(hyper, 8192).unwrap();
        assert_eq!(reason, "headers_too_large");
        let text = String::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "request.headers_too_large");
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(refusal_for(bad, 8192).unwrap().0, "malformed");
        // The router's own refusals have a body, and others are left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n{";
        assert!(refusal_for(ours, 8192).is_none());
        let fine = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(refusal_for(fine, 8192).is_none());
        assert!(refusal_for(b"{\"HTTP/1.1 400 ", 8192).is_none());
    }
}
