//! Releases of real workloads on a real Kubernetes control plane (the test
//! bed in `testbed/k8s/`): the API, the engine, wasmtime and the bundled
//! Kubernetes plugins, talking HTTPS to each cluster's API server with the
//! cluster's own CA and a bearer token, as a team's daemon would.

mod bad_versions;
mod check;
mod crash;
mod grants;
mod import;
mod kinds;
mod rolling;
mod traffic;
mod walkthrough;

use serde_json::{Value, json};

use std::time::Duration;

use crate::support::k8s::Cluster;
use crate::support::releases::{apply_flow, wait_for_within};
use crate::support::{Daemon, fixture};

/// The image template of every flow here; the test bed's simulated nodes
/// pull nothing, and misbehave when the tag says so (`crashloop-…`).
pub const IMAGE: &str = "registry.example/shop:{version}";

/// How long a release of real workloads may take to settle in a test on a
/// busy machine.
const RELEASE_WAIT: Duration = Duration::from_secs(300);

/// Waits until a release stops where a human or nothing more is needed:
/// finished, paused or blocked; returns its state.
pub async fn settled(d: &Daemon, id: &str) -> Value {
    const SETTLED: [&str; 7] = [
        "succeeded",
        "failed",
        "rolled-back",
        "rejected",
        "abandoned",
        "paused",
        "blocked",
    ];
    wait_for_within(d, id, "the release to settle", RELEASE_WAIT, |r| {
        SETTLED.iter().any(|s| r["status"] == *s)
    })
    .await
}

/// Waits for a release to settle, which it must do with `status`.
pub async fn settled_as(d: &Daemon, id: &str, status: &str) -> Value {
    let state = settled(d, id).await;
    assert_eq!(state["status"], status, "{state:#}");
    state
}

/// The bundled Kubernetes plugins, by the names flows use.
const PLUGINS: [(&str, &str); 3] = [
    ("kubernetes-deployer", "kubernetes_deployer"),
    ("kubernetes-check", "kubernetes_check"),
    ("kubernetes-traffic", "kubernetes_traffic"),
];

/// The secret holding cluster `i`'s token in every grant.
pub fn token_secret(i: usize) -> String {
    format!("cluster-{i}-token")
}

/// The grant a Kubernetes plugin needs for these clusters: each origin, its
/// CA, and its token as a secret.
pub fn grant(clusters: &[&Cluster]) -> Value {
    let secrets: serde_json::Map<String, Value> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (token_secret(i), json!(c.token)))
        .collect();
    json!({
        "allowed_hosts": clusters.iter().map(|c| c.server.clone()).collect::<Vec<_>>(),
        "tls": clusters.iter().map(|c| json!({"origin": c.server, "ca_pem": c.ca_pem})).collect::<Vec<_>>(),
        "secrets": secrets,
        "limits": {"deadline_ms": 20_000, "max_outbound_requests": 256}
    })
}

/// A daemon on the real clock with the Kubernetes plugins uploaded and
/// granted `clusters`, and `flow` applied.
pub async fn daemon(clusters: &[&Cluster], flow: &str) -> Daemon {
    let d = Daemon::start().await;
    for (name, crate_name) in PLUGINS {
        let (status, body) = d.upload(name, "1.0.0", fixture(crate_name)).await;
        assert_eq!(status, 201, "{body}");
        d.grant(name, grant(clusters)).await;
    }
    apply_flow(&d, flow).await;
    d
}

/// A target naming a Deployment of cluster `i`.
pub fn target(id: &str, clusters: &[&Cluster], i: usize, name: &str) -> Value {
    json!({
        "id": id,
        "address": clusters[i].server.trim_start_matches("https://"),
        "attributes": {
            "cluster": clusters[i].server,
            "namespace": "default",
            "kind": "Deployment",
            "name": name,
            "containers": "web",
            "token_secret": token_secret(i),
        }
    })
}

/// A Deployment of `replicas` pods, it and they labelled `labels` (besides
/// `app: name`), its container `web` on `image` beside a sidecar, with
/// `extra` merged into its spec.
pub fn deployment(name: &str, replicas: u32, image: &str, labels: Value, extra: Value) -> Value {
    let mut pod_labels = json!({"app": name});
    for (k, v) in labels.as_object().into_iter().flatten() {
        pod_labels[k] = v.clone();
    }
    let mut spec = json!({
        "replicas": replicas,
        "selector": {"matchLabels": pod_labels},
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": {"containers": [
                {"name": "web", "image": image},
                {"name": "log-shipper", "image": "registry.example/shipper:7"}
            ]}
        }
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": pod_labels},
        "spec": spec
    })
}

/// The image of a container of a workload's pod template.
pub fn image<'a>(workload: &'a Value, container: &str) -> &'a str {
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let c = containers.iter().find(|c| c["name"] == container).unwrap();
    c["image"].as_str().unwrap()
}

/// Asserts that a Deployment runs `image` everywhere: its template, and
/// every desired replica updated, ready and available, as the controller
/// observed its latest generation.
pub async fn assert_rolled_out(cluster: &Cluster, name: &str, want: &str) -> Value {
    let d = cluster.get("deployment", name).await;
    assert_eq!(
        image(&d, "web"),
        want,
        "{name} on {}: {d:#}",
        cluster.server
    );
    // The sidecar, which no release may change.
    assert_eq!(
        image(&d, "log-shipper"),
        "registry.example/shipper:7",
        "{d:#}"
    );
    let status = &d["status"];
    let replicas = &d["spec"]["replicas"];
    assert_eq!(
        status["observedGeneration"], d["metadata"]["generation"],
        "{d:#}"
    );
    for field in ["updatedReplicas", "readyReplicas", "availableReplicas"] {
        assert_eq!(&status[field], replicas, "{name} {field}: {status:#}");
    }
    d
}

/// A flow named `name` of one deploy stage `strategy`, with the Kubernetes
/// deployer, `kubernetes-check` after every batch, and `extra` lines.
pub fn deploy_flow(name: &str, strategy: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "{strategy}"
deployer = {}
checks = [{{ plugin = "kubernetes-check" }}]
{extra}
"#,
        deployer("")
    )
}

/// A flow of one rolling stage, one target per batch.
pub fn rolling_flow(name: &str) -> String {
    deploy_flow(name, "rolling", "batch = 1")
}

/// The flow's deployer entry.
pub fn deployer(extra: &str) -> String {
    format!(r#"{{ plugin = "kubernetes-deployer", params = {{ image = "{IMAGE}"{extra} }} }}"#)
}
