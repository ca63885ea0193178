//! `greenlight demo --kubernetes`: a sample application released on two
//! local Kubernetes clusters (the test bed in `testbed/k8s/`: a real
//! kube-apiserver, etcd, controller manager and scheduler each, with
//! simulated nodes) by the bundled Kubernetes plugins. The environment is
//! imported from the clusters as `greenlight inventory import` does, then a
//! canary workload and each cluster in turn are released, each batch
//! followed while Kubernetes rolls it out and checked once it is done; a
//! second version crash-loops on its canary and is rolled back.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Api, scratch_daemon, watch_release};
use crate::cli::kube::{self, Selection, TokenSecrets, config};
use crate::testbed::{Cluster, Options};

/// The bundled Kubernetes plugins, embedded in the binary.
const PLUGINS: [(&str, &[u8]); 2] = [
    (
        "kubernetes-deployer",
        include_bytes!(concat!(
            env!("GREENLIGHT_PLUGINS_DIR"),
            "/kubernetes_deployer.wasm"
        )),
    ),
    (
        "kubernetes-check",
        include_bytes!(concat!(
            env!("GREENLIGHT_PLUGINS_DIR"),
            "/kubernetes_check.wasm"
        )),
    ),
];

/// The sample application's image; the test bed's nodes run nothing, and
/// crash-loop any image whose tag starts with `crashloop`.
const IMAGE: &str = "registry.example/shop:{version}";

/// The clusters, by the context names the import gives them.
const CLUSTERS: [&str; 2] = ["east", "west"];

fn flow() -> String {
    let deployer =
        format!(r#"{{ plugin = "kubernetes-deployer", params = {{ image = "{IMAGE}" }} }}"#);
    format!(
        r#"name = "kubernetes"
version = 1

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {deployer}
count = 1
progress_deadline = "2m"
checks = [{{ plugin = "kubernetes-check" }}]

[[stages]]
name = "clusters"
kind = "deploy"
strategy = "rolling"
deployer = {deployer}
batch = 1
progress_deadline = "5m"
checks = [{{ plugin = "kubernetes-check" }}]
"#
    )
}

/// A Deployment of the sample application: `replicas` pods of a web
/// container beside a sidecar no release touches.
fn workload(name: &str, replicas: u32, canary: bool) -> String {
    let mut labels = json!({"app": name, "app.kubernetes.io/part-of": "shop"});
    if canary {
        labels[kube::CANARY_LABEL] = json!("true");
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                // A new pod becomes ready a second after it starts, so that
                // a rollout of ten takes a few rounds, as it would for real.
                "metadata": {"labels": labels,
                             "annotations": {"greenlight-testbed/ready-after-seconds": "1"}},
                "spec": {"containers": [
                    {"name": "web", "image": IMAGE.replace("{version}", "1.4.0")},
                    {"name": "log-shipper", "image": "registry.example/shipper:7"}
                ]}
            }
        }
    })
    .to_string()
}

/// Runs the Kubernetes demo; `testbed` is the `testbed/k8s` directory of a
/// checkout.
pub async fn demo(testbed: &Path, keep: bool) -> anyhow::Result<()> {
    println!(
        "Starting two Kubernetes clusters on loopback, east and west, from the test bed in {} \
         (a real kube-apiserver, etcd, controller manager and scheduler each; simulated nodes) …",
        testbed.display()
    );
    let started = Instant::now();
    let clusters = Cluster::start_many(testbed, 2, Options::default()).await?;
    println!(
        "… usable after {:.1} s: east at {}, west at {}",
        started.elapsed().as_secs_f64(),
        clusters[0].server,
        clusters[1].server
    );
    let (east, west) = (&clusters[0], &clusters[1]);
    for (cluster, name, replicas, canary) in [
        (east, "shop-canary", 1, true),
        (east, "shop", 10, false),
        (west, "shop", 10, false),
    ] {
        cluster.apply(&workload(name, replicas, canary)).await?;
    }
    for (cluster, name) in [(east, "shop-canary"), (east, "shop"), (west, "shop")] {
        cluster.rollout_done(&format!("deployment/{name}")).await?;
    }
    println!(
        "Deployed shop 1.4.0: shop-canary (1 pod) and shop (10 pods) on east, shop (10 pods) on west."
    );

    let (daemon, _scratch, api) = scratch_daemon().await?;
    let base = api.base.clone();
    set_up(&api, &clusters).await?;

    let mut outcomes = Vec::new();
    for version in ["1.5.0", "crashloop-1.6.0"] {
        let started = Instant::now();
        let status = watch_release(&api, version, "kubernetes").await?;
        println!(
            "  {version} {status} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        outcomes.push(status);
    }
    println!("\nWhat the clusters run now (kubectl get deployments):");
    for (name, cluster) in CLUSTERS.iter().zip(&clusters) {
        let out = cluster
            .kubectl(&[
                "get",
                "deployments",
                "-o",
                "custom-columns=NAME:.metadata.name,READY:.status.readyReplicas,\
                 IMAGE:.spec.template.spec.containers[0].image,\
                 GENERATION:.metadata.generation",
            ])
            .await?;
        for line in out.lines() {
            println!("  {name:<5} {line}");
        }
    }
    if outcomes != ["succeeded", "rolled-back"] {
        anyhow::bail!("the demo releases did not end as expected: {outcomes:?}");
    }
    if keep {
        println!(
            "Daemon and clusters left running; open the web UI at {base}/ and sign in with the \
             admin token {} (Ctrl-C to stop)",
            api.token
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    daemon.stop().await
}

/// Uploads and grants the plugins (each cluster's origin, CA and token),
/// imports `shop/prod` from both clusters and applies the flow.
async fn set_up(api: &Api, clusters: &[Cluster]) -> anyhow::Result<()> {
    for (name, bytes) in PLUGINS {
        api.upload(name, bytes).await?;
    }
    let secrets: serde_json::Map<String, Value> = CLUSTERS
        .iter()
        .zip(clusters)
        .map(|(name, c)| (format!("{name}-token"), json!(c.token)))
        .collect();
    let grant = json!({
        "allowed_hosts": clusters.iter().map(|c| c.server.clone()).collect::<Vec<_>>(),
        "tls": clusters.iter().map(|c| json!({"origin": c.server, "ca_pem": c.ca_pem})).collect::<Vec<_>>(),
        "secrets": secrets,
    });
    for (name, _) in PLUGINS {
        api.send(
            api.http
                .put(format!("{}/api/v1/plugins/{name}/grant", api.base))
                .json(&grant),
        )
        .await?;
    }
    println!(
        "Uploaded kubernetes-deployer and kubernetes-check, granted both clusters' API servers \
         with each cluster's CA and token."
    );

    // As `greenlight inventory import shop prod --context east --context
    // west -l app.kubernetes.io/part-of=shop --containers web
    // --token-secret east=east-token --token-secret west=west-token`.
    let mut accesses = Vec::new();
    for (name, cluster) in CLUSTERS.iter().zip(clusters) {
        let mut access = config::access(&cluster.kubeconfig, None)?;
        access.context = name.to_string();
        accesses.push(access);
    }
    let token_secrets: Vec<String> = CLUSTERS.iter().map(|c| format!("{c}={c}-token")).collect();
    let selection = Selection {
        namespace: "default".into(),
        selector: "app.kubernetes.io/part-of=shop".into(),
        kinds: vec!["Deployment".into()],
        group_label: "greenlight.dev/group".into(),
        containers: Some("web".into()),
        token_secrets: TokenSecrets::parse(&token_secrets, &accesses)?,
    };
    let targets = kube::read_targets(&accesses, &selection).await?;
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    api.send(
        api.http
            .put(format!("{}/api/v1/apps/shop/envs/prod", api.base))
            .json(&json!({ "targets": targets })),
    )
    .await?;
    println!(
        "Imported shop/prod from both clusters, as `greenlight inventory import` does: {}",
        ids.join(", ")
    );
    api.send(
        api.http
            .post(format!("{}/api/v1/flows", api.base))
            .header("content-type", "application/toml")
            .body(flow()),
    )
    .await?;
    println!(
        "Flow `kubernetes` applied: the canary workload, then one cluster per batch, \
         kubernetes-check after each."
    );
    Ok(())
}
