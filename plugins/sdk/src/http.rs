//! A small blocking HTTP client over `wasi:http/outgoing-handler`: build a
//! request, send it, get the whole response. The host lets it reach only the
//! origins in the plugin's grant.
//!
//! A call has one deadline (5 s unless the grant says otherwise) for
//! everything it does, every request included. Requests sent one after the
//! other add up: three targets that never answer, each waited on for 2 s,
//! use the whole deadline and the call fails with `deadline_exceeded`.
//! [`send_all`] sends them at once instead, each bounded by its own
//! [`Request::timeout_ms`], so the call waits as long as the slowest one,
//! and a target that does not answer in time is one [`HttpError::Timeout`]
//! among the answers, for the plugin to report as no data for that target.
//!
//! ```no_run
//! # use greenlight_plugin_sdk::{Error, http};
//! #[derive(serde::Deserialize)]
//! struct Health {
//!     healthy: bool,
//! }
//!
//! # fn probe() -> Result<bool, Error> {
//! let health: Health = http::Request::get("http://10.0.0.1:8080/health")
//!     .timeout_ms(2_000)
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # Ok(health.healthy)
//! # }
//! ```
//!
//! Many targets at once:
//!
//! ```no_run
//! # use greenlight_plugin_sdk::{Target, http};
//! # fn stats(targets: &[Target]) {
//! let requests = targets
//!     .iter()
//!     .map(|t| http::Request::get(format!("http://{}/stats", t.address)).timeout_ms(1_000));
//! for (target, answer) in targets.iter().zip(http::send_all(requests)) {
//!     match answer {
//!         Ok(response) => { /* judge response.json() */ }
//!         Err(e) if e.is_timeout() => { /* no data for this target */ }
//!         Err(e) => { /* refused, unreachable, a bad answer */ }
//!     }
//! }
//! # }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::platform::wasi::http::outgoing_handler;
use crate::bindings::platform::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme, http_error_code,
};
use crate::bindings::platform::wasi::io::poll::{self, Pollable};
use crate::bindings::platform::wasi::io::streams::StreamError;
use crate::error::Error;

/// The most bytes `blocking-write-and-flush` takes at once.
const WRITE_CHUNK: usize = 4096;

/// Why a request produced no usable response.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The URL is not `scheme://authority[/path][?query]`.
    InvalidUrl(String),
    /// The host refused a part of the request (a header, the method...).
    InvalidRequest(String),
    /// The request failed on the way: refused by the grant, connection
    /// refused or reset.
    Transport(String),
    /// The server did not connect or answer within the request's timeout
    /// (or what was left of the call's deadline).
    Timeout(String),
    /// The TLS handshake failed: the server's certificate is not trusted
    /// for its origin, or the server refused the client certificate.
    /// Trying again does not help until the grant or the server changes.
    Tls(String),
    /// The response body could not be read.
    Body(String),
    /// The server answered with a status outside 200-299.
    Status { status: u16, body: String },
    /// The body is not the JSON that was expected.
    Decode(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(url) => write!(f, "invalid URL `{url}`"),
            HttpError::InvalidRequest(what) => write!(f, "invalid request: {what}"),
            HttpError::Transport(why) | HttpError::Timeout(why) => {
                write!(f, "request failed: {why}")
            }
            HttpError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            HttpError::Body(why) => write!(f, "reading the response failed: {why}"),
            HttpError::Status { status, body } if body.is_empty() => {
                write!(f, "answered HTTP {status}")
            }
            HttpError::Status { status, body } => write!(f, "answered HTTP {status}: {body}"),
            HttpError::Decode(why) => write!(f, "unexpected response body: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl HttpError {
    /// Whether the server did not answer in time: for a check, no data
    /// from that target rather than a failure.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpError::Timeout(_))
    }
}

impl From<HttpError> for Error {
    /// Transport failures and server errors may pass; the rest will not.
    fn from(e: HttpError) -> Error {
        let retryable = match &e {
            HttpError::Transport(_) | HttpError::Timeout(_) | HttpError::Body(_) => true,
            HttpError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        };
        if retryable {
            Error::retryable(e.to_string())
        } else {
            Error::new(e.to_string())
        }
    }
}

/// An HTTP request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u64>,
}

impl Request {
    fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url)
    }

    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new(Method::Put, url)
    }

    /// A PATCH request; give its body with [`Request::body`], since a patch
    /// names its format in the content type (a Kubernetes API server takes
    /// `application/merge-patch+json`, `application/json-patch+json` and
    /// `application/strategic-merge-patch+json`).
    pub fn patch(url: impl Into<String>) -> Request {
        Request::new(Method::Patch, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer {token}` when a token is given.
    pub fn bearer(self, token: Option<&str>) -> Request {
        match token {
            Some(token) => self.header("authorization", format!("Bearer {token}")),
            None => self,
        }
    }

    /// Adds `Authorization: Basic …` (RFC 7617) for this user and
    /// password. Credentials go in a header rather than the URL, so that no
    /// error message or proxy log that shows a URL shows them.
    pub fn basic_auth(self, user: &str, password: &str) -> Request {
        let pair = format!("{user}:{password}");
        self.header(
            "authorization",
            format!("Basic {}", base64(pair.as_bytes())),
        )
    }

    /// Sends `value` as a JSON body.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Request {
        // Serialising plain data (derived `Serialize`, string keys) cannot
        // fail; `null` stands in should it ever do.
        let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        self.body("application/json", bytes)
    }

    /// Sends `bytes` as the body, of the given content type.
    pub fn body(mut self, content_type: &str, bytes: impl Into<Vec<u8>>) -> Request {
        self.body = Some(bytes.into());
        self.header("content-type", content_type)
    }

    /// Sends `text` as a plain-text body.
    pub fn text(self, text: impl Into<String>) -> Request {
        self.body("text/plain; charset=utf-8", text.into().into_bytes())
    }

    /// Bounds the connection, the wait for the first byte and every gap
    /// between bytes; the host also bounds them by the plugin's deadline.
    pub fn timeout_ms(mut self, ms: u64) -> Request {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let future = self.start()?;
        let pollable = future.subscribe();
        pollable.block();
        // The pollable is a child of the future and must go first.
        drop(pollable);
        finish(future)
    }

    /// Sends the request, body and all, without waiting for the answer.
    fn start(self) -> Result<FutureIncomingResponse, HttpError> {
        let (scheme, authority, path) =
            split_url(&self.url).ok_or_else(|| HttpError::InvalidUrl(self.url.clone()))?;
        let mut headers: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        if let Some(body) = &self.body {
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let fields =
            Fields::from_list(&headers).map_err(|e| HttpError::InvalidRequest(format!("{e:?}")))?;
        let request = OutgoingRequest::new(fields);
        let refused = |what: &str| HttpError::InvalidRequest(what.to_string());
        request
            .set_method(&self.method)
            .map_err(|()| refused("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| refused("authority"))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| refused("path"))?;
        let options = self.timeout_ms.map(|ms| {
            let ns = ms.saturating_mul(1_000_000);
            let options = RequestOptions::new();
            // A host that does not support a timeout keeps its own bound.
            let _ = options.set_connect_timeout(Some(ns));
            let _ = options.set_first_byte_timeout(Some(ns));
            let _ = options.set_between_bytes_timeout(Some(ns));
            options
        });
        let body = request.body().map_err(|()| refused("body"))?;
        let future = outgoing_handler::handle(request, options).map_err(transport)?;
        write_body(body, self.body.as_deref().unwrap_or_default())?;
        Ok(future)
    }
}

/// Sends every request at once and waits for all of them: the answers come
/// back in the order of the requests, and the wait is as long as the
/// slowest one, not the sum of them all. Give each request a
/// [`Request::timeout_ms`], so that one that never answers ends in
/// [`HttpError::Timeout`] instead of using up the call's deadline.
pub fn send_all(requests: impl IntoIterator<Item = Request>) -> Vec<Result<Response, HttpError>> {
    let mut answers: Vec<Option<Result<Response, HttpError>>> = Vec::new();
    let mut waiting: Vec<(usize, FutureIncomingResponse)> = Vec::new();
    for (i, request) in requests.into_iter().enumerate() {
        match request.start() {
            Ok(future) => {
                answers.push(None);
                waiting.push((i, future));
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    while !waiting.is_empty() {
        let pollables: Vec<Pollable> = waiting.iter().map(|(_, f)| f.subscribe()).collect();
        let refs: Vec<&Pollable> = pollables.iter().collect();
        let mut ready: Vec<usize> = poll::poll(&refs).into_iter().map(|i| i as usize).collect();
        drop(refs);
        // The pollables are children of the futures and must go first.
        drop(pollables);
        // Highest first, so that each removal leaves the lower indices as
        // they were.
        ready.sort_unstable_by(|a, b| b.cmp(a));
        ready.dedup();
        for k in ready {
            let (i, future) = waiting.swap_remove(k);
            answers[i] = Some(finish(future));
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(HttpError::Transport("no answer".into()))))
        .collect()
}

/// Takes the answer of a request that is ready and reads its whole body.
fn finish(future: FutureIncomingResponse) -> Result<Response, HttpError> {
    let response = future
        .get()
        .ok_or_else(|| HttpError::Transport("no response after waiting for one".into()))?
        .map_err(|()| HttpError::Transport("the response was already taken".into()))?
        .map_err(transport)?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    // Locals drop in reverse order: the stream before the body before
    // the response, as the resource hierarchy requires.
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Body("the body was already taken".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Body("the body stream was already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match http_error_code(&e) {
                    Some(code) => transport(code),
                    None => HttpError::Body(e.to_debug_string()),
                });
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body: bytes,
        received_ms: crate::time::monotonic_ms(),
    })
}

/// Writes the whole body and finishes it.
fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|()| HttpError::InvalidRequest("body stream".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Transport(format!("writing the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(transport)
}

fn transport(code: ErrorCode) -> HttpError {
    let why = match code {
        ErrorCode::TlsCertificateError => {
            return HttpError::Tls(
                "the server's certificate is not trusted for this origin (the grant names the CA \
                 to trust), or it refused the client certificate"
                    .into(),
            );
        }
        ErrorCode::TlsAlertReceived(alert) => {
            let message = alert.alert_message.unwrap_or_default();
            return HttpError::Tls(format!("the server sent an alert: {message}"));
        }
        ErrorCode::TlsProtocolError => return HttpError::Tls("protocol error".into()),
        ErrorCode::HttpRequestDenied => "denied by the plugin's grant".to_string(),
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::ConnectionTimeout => {
            return HttpError::Timeout("connection timed out".into());
        }
        ErrorCode::ConnectionReadTimeout => {
            return HttpError::Timeout("timed out waiting for the answer".into());
        }
        other => format!("{other:?}"),
    };
    HttpError::Transport(why)
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case as the host gives them.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// When the whole answer had arrived, on the monotonic clock
    /// ([`crate::time::monotonic_ms`]): with [`send_all`], each answer's
    /// latency is this minus the time the requests were sent.
    pub received_ms: f64,
}

impl Response {
    /// Whether the status is 200-299.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header, matched without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode(e.to_string()))
    }

    /// The response itself when its status is 200-299, an error carrying
    /// the status and the start of the body otherwise.
    pub fn error_for_status(self) -> Result<Response, HttpError> {
        if self.is_success() {
            return Ok(self);
        }
        let body: String = self.text().trim().chars().take(200).collect();
        Err(HttpError::Status {
            status: self.status,
            body,
        })
    }
}

/// Splits `scheme://authority/path?query` into its request parts; the path
/// defaults to `/`.
fn split_url(url: &str) -> Option<(Scheme, &str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.is_empty() {
        return None;
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some((scheme, authority, path))
}

/// Joins a base URL and a path with exactly one slash between them.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters
/// are kept).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648, section 4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_request_parts() {
        let (s, a, p) = split_url("http://127.0.0.1:8080/health?x=1").unwrap();
        assert!(matches!(s, Scheme::Http));
        assert_eq!((a, p.as_str()), ("127.0.0.1:8080", "/health?x=1"));
        let (_, a, p) = split_url("https://example.com?q").unwrap();
        assert_eq!((a, p.as_str()), ("example.com", "/?q"));
        assert!(split_url("http:///x").is_none());
        assert!(split_url("example.com/x").is_none());
    }

    #[test]
    fn joins_and_encodings_are_exact() {
        assert_eq!(join("http://a/agent/", "/health"), "http://a/agent/health");
        assert_eq!(
            encode_query("rate(x[1m]) > 0"),
            "rate%28x%5B1m%5D%29%20%3E%200"
        );
    }

    #[test]
    fn basic_credentials_are_base64_of_user_colon_password() {
        // The examples of RFC 4648, section 10, and of RFC 7617, section 2.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        let r = Request::get("http://influx:8086/query").basic_auth("Aladdin", "open sesame");
        assert_eq!(
            r.headers,
            [(
                "authorization".to_string(),
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string()
            )]
        );
        assert_eq!(r.url, "http://influx:8086/query");
    }

    #[test]
    fn a_patch_carries_its_method_body_and_content_type() {
        let r = Request::patch("https://k8s:6443/apis/apps/v1/x")
            .body("application/merge-patch+json", br#"{"a":1}"#.to_vec());
        assert!(matches!(r.method, Method::Patch));
        assert_eq!(r.body.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(
            r.headers,
            [(
                "content-type".to_string(),
                "application/merge-patch+json".to_string()
            )]
        );
        let j = Request::put("http://a/").json(&[1, 2]);
        assert!(matches!(j.method, Method::Put));
        assert_eq!(j.body.as_deref(), Some(&b"[1,2]"[..]));
        assert_eq!(j.headers[0].1, "application/json");
    }

    #[test]
    fn only_transport_and_server_errors_are_retryable() {
        assert!(Error::from(HttpError::Transport("refused".into())).is_retryable());
        let tls = transport(ErrorCode::TlsCertificateError);
        assert!(matches!(tls, HttpError::Tls(_)));
        assert!(!Error::from(tls).is_retryable());
        let server = HttpError::Status {
            status: 503,
            body: String::new(),
        };
        assert!(Error::from(server).is_retryable());
        let client = HttpError::Status {
            status: 404,
            body: "no such key".into(),
        };
        assert!(!Error::from(client.clone()).is_retryable());
        assert_eq!(client.to_string(), "answered HTTP 404: no such key");
    }
}
