//! A kubeconfig file, as `kubectl` reads it: which server a context names,
//! the certificate authority to trust for it, and how its user signs in (a
//! bearer token or a client certificate). Paths in the file are relative
//! to the file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority")]
    certificate_authority: Option<PathBuf>,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Debug, Default, Deserialize)]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    #[serde(rename = "client-certificate")]
    client_certificate: Option<PathBuf>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<PathBuf>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Debug, Deserialize)]
struct ContextEntry {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// Everything needed to call one context's API server.
#[derive(Debug, Clone)]
pub struct Access {
    pub context: String,
    /// The API server's URL as the file gives it (`https://10.0.0.1:6443`).
    pub server: String,
    /// The PEM certificates to trust; the public roots when `None`.
    pub ca_pem: Option<String>,
    pub token: Option<String>,
    /// A client certificate chain and key, in PEM.
    pub client_cert: Option<(String, String)>,
    /// The context's default namespace.
    pub namespace: Option<String>,
}

/// Reads `path` and the access of `context` (the file's current context
/// when `None`).
pub fn access(path: &Path, context: Option<&str>) -> anyhow::Result<Access> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
    let file: File = serde_norway::from_str(&text)
        .with_context(|| format!("{} is not a kubeconfig", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    resolve(&file, base, context).with_context(|| format!("kubeconfig {}", path.display()))
}

fn resolve(file: &File, base: &Path, context: Option<&str>) -> anyhow::Result<Access> {
    let name = match context.or(file.current_context.as_deref()) {
        Some(name) => name,
        None => bail!("it names no current-context; choose one with --context"),
    };
    let entry = file
        .contexts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow!("it has no context `{name}`"))?;
    let cluster = file
        .clusters
        .iter()
        .find(|c| c.name == entry.context.cluster)
        .ok_or_else(|| {
            anyhow!(
                "context `{name}` names cluster `{}`, which it does not define",
                entry.context.cluster
            )
        })?;
    let user = match &entry.context.user {
        Some(u) => {
            &file
                .users
                .iter()
                .find(|n| n.name == *u)
                .ok_or_else(|| {
                    anyhow!("context `{name}` names user `{u}`, which it does not define")
                })?
                .user
        }
        None => &User::default(),
    };
    let read = |inline: &Option<String>, at: &Option<PathBuf>, what: &str| {
        pem_or_path(inline, at, base)
            .with_context(|| format!("user or cluster of context `{name}`: {what}"))
    };
    let ca_pem = read(
        &cluster.cluster.certificate_authority_data,
        &cluster.cluster.certificate_authority,
        "certificate-authority",
    )?;
    let cert = read(
        &user.client_certificate_data,
        &user.client_certificate,
        "client-certificate",
    )?;
    let key = read(&user.client_key_data, &user.client_key, "client-key")?;
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => bail!(
            "user of context `{name}` has a client certificate without its key, or a key without its certificate"
        ),
    };
    let token = match (&user.token, &user.token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(p)) => Some(
            std::fs::read_to_string(base.join(p))
                .with_context(|| format!("tokenFile {}", p.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok(Access {
        context: name.to_string(),
        server: cluster.cluster.server.trim_end_matches('/').to_string(),
        ca_pem,
        token,
        client_cert,
        namespace: entry.context.namespace.clone(),
    })
}

/// Base64 data given inline, else the file at a path relative to the
/// kubeconfig.
fn pem_or_path(
    inline: &Option<String>,
    at: &Option<PathBuf>,
    base: &Path,
) -> anyhow::Result<Option<String>> {
    if let Some(data) = inline {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("the -data field is not base64")?;
        return Ok(Some(
            String::from_utf8(bytes).context("the -data field is not PEM text")?,
        ));
    }
    match at {
        Some(p) => Ok(Some(
            std::fs::read_to_string(base.join(p))
                .with_context(|| format!("cannot read {}", p.display()))?,
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
apiVersion: v1
kind: Config
current-context: east
clusters:
- name: east
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
- name: west
  cluster:
    server: https://10.0.0.2:6443
users:
- name: admin
  user:
    token: abc
- name: half
  user:
    client-key-data: LS0tLS0K
contexts:
- name: east
  context: {cluster: east, user: admin, namespace: shop}
- name: west
  context: {cluster: west, user: half}
- name: lost
  context: {cluster: north, user: admin}
"#;

    fn file() -> File {
        serde_norway::from_str(FILE).unwrap()
    }

    #[test]
    fn the_current_context_gives_its_server_ca_token_and_namespace() {
        let a = resolve(&file(), Path::new("."), None).unwrap();
        assert_eq!(a.context, "east");
        assert_eq!(a.server, "https://127.0.0.1:6443");
        assert_eq!(a.ca_pem.as_deref(), Some("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(a.token.as_deref(), Some("abc"));
        assert!(a.client_cert.is_none());
        assert_eq!(a.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn broken_contexts_say_what_is_missing() {
        let err = |ctx: &str| {
            format!(
                "{:#}",
                resolve(&file(), Path::new("."), Some(ctx)).unwrap_err()
            )
        };
        assert!(
            err("west").contains("without its certificate"),
            "{}",
            err("west")
        );
        assert!(err("lost").contains("cluster `north`"), "{}", err("lost"));
        assert!(
            err("south").contains("no context `south`"),
            "{}",
            err("south")
        );
    }
}
