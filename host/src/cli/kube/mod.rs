//! `greenlight inventory import`: an environment's targets read from
//! Kubernetes. Every Deployment, StatefulSet and DaemonSet matching a label
//! selector in a namespace, in each context of a kubeconfig, becomes a
//! target whose attributes say how the Kubernetes plugins reach it.

pub mod config;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;

use crate::api::model::TargetDto;
use crate::domain::name::{check_name, check_text};
use crate::plugins::tls;
use config::Access;

/// The kinds of workload read, with the path segment of their list.
pub const KINDS: [(&str, &str); 3] = [
    ("Deployment", "deployments"),
    ("StatefulSet", "statefulsets"),
    ("DaemonSet", "daemonsets"),
];

/// How long one request to an API server may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What to read and how to describe it.
#[derive(Debug, Clone)]
pub struct Selection {
    pub namespace: String,
    pub selector: String,
    /// Kinds as Kubernetes spells them (`Deployment`).
    pub kinds: Vec<String>,
    /// The workload label whose value is a target's group.
    pub group_label: String,
    pub containers: Option<String>,
    pub token_secrets: TokenSecrets,
}

/// The grant secrets holding each cluster's token, as the targets name
/// them: one for every context, or one per context.
#[derive(Debug, Clone, Default)]
pub struct TokenSecrets {
    every: Option<String>,
    by_context: BTreeMap<String, String>,
}

impl TokenSecrets {
    /// Reads `--token-secret` values, `SECRET` or `CONTEXT=SECRET`; a
    /// context must be one of those read, and a secret's name a name.
    pub fn parse(values: &[String], accesses: &[Access]) -> anyhow::Result<TokenSecrets> {
        let mut secrets = TokenSecrets::default();
        for value in values {
            let (context, secret) = match value.split_once('=') {
                Some((c, s)) => (Some(c), s),
                None => (None, value.as_str()),
            };
            check_name("--token-secret", secret)
                .map_err(|e| anyhow!("--token-secret `{value}`: {}", e.problem))?;
            match context {
                None if secrets.every.is_some() => {
                    bail!("--token-secret `{value}`: a secret for every context is given twice")
                }
                None => secrets.every = Some(secret.to_string()),
                Some(c) if !accesses.iter().any(|a| a.context == c) => bail!(
                    "--token-secret `{value}`: context `{c}` is not one of those read ({})",
                    accesses
                        .iter()
                        .map(|a| a.context.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(c) => {
                    secrets.by_context.insert(c.to_string(), secret.to_string());
                }
            }
        }
        Ok(secrets)
    }

    /// The secret a context's targets name, if any.
    fn of(&self, context: &str) -> Option<&String> {
        self.by_context.get(context).or(self.every.as_ref())
    }
}

/// The TLS settings for one API server: its CA (or the public roots) and
/// the user's client certificate, if any, checked as a grant's are.
fn tls_config(access: &Access) -> anyhow::Result<rustls::ClientConfig> {
    let identity = access
        .client_cert
        .as_ref()
        .map(|(cert, key)| tls::ClientIdentity {
            cert_pem: cert,
            key_pem: key,
            cert_field: "client-certificate".to_string(),
            key_field: "client-key".to_string(),
            pair: "client-certificate and client-key",
        });
    tls::settings(access.ca_pem.as_deref(), "certificate-authority", identity)
        .map_err(|e| anyhow!(e))
}

/// GETs `path` from the context's API server and reads the JSON answer.
async fn get_json(access: &Access, path: &str) -> anyhow::Result<Value> {
    let uri: hyper::Uri = access
        .server
        .parse()
        .with_context(|| format!("server `{}` is not a URL", access.server))?;
    if uri.scheme_str() != Some("https") {
        bail!(
            "server `{}`: only https API servers are read",
            access.server
        );
    }
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let name = ServerName::try_from(host.clone())
        .with_context(|| format!("server `{}`: no host name", access.server))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(access)?));
    let work = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        let tls = connector.connect(name, tcp).await.map_err(|e| {
            anyhow!(
                "TLS with {}: {e} (is the certificate-authority the cluster's?)",
                access.server
            )
        })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        let mut request = hyper::Request::get(path)
            .header("host", format!("{host}:{port}"))
            .header("accept", "application/json");
        if let Some(token) = &access.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new())?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    let (status, body) = tokio::time::timeout(TIMEOUT, work).await.map_err(|_| {
        anyhow!(
            "{} did not answer within {}s",
            access.server,
            TIMEOUT.as_secs()
        )
    })??;
    if !status.is_success() {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        bail!(
            "{} answered {status} to GET {path}: {message}",
            access.server
        );
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("{} answered GET {path} with no JSON", access.server))
}

/// Reads every matching workload of every context, canaries first; with
/// several contexts, target ids name their context.
pub async fn read_targets(
    accesses: &[Access],
    selection: &Selection,
) -> anyhow::Result<Vec<TargetDto>> {
    let mut targets = Vec::new();
    for access in accesses {
        for kind in &selection.kinds {
            let Some((_, plural)) = KINDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(kind)) else {
                bail!("--kind `{kind}` is none of Deployment, StatefulSet, DaemonSet");
            };
            let path = format!(
                "/apis/apps/v1/namespaces/{}/{plural}?labelSelector={}",
                selection.namespace,
                encode(&selection.selector)
            );
            let list = get_json(access, &path)
                .await
                .with_context(|| format!("context `{}`", access.context))?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let canonical = KINDS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(kind))
                .map_or(kind.as_str(), |(k, _)| *k);
            for item in &items {
                let t = target(item, canonical, access, selection, accesses.len() > 1)?;
                targets.push((item["metadata"]["labels"][CANARY_LABEL] == "true", t));
            }
        }
    }
    // A canary stage takes the environment's first targets: the workloads
    // labelled as canaries come first, each part in the order read.
    targets.sort_by_key(|(canary, _)| !canary);
    Ok(targets.into_iter().map(|(_, t)| t).collect())
}

/// The workload label that puts a workload first in the environment, where
/// a canary stage takes its targets: `greenlight.dev/canary: "true"`.
pub const CANARY_LABEL: &str = "greenlight.dev/canary";

/// One workload as a target: its id is its name (with the context's when
/// several clusters are read), its group the value of the group label, its
/// labels those of its labels that are names, and its attributes how to
/// reach it.
pub fn target(
    workload: &Value,
    kind: &str,
    access: &Access,
    selection: &Selection,
    several: bool,
) -> anyhow::Result<TargetDto> {
    let meta = &workload["metadata"];
    let name = meta["name"]
        .as_str()
        .ok_or_else(|| anyhow!("a workload has no name"))?;
    let id = if several {
        format!("{name}.{}", access.context)
    } else {
        name.to_string()
    };
    let id = id.to_ascii_lowercase();
    check_name("id", &id)
        .map_err(|e| anyhow!("workload {name} gives target id {id}: {}", e.problem))?;
    let labels: BTreeMap<String, String> = meta["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .filter(|(k, v)| check_name("", k).is_ok() && check_text("", v, 255).is_ok())
                .collect()
        })
        .unwrap_or_default();
    let group = meta["labels"][&selection.group_label]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut attributes = BTreeMap::from([
        ("cluster".to_string(), origin(&access.server)),
        ("namespace".to_string(), selection.namespace.clone()),
        ("name".to_string(), name.to_string()),
        // A list's items leave out their kind: the list's path says it.
        ("kind".to_string(), kind.to_string()),
    ]);
    if let Some(c) = &selection.containers {
        attributes.insert("containers".to_string(), c.clone());
    }
    if let Some(s) = selection.token_secrets.of(&access.context) {
        attributes.insert("token_secret".to_string(), s.clone());
    }
    Ok(TargetDto {
        id,
        address: format!("{name}.{}", selection.namespace),
        group,
        labels,
        attributes,
    })
}

/// The scheme, host and port of a URL: what a grant allows.
fn origin(server: &str) -> String {
    let Ok(uri) = server.parse::<hyper::Uri>() else {
        return server.to_string();
    };
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}:443"),
    }
}

/// A label selector as a query value: everything but unreserved characters
/// percent-encoded.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn access() -> Access {
        Access {
            context: "east".into(),
            server: "https://127.0.0.1:6443".into(),
            ca_pem: None,
            token: None,
            client_cert: None,
            namespace: None,
        }
    }

    fn selection() -> Selection {
        Selection {
            namespace: "shop".into(),
            selector: "app=shop".into(),
            kinds: vec!["Deployment".into()],
            group_label: "greenlight.dev/group".into(),
            containers: Some("web".into()),
            token_secrets: TokenSecrets::default(),
        }
    }

    #[test]
    fn a_workload_becomes_a_target_with_its_attributes_group_and_name_labels() {
        let workload = json!({
            "metadata": {"name": "Shop-Blue", "labels": {
                "app": "shop", "greenlight.dev/group": "blue", "tier": "web"
            }}
        });
        let t = target(&workload, "Deployment", &access(), &selection(), true).unwrap();
        assert_eq!(t.id, "shop-blue.east");
        assert_eq!(t.group, "blue");
        assert_eq!(t.address, "Shop-Blue.shop");
        assert_eq!(t.labels.keys().collect::<Vec<_>>(), ["app", "tier"]);
        assert_eq!(t.attributes["cluster"], "https://127.0.0.1:6443");
        assert_eq!(t.attributes["kind"], "Deployment");
        assert_eq!(t.attributes["containers"], "web");
        assert!(!t.attributes.contains_key("token_secret"));
    }

    #[test]
    fn token_secrets_are_given_for_every_context_or_one_and_checked() {
        let mut west = access();
        west.context = "west".into();
        let accesses = [access(), west];
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let secrets =
            TokenSecrets::parse(&values(&["shared", "west=west-token"]), &accesses).unwrap();
        assert_eq!(secrets.of("east").unwrap(), "shared");
        assert_eq!(secrets.of("west").unwrap(), "west-token");
        let only_west = TokenSecrets::parse(&values(&["west=west-token"]), &accesses).unwrap();
        assert_eq!(only_west.of("east"), None);

        let e = TokenSecrets::parse(&values(&["north=t"]), &accesses).unwrap_err();
        assert!(
            e.to_string()
                .contains("context `north` is not one of those read (east, west)")
        );
        let e = TokenSecrets::parse(&values(&["a", "b"]), &accesses).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        let e = TokenSecrets::parse(&values(&["east=Not A Name"]), &accesses).unwrap_err();
        assert!(
            e.to_string().contains("--token-secret `east=Not A Name`"),
            "{e}"
        );

        let mut selection = selection();
        selection.token_secrets = secrets;
        let workload = json!({"metadata": {"name": "shop"}});
        let t = target(&workload, "Deployment", &accesses[1], &selection, true).unwrap();
        assert_eq!(t.attributes["token_secret"], "west-token");
    }

    #[test]
    fn selectors_are_encoded_and_origins_carry_their_port() {
        assert_eq!(
            encode("app in (a,b),tier!=db"),
            "app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb"
        );
        assert_eq!(
            origin("https://k8s.example.com"),
            "https://k8s.example.com:443"
        );
        assert_eq!(origin("https://10.0.0.1:6443"), "https://10.0.0.1:6443");
    }
}
