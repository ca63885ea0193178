//! A rolling release on Kubernetes through Greenlight against the cluster's
//! own rollout, for the same image change, in one run on one test-bed
//! cluster (`testbed/k8s`, built by `./dev setup test`).
//!
//! Two identical sets of `WORKLOADS` Deployments of `REPLICAS` pods each,
//! every new pod ready a second after it starts. Each round changes the
//! image of both sets to a new version, one workload after the other:
//! - the baseline, with kubectl: `kubectl set image`, then `kubectl rollout
//!   status` (a watch), workload by workload;
//! - Greenlight: a release of a flow rolling one workload per batch with
//!   `kubernetes-deployer`, each batch checked by `kubernetes-check`.
//!
//! The two take turns, in alternating order, for `ROUNDS` rounds. Prints
//! each one's median time, their ratio, and the time Greenlight adds per
//! batch: following a rollout (asking again every 2 s), the check, the
//! journal and the engine's steps.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::Api;
use greenlight::server::Daemon;
use greenlight::testbed::{Cluster, Options};
use serde_json::{Value, json};

const WORKLOADS: usize = 4;
const REPLICAS: u32 = 10;
const ROUNDS: usize = 3;
const IMAGE: &str = "registry.example/shop:{version}";

fn deployment(name: &str) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name},
                             "annotations": {"greenlight-testbed/ready-after-seconds": "1"}},
                "spec": {"containers": [{"name": "web", "image": IMAGE.replace("{version}", "1.0.0")}]}
            }
        }
    })
    .to_string()
}

/// The baseline: kubectl changes each workload's image and watches its
/// rollout to the end, one after the other.
async fn with_kubectl(cluster: &Cluster, version: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let image = format!("web={}", IMAGE.replace("{version}", version));
    for i in 0..WORKLOADS {
        let workload = format!("deployment/kubectl-{i}");
        cluster
            .kubectl(&["set", "image", &workload, &image])
            .await?;
        cluster.rollout_done(&workload).await?;
    }
    Ok(started.elapsed())
}

/// Greenlight: a release of `version`, from its start to its end, as the
/// API reports it (read every 20 ms).
async fn with_greenlight(api: &Api, version: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let release = api
        .send(api.http.post(api.url("/api/v1/releases")).json(&json!({
            "application": "shop", "environment": "prod", "version": version, "flow": "bench"
        })))
        .await?;
    let id = release["id"].as_str().unwrap_or_default().to_string();
    loop {
        let state = api
            .send(api.http.get(api.url(&format!("/api/v1/releases/{id}"))))
            .await?;
        match state["status"].as_str() {
            Some("succeeded") => return Ok(started.elapsed()),
            Some("running") => tokio::time::sleep(Duration::from_millis(20)).await,
            other => anyhow::bail!("the release ended {other:?}: {state}"),
        }
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

async fn set_up(cluster: &Cluster) -> anyhow::Result<(Daemon, Api, tempfile::TempDir)> {
    for i in 0..WORKLOADS {
        cluster.apply(&deployment(&format!("kubectl-{i}"))).await?;
        cluster
            .apply(&deployment(&format!("greenlight-{i}")))
            .await?;
    }
    for i in 0..WORKLOADS {
        cluster
            .rollout_done(&format!("deployment/kubectl-{i}"))
            .await?;
        cluster
            .rollout_done(&format!("deployment/greenlight-{i}"))
            .await?;
    }
    let (daemon, api, scratch) = common::daemon(|_| {}).await?;
    let grant = json!({
        "allowed_hosts": [cluster.server],
        "tls": [{"origin": cluster.server, "ca_pem": cluster.ca_pem}],
        "secrets": {"kubernetes-token": cluster.token},
    });
    for (name, file) in [
        ("kubernetes-deployer", "kubernetes_deployer"),
        ("kubernetes-check", "kubernetes_check"),
    ] {
        api.upload(name, file).await?;
        api.send(
            api.http
                .put(api.url(&format!("/api/v1/plugins/{name}/grant")))
                .json(&grant),
        )
        .await?;
    }
    let flow = format!(
        r#"name = "bench"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "kubernetes-deployer", params = {{ image = "{IMAGE}" }} }}
batch = 1
checks = [{{ plugin = "kubernetes-check" }}]
"#
    );
    api.apply_flow(flow).await?;
    let targets: Vec<Value> = (0..WORKLOADS)
        .map(|i| {
            json!({"id": format!("greenlight-{i}"), "address": "127.0.0.1:1", "attributes": {
                "cluster": cluster.server, "namespace": "default", "kind": "Deployment",
                "name": format!("greenlight-{i}")}})
        })
        .collect();
    api.send(
        api.http
            .put(api.url("/api/v1/apps/shop/envs/prod"))
            .json(&json!({ "targets": targets })),
    )
    .await?;
    Ok((daemon, api, scratch))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let testbed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/k8s");
    let started = Instant::now();
    let cluster = Cluster::start(&testbed, Options::default()).await?;
    println!(
        "test-bed cluster usable after {:.1} s; {WORKLOADS} workloads of {REPLICAS} pods per side, \
         each new pod ready 1 s after it starts",
        started.elapsed().as_secs_f64()
    );
    let (daemon, api, _scratch) = set_up(&cluster).await?;

    let (mut kubectl, mut greenlight) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let version = format!("2.0.{round}");
        // Alternate which goes first, so that neither always meets a
        // cluster still busy with the other's old pods.
        let (k, g) = if round % 2 == 0 {
            let k = with_kubectl(&cluster, &version).await?;
            (k, with_greenlight(&api, &version).await?)
        } else {
            let g = with_greenlight(&api, &version).await?;
            (with_kubectl(&cluster, &version).await?, g)
        };
        println!(
            "round {}: kubectl {:.2} s, Greenlight {:.2} s",
            round + 1,
            k.as_secs_f64(),
            g.as_secs_f64()
        );
        kubectl.push(k);
        greenlight.push(g);
    }
    let (k, g) = (median(kubectl), median(greenlight));
    let added = g.saturating_sub(k) / WORKLOADS as u32;
    println!(
        "median of {ROUNDS}: kubectl set image + rollout status {:.2} s, Greenlight rolling release \
         {:.2} s; ratio {:.2}; Greenlight adds {:.2} s per batch ({WORKLOADS} batches)",
        k.as_secs_f64(),
        g.as_secs_f64(),
        g.as_secs_f64() / k.as_secs_f64(),
        added.as_secs_f64()
    );
    daemon.stop().await
}
