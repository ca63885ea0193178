//! The Kubernetes test bed in `testbed/k8s/`, driven from Rust: a real
//! kube-apiserver on a real etcd, the real controller manager and
//! scheduler, and simulated nodes, started on loopback by `start.sh`, and
//! kubectl to look at them. The demo (`greenlight demo --kubernetes`), the
//! benchmarks and the end-to-end tests use it; it is for loopback only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use std::io::BufRead as _;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// How long a cluster may take to become usable on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// The directory `testbed/k8s/setup.sh` built the binaries into:
/// `$GREENLIGHT_K8S_CACHE`, else `/var/cache/greenlight-k8s`.
pub fn cache() -> PathBuf {
    std::env::var_os("GREENLIGHT_K8S_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/greenlight-k8s"))
}

/// What a cluster starts with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The Gateway API HTTPRoute CRD installed.
    pub gateway_api: bool,
}

/// A running cluster; dropping it stops every component.
pub struct Cluster {
    child: std::process::Child,
    /// The API server's origin, `https://127.0.0.1:PORT`.
    pub server: String,
    /// A cluster admin's bearer token.
    pub token: String,
    /// The cluster CA's certificate, PEM.
    pub ca_pem: String,
    /// A kubeconfig for the cluster admin (context `greenlight-testbed`).
    pub kubeconfig: PathBuf,
    /// The cluster's CA certificate and key, `ca.crt` and `ca.key`.
    pub pki: PathBuf,
    scratch: tempfile::TempDir,
}

impl Cluster {
    /// Starts a cluster with `testbed`'s `start.sh` (the `testbed/k8s`
    /// directory of a checkout), on the binaries in [`cache`]. The cluster
    /// stops itself if this process goes away without stopping it.
    pub async fn start(testbed: &Path, options: Options) -> anyhow::Result<Cluster> {
        let cache = cache();
        if !cache.join("bin/kube-apiserver").exists() {
            bail!(
                "the Kubernetes test bed is not built in {}: run `./dev setup test` \
                 (or testbed/k8s/setup.sh), or point GREENLIGHT_K8S_CACHE at a built one",
                cache.display()
            );
        }
        let script = testbed.join("start.sh");
        if !script.exists() {
            bail!(
                "{} does not exist: name the testbed/k8s directory of a Greenlight checkout",
                script.display()
            );
        }
        let scratch = tempfile::tempdir()?;
        let log = scratch.path().join("start.err");
        let mut command = std::process::Command::new("bash");
        command
            .arg(&script)
            .arg(&cache)
            .arg(scratch.path().join("cluster"))
            .env("GREENLIGHT_K8S_PARENT_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        if options.gateway_api {
            command.env("GREENLIGHT_K8S_GATEWAY_API", "1");
        }
        let mut child = command.spawn().context("starting testbed/k8s/start.sh")?;
        let stdout = child.stdout.take().context("start.sh has no stdout")?;
        // start.sh prints its variables, then K8S_READY, then nothing until
        // it stops; a thread reads them, and the wait for it is bounded.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut vars = Vec::new();
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "K8S_READY" {
                    let _ = tx.send(vars);
                    return;
                }
                if let Some((key, value)) = line.split_once('=') {
                    vars.push((key.to_string(), value.to_string()));
                }
            }
        });
        let vars = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(vars)) => vars,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("the test cluster did not become ready:\n{said}");
            }
        };
        let var = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| anyhow!("start.sh printed no {name}"))
        };
        let ca = PathBuf::from(var("K8S_CA")?);
        Ok(Cluster {
            ca_pem: std::fs::read_to_string(&ca)?,
            pki: ca.parent().map(Path::to_path_buf).unwrap_or_default(),
            child,
            server: var("K8S_SERVER")?,
            token: var("K8S_TOKEN")?,
            kubeconfig: PathBuf::from(var("KUBECONFIG")?),
            scratch,
        })
    }

    /// Starts `n` clusters at once.
    pub async fn start_many(
        testbed: &Path,
        n: usize,
        options: Options,
    ) -> anyhow::Result<Vec<Cluster>> {
        let mut starting = tokio::task::JoinSet::new();
        for _ in 0..n {
            let testbed = testbed.to_path_buf();
            starting.spawn(async move { Cluster::start(&testbed, options).await });
        }
        let mut clusters = Vec::with_capacity(n);
        while let Some(started) = starting.join_next().await {
            clusters.push(started??);
        }
        Ok(clusters)
    }

    /// Runs kubectl against this cluster, with `stdin`; fails with its
    /// output when it does.
    pub async fn kubectl_with_input(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = Command::new(cache().join("bin/kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl")?;
        let mut input = child.stdin.take().context("kubectl has no stdin")?;
        input.write_all(stdin.as_bytes()).await?;
        drop(input);
        let out = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "kubectl {}: {}{stdout}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Runs kubectl against this cluster.
    pub async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.kubectl_with_input(args, "").await
    }

    /// Applies manifests (YAML or JSON).
    pub async fn apply(&self, manifests: &str) -> anyhow::Result<()> {
        self.kubectl_with_input(&["apply", "-f", "-"], manifests)
            .await
            .map(drop)
    }

    /// An object as JSON, such as `("deployment", "shop")`.
    pub async fn get(&self, kind: &str, name: &str) -> anyhow::Result<Value> {
        let text = self.kubectl(&["get", kind, name, "-o", "json"]).await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Waits, kubectl watching the API, until a workload's rollout is
    /// complete (`deployment/shop`).
    pub async fn rollout_done(&self, workload: &str) -> anyhow::Result<()> {
        self.kubectl(&["rollout", "status", workload, "--timeout=180s"])
            .await
            .map(drop)
    }

    /// Where the cluster's logs and data are.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }
}

impl Drop for Cluster {
    /// Stops the cluster as `start.sh` asks, with SIGTERM, which stops every
    /// component newest first, and waits for it.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let _ = self.child.wait();
    }
}
