//! The HTTP edge: timeouts, the connection cap, the rate limit of requests
//! without a token, the HTTP layer's refusals, and an audit log that a flood
//! cannot grow without bound. Each daemon is configured with small limits,
//! so the tests run in seconds; connections are driven over raw TCP where
//! a client library would hide what happens.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{Daemon, cli};

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

async fn audit_page(d: &Daemon, query: &str) -> Value {
    let (status, page) = d
        .send(d.request(Method::GET, &format!("/api/v1/audit?{query}")))
        .await;
    assert_eq!(status, 200, "{page}");
    page
}

/// Every entry of the audit log, following the cursor.
async fn whole_audit(d: &Daemon, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let query = match before {
            Some(seq) => format!("limit={limit}&before={seq}"),
            None => format!("limit={limit}"),
        };
        let page = audit_page(d, &query).await;
        all.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_u64() {
            Some(next) => before = Some(next),
            None => return all,
        }
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Sends `count` requests without a token, `at_once` at a time; returns
/// how many got each status.
async fn flood(
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

#[tokio::test]
async fn an_unknown_route_and_a_wrong_method_are_audited_as_denied() {
    let d = Daemon::start().await;
    let (status, body) = d.send(d.request(Method::POST, "/api/v1/nothing")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = d.send(d.request(Method::DELETE, "/api/v1/releases")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // Without a token, a refusal of any kind is a denial.
    let (status, _) = d
        .send(reqwest::Client::new().post(d.url("/api/v1/releases/%ff/approve")))
        .await;
    assert_eq!(status, 401);
    let (status, _) = d
        .send(reqwest::Client::new().put(d.url("/api/v1/nothing/here")))
        .await;
    assert_eq!(status, 404);

    let page = audit_page(&d, "limit=4").await;
    let seen: Vec<(&str, &str, &str, u64, &str)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("anonymous", "PUT (no route)", "denied", 404, "not_found"),
            (
                "anonymous",
                "POST /api/v1/releases/{id}/{action}",
                "denied",
                401,
                "auth.unauthorized"
            ),
            (
                "admin",
                "DELETE /api/v1/releases",
                "denied",
                405,
                "method_not_allowed"
            ),
            ("admin", "POST (no route)", "denied", 404, "not_found"),
        ],
        "{page:#}"
    );
}

/// Finding 2: a thousand refused approvals without a token, each with a
/// 60,000-character path, once grew the store by 190 MiB and made
/// `GET /api/v1/audit?limit=1000` a 108 MB answer. The limits are raised
/// here so that the requests reach the audit log at all (by default the
/// header block is refused first), and the entries are bounded anyway.
#[tokio::test]
async fn a_flood_of_refused_requests_with_long_paths_grows_the_audit_by_a_bounded_amount() {
    let d = Daemon::start_with_config(
        "[http]\nmax_header_bytes = 131072\nmax_uri_bytes = 131072\n\
         unauthenticated_per_minute = 1000000\n",
    )
    .await;
    let db = d.data.join("db");
    let before = dir_bytes(&db);
    let path = format!("/api/v1/releases/{}/approve", "x".repeat(60_000));
    let start = Instant::now();
    let statuses = flood(&d, 1000, 8, &path, &json!({})).await;
    let took = start.elapsed();
    assert_eq!(statuses, [(401, 1000)].into_iter().collect());
    let after_paths = dir_bytes(&db);
    // And large comments, which a refused request does not leave in the log.
    let comment = json!({"comment": "c".repeat(512 * 1024)});
    let statuses = flood(&d, 20, 4, "/api/v1/releases/r1/approve", &comment).await;
    assert_eq!(statuses, [(401, 20)].into_iter().collect());
    let after_comments = dir_bytes(&db);

    let answer = d
        .request(Method::GET, "/api/v1/audit?limit=5000")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&answer).unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1000, "the limit is capped at 1,000");
    assert!(page["next_before"].is_u64(), "and the rest is a page away");
    let largest = entries.iter().map(|e| e.to_string().len()).max().unwrap();
    for e in entries {
        let target = e["target"].as_str().unwrap();
        assert!(
            target.chars().count() <= 512 + " (cut)".len() + 1 && target.ends_with("… (cut)")
                || target == "/api/v1/releases/r1/approve",
            "{target}"
        );
        assert!(e["comment"].is_null(), "{e}");
        assert!(
            e["release"].as_str().unwrap().chars().count() <= 128 + 8,
            "{e}"
        );
        assert_eq!(e["outcome"], "denied");
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "finding 2: 1,000 refused approvals with 60,000-character paths in {took:.1?}: store grew \
         {:.2} MiB; 20 with 512 KiB comments: {:.2} MiB; largest entry {largest} bytes; \
         GET /api/v1/audit?limit=5000: {} entries, {} bytes",
        mib(after_paths.saturating_sub(before)),
        mib(after_comments.saturating_sub(after_paths)),
        entries.len(),
        answer.len()
    );
    assert!(largest < 1500, "{largest}");
    assert!(answer.len() < 2 * 1024 * 1024, "{}", answer.len());
    assert!(
        after_comments.saturating_sub(before) < 16 * 1024 * 1024,
        "the store grew by {:.1} MiB",
        mib(after_comments.saturating_sub(before))
    );
}

#[tokio::test]
async fn retention_keeps_the_audit_within_its_size_oldest_first() {
    let d = Daemon::start_with_config(
        "[http]\nunauthenticated_per_minute = 1000000\n[audit]\nmax_mib = 1\n",
    )
    .await;
    let path = format!("/api/v1/releases/{}/approve", "r".repeat(700));
    let statuses = flood(&d, 2000, 16, &path, &json!({})).await;
    assert_eq!(statuses, [(401, 2000)].into_iter().collect());
    let all = whole_audit(&d, 1000).await;
    let bytes: usize = all.iter().map(|e| e.to_string().len()).sum();
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    println!(
        "retention: {} of 2,000 entries kept, {bytes} bytes as served",
        all.len()
    );
    assert!(all.len() < 2000 && all.len() > 500, "{}", all.len());
    assert!(bytes <= 1024 * 1024, "{bytes}");
    // The newest are kept, without a gap: the oldest went first.
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    let newest = audit_page(&d, "limit=1").await;
    assert_eq!(newest["entries"][0]["seq"].as_u64(), Some(seqs[0]));
    assert!(*seqs.last().unwrap() > 1);
}

#[tokio::test]
async fn retention_removes_entries_older_than_its_age() {
    let d =
        Daemon::start_with_config("manual_clock_ms = 1800000000000\n[audit]\nmax_age_days = 1\n")
            .await;
    flood(&d, 3, 1, "/api/v1/releases/r1/approve", &json!({})).await;
    assert_eq!(
        audit_page(&d, "").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Half a day on, they are kept.
    let (status, _) = d
        .send(
            d.request(Method::POST, "/api/v1/clock")
                .json(&json!({"advance_ms": 12 * 3_600_000})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        audit_page(&d, "").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // A day and a half on, the first three are a day and a half old.
    let (status, _) = d
        .send(
            d.request(Method::POST, "/api/v1/clock")
                .json(&json!({"advance_ms": 24 * 3_600_000})),
        )
        .await;
    assert_eq!(status, 200);
    let page = audit_page(&d, "").await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["POST /api/v1/clock", "POST /api/v1/clock"],
        "{page:#}"
    );
}

#[tokio::test]
async fn the_paged_audit_api_reads_every_entry_exactly_once() {
    let d = Daemon::start_with_config("[http]\nunauthenticated_per_minute = 1000000\n").await;
    flood(&d, 250, 8, "/api/v1/releases/r1/approve", &json!({})).await;
    let first = audit_page(&d, "limit=37").await;
    let top = first["entries"][0]["seq"].as_u64().unwrap();
    let mut seen: Vec<u64> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let mut next = first["next_before"].as_u64();
    // Entries appended while the pages are read do not shift them.
    let more = {
        let client = reqwest::Client::new();
        let url = d.url("/api/v1/releases/r2/approve");
        tokio::spawn(async move {
            for _ in 0..100 {
                client.post(&url).send().await.unwrap();
            }
        })
    };
    while let Some(before) = next {
        let page = audit_page(&d, &format!("limit=37&before={before}")).await;
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        next = page["next_before"].as_u64();
    }
    more.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, once each"
    );
    let everything: Vec<u64> = whole_audit(&d, 1000)
        .await
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .filter(|seq| *seq <= top)
        .collect();
    assert_eq!(seen, everything);
    assert_eq!(seen.len(), 250);

    // With a filter, and from the command line.
    let page = audit_page(&d, "release=r2&limit=30").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 30);
    let before = page["next_before"].as_u64().unwrap();
    let (ok, out, err) = cli(
        &d,
        &[
            "audit",
            "--release",
            "r2",
            "--limit",
            "5",
            "--before",
            &before.to_string(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("401 denied").count(), 5, "{out}");
    assert!(err.contains("--before"), "the next page is named: {err}");

    // The OpenAPI document says so.
    let doc: Value = reqwest::get(d.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = &doc["paths"]["/api/v1/audit"]["get"];
    assert!(
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "before"),
        "{list:#}"
    );
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AuditPageDto"
    );
    let page = &doc["components"]["schemas"]["AuditPageDto"]["properties"];
    assert!(
        page["entries"].is_object() && page["next_before"].is_object(),
        "{page:#}"
    );
}
