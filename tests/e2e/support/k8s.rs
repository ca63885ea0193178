//! The Kubernetes test bed (`testbed/k8s/`): a real kube-apiserver on a
//! real etcd, the real controller manager and scheduler, and simulated
//! nodes, started per test on loopback, and kubectl to look at it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long a cluster may take to become usable on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// The directory `testbed/k8s/setup.sh` built the binaries into.
pub fn cache() -> PathBuf {
    std::env::var_os("GREENLIGHT_K8S_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/greenlight-k8s"))
}

fn testbed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/k8s")
}

/// What a cluster should start with.
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// The Gateway API HTTPRoute CRD installed.
    pub gateway_api: bool,
}

/// A running cluster; dropping it stops every component.
pub struct Cluster {
    child: Child,
    /// The API server's origin, `https://127.0.0.1:PORT`.
    pub server: String,
    /// A cluster admin's bearer token.
    pub token: String,
    /// The cluster CA's certificate, PEM.
    pub ca_pem: String,
    pub kubeconfig: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Cluster {
        let cache = cache();
        assert!(
            cache.join("bin/kube-apiserver").exists(),
            "the Kubernetes test bed is not built in {}: run `./dev setup test` \
             (or testbed/k8s/setup.sh), or point GREENLIGHT_K8S_CACHE at a built one",
            cache.display()
        );
        let scratch = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(scratch.path().join("start.err")).unwrap();
        let mut command = Command::new("bash");
        command
            .arg(testbed().join("start.sh"))
            .arg(&cache)
            .arg(scratch.path().join("cluster"))
            .env("GREENLIGHT_K8S_PARENT_PID", std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if options.gateway_api {
            command.env("GREENLIGHT_K8S_GATEWAY_API", "1");
        }
        let mut child = command.spawn().expect("starting testbed/k8s/start.sh");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut vars = Vec::new();
            for line in BufReader::new(stdout).lines() {
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
        let vars = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT))
            .await
            .unwrap();
        let Ok(vars) = vars else {
            let _ = child.kill();
            let log = std::fs::read_to_string(scratch.path().join("start.err")).unwrap_or_default();
            panic!("the test cluster did not become ready:\n{log}");
        };
        let var = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("start.sh printed no {name}"))
        };
        let ca_pem = std::fs::read_to_string(var("K8S_CA")).unwrap();
        Cluster {
            child,
            server: var("K8S_SERVER"),
            token: var("K8S_TOKEN"),
            ca_pem,
            kubeconfig: PathBuf::from(var("KUBECONFIG")),
            _scratch: scratch,
        }
    }

    /// Starts several clusters at once.
    pub async fn start_many(n: usize, options: Options) -> Vec<Cluster> {
        futures::future::join_all((0..n).map(|_| Cluster::start_with(options))).await
    }

    /// Runs kubectl against this cluster with `stdin`; panics with its
    /// output when it fails.
    pub fn kubectl_with_input(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new(cache().join("bin/kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_with_input(args, "")
    }

    /// Applies manifests (YAML or JSON).
    pub fn apply(&self, manifests: &str) {
        self.kubectl_with_input(&["apply", "-f", "-"], manifests);
    }

    /// An object as JSON, such as `("deployment", "shop")`.
    pub fn get(&self, kind: &str, name: &str) -> Value {
        serde_json::from_str(&self.kubectl(&["get", kind, name, "-o", "json"])).unwrap()
    }

    /// Waits (kubectl watching the API) until a workload's rollout is
    /// complete.
    pub async fn rollout_done(&self, workload: &str) {
        let kubeconfig = self.kubeconfig.clone();
        let workload = workload.to_string();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(cache().join("bin/kubectl"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["rollout", "status", &workload, "--timeout=180s"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "rollout of {} did not complete: {}{}",
            self.server,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Cluster {
    /// A client certificate and key (PEM) the cluster's CA signed, for user
    /// `user` in group `group` (`system:masters` is a cluster admin): X.509
    /// v3 with `extendedKeyUsage = clientAuth`, or with `v1` the bare v1
    /// certificate `openssl x509 -req` writes without extensions.
    pub fn client_certificate(&self, user: &str, group: &str, v1: bool) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"set -e
openssl req -newkey rsa:2048 -nodes -subj "$SUBJECT" -keyout "$OUT/client.key" -out "$OUT/client.csr"
if [ "$V1" = 1 ]; then : > "$OUT/ext"; else echo 'extendedKeyUsage = clientAuth' > "$OUT/ext"; fi
openssl x509 -req -in "$OUT/client.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAserial "$OUT/ca.srl" -CAcreateserial -days 1 -extfile "$OUT/ext" -out "$OUT/client.pem""#;
        let out = Command::new("sh")
            .args(["-c", script])
            .env("SUBJECT", format!("/CN={user}/O={group}"))
            .env("OUT", dir.path())
            .env("V1", if v1 { "1" } else { "0" })
            .env("PKI", self._scratch.path().join("cluster/pki"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "issuing a client certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        (read("client.pem"), read("client.key"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}
