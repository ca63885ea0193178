//! StatefulSets and DaemonSets, released like Deployments: each patched
//! once, followed by its own controller's rollout rules (a StatefulSet's
//! current and update revisions, a DaemonSet's pods per node) and checked
//! by `kubernetes-check`.

use serde_json::json;

use super::{daemon, image, rolling_flow, settled_as, target};
use crate::support::k8s::Cluster;
use crate::support::releases::{journal_details, put_inventory, start_release};

fn workload(kind: &str, name: &str, image: &str) -> String {
    let template = json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    });
    let mut spec = json!({"selector": {"matchLabels": {"app": name}}, "template": template});
    if kind == "StatefulSet" {
        spec["replicas"] = json!(3);
        spec["serviceName"] = json!(name);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec
    })
    .to_string()
}

#[tokio::test]
async fn stateful_sets_and_daemon_sets_roll_out_and_are_checked() {
    let cluster = Cluster::start().await;
    let all = [&cluster];
    let old = "registry.example/shop:1.0.0";
    cluster.apply(&workload("StatefulSet", "db", old)).await;
    cluster.apply(&workload("DaemonSet", "agent", old)).await;
    cluster.rollout_done("statefulset/db").await;
    cluster.rollout_done("daemonset/agent").await;

    let d = daemon(&all, &rolling_flow("kube-kinds")).await;
    let mut db = target("db", &all, 0, "db");
    db["attributes"]["kind"] = json!("StatefulSet");
    let mut agent = target("agent", &all, 0, "agent");
    agent["attributes"]["kind"] = json!("DaemonSet");
    put_inventory(&d, "shop", "prod", json!({"targets": [db, agent]})).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "kube-kinds").await;
    let done = settled_as(&d, &id, "succeeded").await;

    let new = "registry.example/shop:2.0.0";
    let db = cluster.get("statefulset", "db").await;
    assert_eq!(image(&db, "web"), new, "{db:#}");
    assert_eq!(db["metadata"]["generation"], 2, "{db:#}");
    let status = &db["status"];
    assert_eq!(status["updatedReplicas"], 3, "{status:#}");
    assert_eq!(
        status["currentRevision"], status["updateRevision"],
        "{status:#}"
    );
    let agent = cluster.get("daemonset", "agent").await;
    assert_eq!(image(&agent, "web"), new, "{agent:#}");
    assert_eq!(agent["metadata"]["generation"], 2, "{agent:#}");
    // One pod per simulated node, every one updated and available.
    let status = &agent["status"];
    assert_eq!(status["desiredNumberScheduled"], 3, "{status:#}");
    assert_eq!(status["updatedNumberScheduled"], 3, "{status:#}");
    assert_eq!(status["numberAvailable"], 3, "{status:#}");

    let verified: Vec<String> = journal_details(&d, &id)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "verified")
        .map(|(_, e)| e.to_string())
        .collect();
    assert_eq!(verified.len(), 2, "{done:#}");
    assert!(verified[0].contains("3 of 3"), "{}", verified[0]);
    assert!(verified[1].contains("3 of 3"), "{}", verified[1]);
}
