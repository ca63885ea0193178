//! HTTPS to private origins: a grant names, per origin, the CA to trust and
//! the secrets holding a client certificate, and a plugin then reaches a
//! server signed by its own CA that wants a client certificate. A wrong CA
//! or a missing certificate fails the call with an error naming the origin
//! and what was wrong; verification is never switched off.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::Daemon;

/// Runs openssl in `dir`, failing the test with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (install it with `./dev setup test`)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`, `NAME-ca.key`) and a certificate it signs
/// (`NAME.pem`, `NAME.key`) for 127.0.0.1, usable by a server or a client.
fn issue(dir: &Path, name: &str) {
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// A loopback HTTPS server answering `ok` to every request, with the
/// `server` certificate; it wants a client certificate signed by the
/// `client` CA when `clients` is set.
async fn serve(dir: &Path, clients: bool) -> String {
    let chain = vec![CertificateDer::from_pem_slice(read(dir, "server.pem").as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(read(dir, "server.key").as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if clients {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(read(dir, "client-ca.pem").as_bytes()).unwrap())
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    origin
}

/// Invokes the fixture check's `http-get` mode against `origin`.
async fn get(d: &Daemon, origin: &str) -> Value {
    d.invoke(
        "probe",
        json!({"context": {"parameters": {"mode": "http-get", "url": format!("{origin}/")}}}),
    )
    .await
}

async fn grant(d: &Daemon, grant: Value) -> (u16, Value) {
    d.send(
        d.request(reqwest::Method::PUT, "/api/v1/plugins/probe/grant")
            .json(&grant),
    )
    .await
}

#[tokio::test]
async fn a_plugin_reaches_a_private_origin_with_its_ca_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["server", "client", "other"] {
        issue(dir.path(), name);
    }
    let origin = serve(dir.path(), true).await;
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    let client_secrets = json!({
        "cluster_cert": read(dir.path(), "client.pem"),
        "cluster_key": read(dir.path(), "client.key"),
    });

    // The CA and the client certificate: the request gets through.
    let with_client_certificate = |ca: &str| {
        json!({
            "allowed_hosts": [origin],
            "secrets": client_secrets,
            "tls": [{"origin": origin, "ca_pem": read(dir.path(), ca),
                     "client_cert_secret": "cluster_cert", "client_key_secret": "cluster_key"}]
        })
    };
    let (status, body) = grant(&d, with_client_certificate("server-ca.pem")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tls"][0]["client_key_secret"], "cluster_key", "{body}");
    let answer = get(&d, &origin).await;
    assert_eq!(answer["status"], "ok", "{answer:#}");
    assert_eq!(answer["output"]["verdict"]["summary"], "ok", "{answer:#}");

    // A CA that did not sign the server's certificate.
    let (status, body) = grant(&d, with_client_certificate("other-ca.pem")).await;
    assert_eq!(status, 200, "{body}");
    let answer = get(&d, &origin).await;
    assert_eq!(answer["error"]["code"], "tls_failed", "{answer:#}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(&origin), "{message}");
    assert!(message.contains("not signed by the CA"), "{message}");

    // The right CA, but no client certificate.
    let (status, body) = grant(
        &d,
        json!({
            "allowed_hosts": [origin],
            "tls": [{"origin": origin, "ca_pem": read(dir.path(), "server-ca.pem")}]
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer = get(&d, &origin).await;
    assert_eq!(answer["error"]["code"], "tls_failed", "{answer:#}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(&origin), "{message}");
    assert!(message.contains("client certificate"), "{message}");

    // No TLS settings: the public roots, which do not know this CA.
    let (status, _) = grant(&d, json!({"allowed_hosts": [origin]})).await;
    assert_eq!(status, 200);
    let answer = get(&d, &origin).await;
    assert_eq!(answer["output"]["verdict"]["status"], "error", "{answer:#}");
}

#[tokio::test]
async fn a_grant_with_unusable_tls_settings_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    issue(dir.path(), "client");
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    let origin = "https://127.0.0.1:6443";
    let cases = [
        (
            json!({"tls": [{"origin": origin, "ca_pem": read(dir.path(), "client-ca.pem")}]}),
            "tls[0].origin",
        ),
        (
            json!({"allowed_hosts": ["http://127.0.0.1:6443"],
                   "tls": [{"origin": "http://127.0.0.1:6443", "ca_pem": "x"}]}),
            "is not an https origin",
        ),
        (
            json!({"allowed_hosts": [origin], "tls": [{"origin": origin, "ca_pem": "not a pem"}]}),
            "ca_pem",
        ),
        (
            json!({"allowed_hosts": [origin],
                   "tls": [{"origin": origin, "client_cert_secret": "c", "client_key_secret": "k"}]}),
            "no secret named `c`",
        ),
        (
            json!({"allowed_hosts": [origin],
                   "secrets": {"c": read(dir.path(), "client.pem"), "k": read(dir.path(), "client-ca.key")},
                   "tls": [{"origin": origin, "client_cert_secret": "c", "client_key_secret": "k"}]}),
            "do not go together",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = grant(&d, body.clone()).await;
        assert!((400..500).contains(&status), "{body}: {status} {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[tokio::test]
async fn the_cli_grants_a_ca_and_a_client_certificate_per_origin() {
    let dir = tempfile::tempdir().unwrap();
    issue(dir.path(), "client");
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    let origin = "https://127.0.0.1:6443";
    let ca = dir.path().join("client-ca.pem");
    let cert = format!("cert={}", read(dir.path(), "client.pem"));
    let key = format!("key={}", read(dir.path(), "client.key"));
    let (ok, out, err) = crate::support::cli(
        &d,
        &[
            "plugin",
            "grant",
            "probe",
            "--allow-host",
            origin,
            "--secret",
            &cert,
            "--secret",
            &key,
            "--tls-ca",
            &format!("{origin}={}", ca.display()),
            "--tls-client-cert",
            &format!("{origin}=cert:key"),
        ],
    );
    assert!(ok, "{out}{err}");
    let (_, plugin) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins/probe"))
        .await;
    let tls = &plugin["grant"]["tls"];
    assert_eq!(tls.as_array().map(Vec::len), Some(1), "{plugin:#}");
    assert_eq!(tls[0]["origin"], origin, "{plugin:#}");
    assert_eq!(tls[0]["ca_pem"], read(dir.path(), "client-ca.pem"));
    assert_eq!(tls[0]["client_cert_secret"], "cert");
    assert_eq!(tls[0]["client_key_secret"], "key");

    // A pair without the colon is refused before anything is sent.
    let (ok, _, err) = crate::support::cli(
        &d,
        &[
            "plugin",
            "grant",
            "probe",
            "--tls-client-cert",
            &format!("{origin}=cert"),
        ],
    );
    assert!(!ok);
    assert!(err.contains("ORIGIN=CERT_SECRET:KEY_SECRET"), "{err}");
}
