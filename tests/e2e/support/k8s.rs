//! The Kubernetes test bed (`testbed/k8s/`) for tests: clusters started per
//! test on loopback through `greenlight::testbed`, whose failures fail the
//! test with what went wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

use greenlight::testbed;
pub use greenlight::testbed::Options;
use serde_json::Value;

fn testbed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/k8s")
}

/// A running cluster; dropping it stops every component.
pub struct Cluster(testbed::Cluster);

impl std::ops::Deref for Cluster {
    type Target = testbed::Cluster;
    fn deref(&self) -> &testbed::Cluster {
        &self.0
    }
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Cluster {
        Cluster(
            testbed::Cluster::start(&testbed_dir(), options)
                .await
                .unwrap_or_else(|e| panic!("{e:#}")),
        )
    }

    /// Starts several clusters at once.
    pub async fn start_many(n: usize, options: Options) -> Vec<Cluster> {
        testbed::Cluster::start_many(&testbed_dir(), n, options)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
            .into_iter()
            .map(Cluster)
            .collect()
    }

    /// Runs kubectl against this cluster.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        self.0
            .kubectl(args)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Applies manifests (YAML or JSON).
    pub async fn apply(&self, manifests: &str) {
        self.0
            .apply(manifests)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// An object as JSON, such as `("deployment", "shop")`.
    pub async fn get(&self, kind: &str, name: &str) -> Value {
        self.0
            .get(kind, name)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Waits until a workload's rollout is complete.
    pub async fn rollout_done(&self, workload: &str) {
        self.0
            .rollout_done(workload)
            .await
            .unwrap_or_else(|e| panic!("{workload} on {}: {e:#}", self.server))
    }

    /// Watches the pods `selector` matches (kubectl's watch on the API)
    /// until one prints, through `jsonpath`, a line containing `until`;
    /// returns that line. Fails after three minutes.
    pub async fn wait_for_pod(&self, selector: &str, jsonpath: &str, until: &str) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut child =
            tokio::process::Command::new(greenlight::testbed::cache().join("bin/kubectl"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["get", "pods", "-l", selector, "--watch", "-o"])
                .arg(format!("jsonpath={jsonpath}{{\"\\n\"}}"))
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let found = tokio::time::timeout(std::time::Duration::from_secs(180), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains(until) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            other => panic!("no pod of {selector} showed {until}: {other:?}"),
        }
    }

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
            .env("PKI", &self.pki)
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
