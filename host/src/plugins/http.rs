//! Outbound HTTP for plugins: every request is checked against the plugin's
//! grant on its final URI (scheme, host and port; never the Host header) and
//! counted against the per-invocation request limit before it leaves.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::tape::{self, Shared};
use super::tls::{self, TlsFailure};
use crate::domain::grant::{Grant, Origin};
use crate::domain::recording::{CallRecording, exchange_key};
use crate::domain::redact::Redactor;

/// Why an outbound request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The request's origin is not in the grant.
    NotGranted(String),
    /// The request has no usable scheme or authority.
    BadUri(String),
    /// The invocation already made as many requests as it may.
    RequestLimit(u32),
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::NotGranted(origin) => write!(f, "outbound HTTP to {origin} is not granted"),
            Denial::BadUri(uri) => write!(f, "outbound HTTP to `{uri}` has no scheme or host"),
            Denial::RequestLimit(n) => write!(f, "outbound HTTP request limit of {n} reached"),
        }
    }
}

/// The `wasi:http` hooks of one invocation.
pub(super) struct GrantedHttp {
    grant: Arc<Grant>,
    max_requests: u32,
    connect_timeout: Duration,
    deadline: Instant,
    pub sent: u32,
    pub denials: Vec<Denial>,
    /// Handshakes with private origins that failed: they fail the call,
    /// named, even if the plugin carries on.
    pub tls_failures: Arc<Mutex<Vec<TlsFailure>>>,
    /// The TLS settings of the private origins called so far.
    tls_configs: HashMap<Origin, Arc<rustls::ClientConfig>>,
    /// Whether answers are recorded, or given from a recording.
    pub tape: HttpTape,
    /// Takes granted secrets out of the keys exchanges are kept by.
    redactor: Redactor,
}

/// The HTTP side of a [`tape::Tape`].
pub(super) enum HttpTape {
    Live,
    Record(Shared),
    Replay {
        recording: CallRecording,
        release: String,
        /// The exchanges given so far, by index.
        served: Vec<usize>,
        /// The requests the recording does not hold, in words.
        unrecorded: Vec<String>,
    },
}

impl GrantedHttp {
    pub fn new(
        grant: Arc<Grant>,
        max_requests: u32,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> GrantedHttp {
        GrantedHttp {
            grant,
            max_requests,
            connect_timeout,
            deadline,
            sent: 0,
            denials: Vec::new(),
            tls_failures: Arc::default(),
            tls_configs: HashMap::new(),
            tape: HttpTape::Live,
            redactor: Redactor::default(),
        }
    }

    /// Records or replays this invocation's exchanges, keyed without the
    /// secrets `redactor` knows.
    pub fn taped(mut self, tape: HttpTape, redactor: Redactor) -> GrantedHttp {
        self.tape = tape;
        self.redactor = redactor;
        self
    }

    /// Answers a request from the recording being replayed, if there is
    /// one; a request it does not hold is refused and named.
    fn answer_recorded(&mut self, method: &str, key: &str) -> Option<ResponseFuture> {
        let HttpTape::Replay {
            recording,
            release,
            served,
            unrecorded,
        } = &mut self.tape
        else {
            return None;
        };
        Some(match tape::replay(recording, served, method, key) {
            Some(response) => Box::new(async move {
                let io: Box<dyn Future<Output = Result<(), Error>> + Send> =
                    Box::new(async { Ok(()) });
                Ok((response, io))
            }),
            None => {
                unrecorded.push(format!(
                    "{method} {key} was not recorded in release {release}"
                ));
                Box::new(async { Err(Error::HttpRequestDenied) })
            }
        })
    }

    /// The TLS settings the grant gives an origin, if it gives any; an
    /// entry that cannot be used is a failure naming the origin.
    fn private_tls(
        &mut self,
        origin: &Origin,
    ) -> Option<Result<Arc<rustls::ClientConfig>, TlsFailure>> {
        let entry = self.grant.tls_for(origin)?;
        if let Some(config) = self.tls_configs.get(origin) {
            return Some(Ok(config.clone()));
        }
        let config = match tls::client_config(entry, &self.grant.secrets) {
            Ok(config) => Arc::new(config),
            Err(problem) => {
                return Some(Err(TlsFailure {
                    origin: origin.to_string(),
                    problem: format!("the grant's TLS settings for it cannot be used: {problem}"),
                }));
            }
        };
        self.tls_configs.insert(origin.clone(), config.clone());
        Some(Ok(config))
    }

    /// Decides whether a request may leave; the origin it goes to if so.
    fn admit(&mut self, uri: &http::Uri) -> Result<Origin, Denial> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Denial::BadUri(uri.to_string()));
        };
        let default_port = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        let origin = Origin::from_authority(scheme, authority.as_str(), default_port)
            .map_err(|_| Denial::BadUri(uri.to_string()))?;
        if !self.grant.allows(&origin) {
            return Err(Denial::NotGranted(origin.to_string()));
        }
        if self.sent >= self.max_requests {
            return Err(Denial::RequestLimit(self.max_requests));
        }
        self.sent += 1;
        Ok(origin)
    }

    /// The guest's timeouts, shortened to the connect limit and to what is
    /// left of the invocation's deadline.
    fn options(&self, asked: Option<RequestOptions>) -> RequestOptions {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let asked = asked.unwrap_or_default();
        let cap = |d: Option<Duration>, max: Duration| Some(d.map_or(max, |d| d.min(max)));
        RequestOptions {
            connect_timeout: cap(asked.connect_timeout, self.connect_timeout.min(left)),
            first_byte_timeout: cap(asked.first_byte_timeout, left),
            between_bytes_timeout: cap(asked.between_bytes_timeout, left),
        }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for GrantedHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let origin = match self.admit(request.uri()) {
            Ok(origin) => origin,
            Err(denial) => {
                self.denials.push(denial);
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
        };
        let method = request.method().to_string();
        let key = match self.tape {
            HttpTape::Live => String::new(),
            _ => exchange_key(&request.uri().to_string(), &self.redactor),
        };
        if let Some(answer) = self.answer_recorded(&method, &key) {
            return answer;
        }
        let sent = self.send(origin, request, options);
        match &self.tape {
            HttpTape::Record(shared) => {
                let shared = shared.clone();
                Box::new(async move {
                    let (response, io) = Box::into_pin(sent).await?;
                    Ok((tape::record(&shared, method, key, response), io))
                })
            }
            _ => sent,
        }
    }
}

impl GrantedHttp {
    /// Sends an admitted request, over the grant's TLS settings for its
    /// origin when it has any.
    fn send(
        &mut self,
        origin: Origin,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> ResponseFuture {
        let options = self.options(options);
        match self.private_tls(&origin) {
            None => {}
            Some(Err(failure)) => {
                push(&self.tls_failures, failure);
                return Box::new(async { Err(Error::TlsCertificateError) });
            }
            Some(Ok(config)) => {
                let failures = self.tls_failures.clone();
                return Box::new(async move {
                    tls::send(request, &origin, config, &options).await.map_err(
                        |(error, failure)| {
                            if let Some(failure) = failure {
                                push(&failures, failure);
                            }
                            error
                        },
                    )
                });
            }
        }
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

fn push(failures: &Mutex<Vec<TlsFailure>>, failure: TlsFailure) {
    failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(failure);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(allowed: &[&str], max: u32) -> GrantedHttp {
        let grant = Grant {
            tls: Vec::new(),
            allowed_hosts: allowed.iter().map(|o| Origin::parse(o).unwrap()).collect(),
            ..Default::default()
        };
        GrantedHttp::new(
            Arc::new(grant),
            max,
            Duration::from_secs(1),
            Instant::now() + Duration::from_secs(5),
        )
    }

    #[test]
    fn only_granted_origins_pass() {
        let mut h = hooks(&["http://127.0.0.1:8080"], 10);
        assert!(h.admit(&"http://127.0.0.1:8080/x".parse().unwrap()).is_ok());
        assert_eq!(
            h.admit(&"http://127.0.0.1:8081/x".parse().unwrap()),
            Err(Denial::NotGranted("http://127.0.0.1:8081".into()))
        );
        assert_eq!(
            h.admit(&"https://127.0.0.1:8080/".parse().unwrap()),
            Err(Denial::NotGranted("https://127.0.0.1:8080".into()))
        );
    }

    #[test]
    fn the_request_limit_is_enforced() {
        let mut h = hooks(&["http://a"], 2);
        let uri: http::Uri = "http://a/".parse().unwrap();
        assert!(h.admit(&uri).is_ok());
        assert!(h.admit(&uri).is_ok());
        assert_eq!(h.admit(&uri), Err(Denial::RequestLimit(2)));
    }

    #[test]
    fn timeouts_never_exceed_the_deadline() {
        let h = hooks(&[], 1);
        let o = h.options(Some(RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: None,
            between_bytes_timeout: None,
        }));
        assert!(o.connect_timeout.unwrap() <= Duration::from_secs(1));
        assert!(o.first_byte_timeout.unwrap() <= Duration::from_secs(5));
    }
}
