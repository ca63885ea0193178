//! The HTTP edge: timeouts, the connection cap, the rate limit of requests
//! without a token, and the HTTP layer's refusals (the audit log's own
//! limits are in `audit_limits.rs`). Each daemon is configured with small limits,
//! so the tests run in seconds; connections are driven over raw TCP where
//! a client library would hide what happens.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::Daemon;

fn addr(d: &Daemon) -> SocketAddr {
    d.base.strip_prefix("http://").unwrap().parse().unwrap()
}

async fn connect(d: &Daemon) -> TcpStream {
    TcpStream::connect(addr(d)).await.unwrap()
}

/// A connection from another loopback address (Linux answers on all of
/// 127.0.0.0/8): another client, as the limits count them.
async fn connect_from(d: &Daemon, local: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(addr(d)).await.unwrap()
}

/// One answer read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Value,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Asserts the body is exactly `{code, message}` with this code.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let keys: Vec<&String> = self
            .body
            .as_object()
            .expect("a JSON object")
            .keys()
            .collect();
        assert_eq!(keys, ["code", "message"], "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        assert!(!self.body["message"].as_str().unwrap().is_empty());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
    }
}

/// Reads one answer with a `Content-Length` body.
async fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("an answer, not an error");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while bytes.len() < end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed in the body");
        bytes.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&bytes[end..end + length]).unwrap_or(Value::Null);
    Raw { status, head, body }
}

/// How long until the daemon closes the connection (reading and dropping
/// whatever comes first), or `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

pub(crate) async fn audit_page(d: &Daemon, query: &str) -> Value {
    let (status, page) = d
        .send(d.request(Method::GET, &format!("/api/v1/audit?{query}")))
        .await;
    assert_eq!(status, 200, "{page}");
    page
}

/// Sends `count` requests without a token, `at_once` at a time; returns
/// how many got each status.
pub(crate) async fn flood(
    d: &Daemon,
    count: usize,
    at_once: usize,
    path: &str,
    body: &Value,
) -> std::collections::BTreeMap<u16, usize> {
    let client = reqwest::Client::new();
    let url = d.url(path);
    let statuses = futures::stream::iter(0..count)
        .map(|_| {
            let request = client.post(&url).json(body);
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(at_once)
        .collect::<Vec<u16>>()
        .await;
    let mut counted = std::collections::BTreeMap::new();
    for s in statuses {
        *counted.entry(s).or_default() += 1;
    }
    counted
}

#[tokio::test]
async fn a_partial_header_block_or_silence_is_closed_after_the_header_timeout() {
    let d = Daemon::start_with_config("[http]\nheader_timeout_ms = 400\nidle_timeout_ms = 30000\n")
        .await;
    let mut partial = connect(&d).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = connect(&d).await;
    let cut = closed_within(&mut partial, Duration::from_secs(5))
        .await
        .expect("a partial header block is not kept");
    assert!(cut >= Duration::from_millis(300), "{cut:?}");
    let cut = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("a connection that sends nothing is not kept");
    assert!(cut < Duration::from_secs(3), "{cut:?}");

    // A header block sent a byte at a time, each within the timeout, is
    // still due whole within it.
    let mut slow = connect(&d).await;
    let start = Instant::now();
    let mut cut_off = false;
    for byte in b"GET /healthz HTTP/1.1\r\nHost: slowly-sent\r\n\r\n" {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !cut_off {
        assert!(
            closed_within(&mut slow, Duration::from_secs(5))
                .await
                .is_some(),
            "a header block trickled in over {:?} was served",
            start.elapsed()
        );
    }
    d.assert_healthy().await;
    let text = d
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("greenlight_http_refusals_total{reason=\"header_timeout\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn a_partial_body_is_refused_after_the_body_timeout() {
    let d = Daemon::start_with_config("[http]\nbody_timeout_ms = 400\n").await;
    let mut stream = connect(&d).await;
    let head = format!(
        "PUT /api/v1/apps/shop/envs/prod HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"targets\": [",
        d.token
    );
    let start = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    let waited = start.elapsed();
    answer.assert_error(408, "request.body_timeout");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert!(
        closed_within(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection is closed after the refusal"
    );
    // The refusal is in the audit log, as the admin's.
    let page = audit_page(&d, "limit=1").await;
    let entry = &page["entries"][0];
    assert_eq!(
        entry["action"], "PUT /api/v1/apps/{app}/envs/{env}",
        "{page:#}"
    );
    assert_eq!(entry["status"], 408, "{page:#}");
    assert_eq!(entry["code"], "request.body_timeout", "{page:#}");
    assert_eq!(entry["actor"], "admin", "{page:#}");

    // A body that keeps coming at a good pace is not cut, however long it
    // takes in all: 4 KiB a tenth of a second, for a second.
    let mut stream = connect(&d).await;
    let document = json!({"targets": [{"id": "web-1", "address": "127.0.0.1:1"}], "live_group": "blue", "pad": "x".repeat(40_000)}).to_string();
    let head = format!(
        "PUT /api/v1/apps/shop/envs/prod HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        d.token,
        document.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for piece in document.as_bytes().chunks(4096) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = read_answer(&mut stream).await;
    // The document is judged on its merits (an unknown field), not cut.
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_ne!(answer.body["code"], "request.body_timeout", "{answer:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_an_event_stream_is_not() {
    let d = Daemon::start_with_config("[http]\nidle_timeout_ms = 500\nheader_timeout_ms = 10000\n")
        .await;
    let mut stream = connect(&d).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut stream).await.status, 200);
    let cut = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(
        cut >= Duration::from_millis(400) && cut < Duration::from_secs(3),
        "closed after {cut:?}: the idle timeout, not the header timeout"
    );

    // An event stream is a request in flight: idle is not idle.
    let mut events = connect(&d).await;
    events
        .write_all(
            format!(
                "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                d.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = vec![0u8; 1024];
    let n = events.read(&mut head).await.unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    assert_eq!(
        closed_within(&mut events, Duration::from_millis(2000)).await,
        None,
        "an event stream outlives the idle timeout"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_clearly_and_timeouts_free_the_slots() {
    let d = Daemon::start_with_config(
        "[http]\nmax_connections = 4\nmax_connections_per_client = 4\nheader_timeout_ms = 1000\n",
    )
    .await;
    // One client holds every slot, sending nothing.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&d).await);
    }
    // The daemon takes connections in the order they arrived, so the held
    // ones have their slots before this one is looked at.
    let mut extra = connect(&d).await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let refused = read_answer(&mut extra).await;
    refused.assert_error(503, "server.busy");
    assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
    assert!(
        closed_within(&mut extra, Duration::from_secs(5))
            .await
            .is_some()
    );

    // Once the silent connections time out, the daemon closes them; it
    // lingers until each client closes its side too, so that a last answer
    // is not lost, and then gives the slot back.
    for stream in &mut held {
        assert!(
            closed_within(stream, Duration::from_secs(10))
                .await
                .is_some(),
            "a silent connection outlived its header timeout"
        );
    }
    drop(held);
    // The slots come back as the daemon sees those closes: a token holder
    // is served within moments, asking again at once on each refusal.
    let start = Instant::now();
    let mut tries = 0;
    let status = loop {
        tries += 1;
        let (status, _) = d
            .send(
                reqwest::Client::new()
                    .get(d.url("/api/v1/releases"))
                    .bearer_auth(&d.token),
            )
            .await;
        if status != 503 || start.elapsed() > Duration::from_secs(5) {
            break status;
        }
    };
    assert_eq!(status, 200, "after {tries} tries in {:?}", start.elapsed());
}

#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    let d = Daemon::start_with_config(
        "[http]\nmax_connections = 8\nmax_connections_per_client = 2\nheader_timeout_ms = 30000\n",
    )
    .await;
    // Taken in the order they arrive: these two have their slots first.
    let _held = [connect(&d).await, connect(&d).await];
    let mut third = connect(&d).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let refused = read_answer(&mut third).await;
    refused.assert_error(429, "request.too_many_connections");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Another client is served at once.
    let mut other = connect_from(&d, "127.0.0.2").await;
    other
        .write_all(
            format!(
                "GET /api/v1/releases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                d.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(read_answer(&mut other).await.status, 200);
}

#[tokio::test]
async fn a_flood_without_a_token_is_rate_limited_and_a_token_holder_is_not() {
    let d = Daemon::start_with_config("[http]\nunauthenticated_per_minute = 10\n").await;
    let statuses = flood(&d, 30, 1, "/api/v1/releases/r1/approve", &json!({})).await;
    assert_eq!(
        statuses,
        [(401, 10), (429, 20)].into_iter().collect(),
        "a burst of 10, then the rate"
    );
    let r = reqwest::Client::new()
        .post(d.url("/api/v1/releases/r1/approve"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "request.rate_limited", "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

    // Health probes are not limited, nor is a token holder from the same
    // address.
    d.assert_healthy().await;
    let (status, _) = d.send(reqwest::Client::new().get(d.url("/readyz"))).await;
    assert_eq!(status, 200);
    for _ in 0..50 {
        let (status, body) = d.send(d.request(Method::GET, "/api/v1/releases")).await;
        assert_eq!(status, 200, "{body}");
    }
    // The log holds what was let through the limit, not the flood.
    let page = audit_page(&d, "actor=anonymous&limit=100").await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 10, "{page:#}");
    assert!(
        entries
            .iter()
            .all(|e| e["outcome"] == "denied" && e["status"] == 401),
        "{page:#}"
    );
}

#[tokio::test]
async fn the_http_layers_refusals_answer_code_and_message() {
    let d = Daemon::start().await;
    // A request target over max_uri_bytes (8 KiB).
    let long = format!("/api/v1/releases/{}", "x".repeat(9000));
    let mut stream = connect(&d).await;
    stream
        .write_all(format!("GET {long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_answer(&mut stream)
        .await
        .assert_error(414, "request.uri_too_long");

    // A header block over max_header_bytes (32 KiB).
    let mut stream = connect(&d).await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(40_000)
    );
    stream.write_all(big.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    answer.assert_error(431, "request.headers_too_large");
    assert_eq!(answer.header("connection"), Some("close"));

    // Too many headers.
    let mut stream = connect(&d).await;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .await
        .unwrap();
    read_answer(&mut stream)
        .await
        .assert_error(431, "request.headers_too_large");

    // Not HTTP: a control character in the target, a header without a
    // colon, a request line of nonsense.
    for bad in [
        "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
        "HELLO\r\n\r\n",
    ] {
        let mut stream = connect(&d).await;
        stream.write_all(bad.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream).await;
        answer.assert_error(400, "request.malformed");
    }
    d.assert_healthy().await;
}
