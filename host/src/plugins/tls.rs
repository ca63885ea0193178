//! Outbound HTTPS to private origins: a grant may name, per origin, a CA to
//! trust instead of the public roots and a client certificate to present.
//! Verification is never switched off. A request to such an origin is sent
//! here; every other request goes through wasmtime's default sender.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::domain::grant::{Origin, OriginTls};

/// The TLS client settings for one origin, or what is wrong with the
/// grant's entry, naming the field.
pub fn client_config(
    tls: &OriginTls,
    secrets: &BTreeMap<String, String>,
) -> Result<rustls::ClientConfig, String> {
    let identity = match (&tls.client_cert_secret, &tls.client_key_secret) {
        (Some(cert_name), Some(key_name)) => {
            let secret = |name: &String| {
                secrets
                    .get(name)
                    .ok_or_else(|| format!("the grant has no secret named `{name}`"))
            };
            Some(ClientIdentity {
                cert_pem: secret(cert_name)?,
                key_pem: secret(key_name)?,
                cert_field: format!("client_cert_secret `{cert_name}`"),
                key_field: format!("client_key_secret `{key_name}`"),
                pair: "client_cert_secret and client_key_secret",
            })
        }
        _ => None,
    };
    settings(tls.ca_pem.as_deref(), "ca_pem", identity)
}

/// A client certificate chain and its private key, in PEM, with the names
/// errors call them by.
pub struct ClientIdentity<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
    pub cert_field: String,
    pub key_field: String,
    /// Both, as an error names them when they do not go together.
    pub pair: &'a str,
}

/// TLS client settings that trust `ca_pem` (the public roots when `None`)
/// and present `identity`, if any; an error names the field at fault
/// (`ca_field` for the CA). Verification is never switched off.
pub fn settings(
    ca_pem: Option<&str>,
    ca_field: &str,
    identity: Option<ClientIdentity<'_>>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs = certificates(pem).map_err(|e| format!("{ca_field}: {e}"))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("{ca_field}: a certificate cannot be trusted: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots);
    let Some(id) = identity else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = certificates(id.cert_pem).map_err(|e| format!("{}: {e}", id.cert_field))?;
    let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
        .map_err(|e| format!("{}: not a PEM private key ({e})", id.key_field))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "{} do not go together: the key is not the certificate's",
                id.pair
            ),
            // webpki reads only X.509 v3; `openssl x509 -req` without
            // extensions still writes v1.
            e if format!("{e:?}").contains("UnsupportedCertVersion") => format!(
                "{}: an X.509 v1 certificate, which is not supported: issue a v3 one \
                 (with extensions, such as extendedKeyUsage = clientAuth)",
                id.cert_field
            ),
            e => format!("{}: the certificate cannot be used: {e}", id.cert_field),
        })
}

/// Every certificate in a PEM text; at least one.
fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".to_string());
    }
    Ok(certs)
}

/// Why a request to a private origin failed before any answer, in words
/// that name the origin and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub origin: String,
    pub problem: String,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTPS to {} failed: {}", self.origin, self.problem)
    }
}

/// What sending a request to a private origin gives: the answer and the
/// connection's own work, as the `wasi:http` hooks return them.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// Sends one request to a private origin with its own TLS settings. The
/// connection is driven by a task of its own until the body is read.
pub async fn send(
    mut request: http::Request<WasiBody>,
    origin: &Origin,
    config: Arc<rustls::ClientConfig>,
    options: &RequestOptions,
) -> Result<Sent, (Error, Option<TlsFailure>)> {
    let failure = |problem: String| {
        Some(TlsFailure {
            origin: origin.to_string(),
            problem,
        })
    };
    let connect = options.connect_timeout.unwrap_or(Duration::from_secs(10));
    let first_byte = options
        .first_byte_timeout
        .unwrap_or(Duration::from_secs(60));
    let address = (origin.host.as_str(), origin.port);
    let stream = match tokio::time::timeout(connect, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err((Error::Connect(e), None)),
        Err(_) => return Err((Error::ConnectionTimeout, None)),
    };
    let name = server_name(&origin.host).map_err(|e| (Error::HttpRequestUriInvalid, failure(e)))?;
    let tls = tokio_rustls::TlsConnector::from(config);
    let stream = match tokio::time::timeout(connect, tls.connect(name, stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let problem = explain(&e);
            return Err((Error::Tls(e), failure(problem)));
        }
        Err(_) => return Err((Error::ConnectionTimeout, None)),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| (Error::from(e), None))?;
    let driver = tokio::spawn(connection);
    // The origin-form target: the scheme and authority are for proxies.
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| (Error::HttpRequestUriInvalid, None))?;
    *request.uri_mut() = target;
    let response = match tokio::time::timeout(first_byte, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        // With TLS 1.3 the server judges the client's certificate after the
        // client's side of the handshake is done: its refusal arrives as
        // the request is sent.
        Ok(Err(e)) => {
            let failure = tls_cause(&e).and_then(failure);
            return Err((Error::from(e), failure));
        }
        Err(_) => return Err((Error::ConnectionReadTimeout, None)),
    };
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io = async move {
        match driver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::from(e)),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    };
    Ok((response, Box::new(io)))
}

/// The name the server's certificate must carry: an IP address or a DNS name.
fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(host.to_string()).map_err(|e| format!("`{host}` is no DNS name: {e}"))
}

/// The TLS failure somewhere in an error's causes, explained.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = cause {
        if let Some(tls) = rustls_error(e) {
            return Some(describe(tls, e));
        }
        cause = e.source();
    }
    None
}

/// The rustls error an error is or wraps (an I/O error carrying one).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    e.downcast_ref::<std::io::Error>()?
        .get_ref()?
        .downcast_ref::<rustls::Error>()
}

/// A TLS handshake's failure in words an operator can act on.
fn explain(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => describe(tls, e),
        None => format!("the TLS handshake failed: {e}"),
    }
}

fn describe(tls: &rustls::Error, whole: &dyn std::fmt::Display) -> String {
    match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by the CA the grant trusts for this origin (ca_pem)".to_string()
        }
        rustls::Error::InvalidCertificate(cert) => {
            format!("the server's certificate is not valid for this origin: {cert:?}")
        }
        rustls::Error::AlertReceived(alert) => format!(
            "the server refused the handshake ({alert:?}); it may want a client certificate the grant does not give (client_cert_secret, client_key_secret)"
        ),
        other => format!("the TLS handshake failed: {other} ({whole})"),
    }
}
