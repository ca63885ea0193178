//! A canary workload, then a 10-replica Deployment in each of two clusters,
//! cluster by cluster, with `kubernetes-check` after every batch.

use serde_json::json;

use super::{assert_rolled_out, daemon, deployer, deployment, settled_as, target};
use crate::support::k8s::{Cluster, Options};
use crate::support::releases::{journal_details, put_inventory, start_release};

fn flow() -> String {
    let deployer = deployer("");
    format!(
        r#"name = "kube-rolling"
version = 1

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {deployer}
count = 1
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

#[tokio::test]
async fn a_canary_then_two_clusters_roll_out_batch_by_batch_and_end_on_the_new_image() {
    let clusters = Cluster::start_many(2, Options::default()).await;
    let all: Vec<&Cluster> = clusters.iter().collect();
    let (a, b) = (&clusters[0], &clusters[1]);
    let old = "registry.example/shop:1.0.0";
    a.apply(&deployment("shop-canary", 1, old, json!({}), json!({})).to_string())
        .await;
    for c in [a, b] {
        c.apply(&deployment("shop", 10, old, json!({}), json!({})).to_string())
            .await;
    }
    a.rollout_done("deployment/shop-canary").await;
    for c in [a, b] {
        c.rollout_done("deployment/shop").await;
    }

    let d = daemon(&all, &flow()).await;
    put_inventory(
        &d,
        "shop",
        "prod",
        json!({"targets": [
            target("canary", &all, 0, "shop-canary"),
            target("shop-a", &all, 0, "shop"),
            target("shop-b", &all, 1, "shop"),
        ]}),
    )
    .await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "kube-rolling").await;
    let done = settled_as(&d, &id, "succeeded").await;

    let new = "registry.example/shop:2.0.0";
    for (c, name) in [(a, "shop-canary"), (a, "shop"), (b, "shop")] {
        let w = assert_rolled_out(c, name, new).await;
        // One patch: the generation the deploy made, and no other.
        assert_eq!(w["metadata"]["generation"], 2, "{name}: {w:#}");
        let notes = &w["metadata"]["annotations"];
        assert_eq!(notes["greenlight.dev/release"], id.as_str(), "{notes:#}");
        assert_eq!(notes["greenlight.dev/version"], "2.0.0", "{notes:#}");
        let pods = &w["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(pods["greenlight.dev/version"], "2.0.0", "{w:#}");
    }

    // Three batches (the canary, then one cluster each), each followed
    // while in progress and verified by kubernetes-check once done.
    let journal = journal_details(&d, &id).await;
    let deployed: Vec<_> = journal
        .iter()
        .filter(|(kind, _)| kind == "deployed")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(deployed.len(), 3, "{done:#}");
    let progressed = journal.iter().filter(|(k, _)| k == "progressed").count();
    assert!(
        progressed >= 3,
        "each rollout was in progress: {journal:#?}"
    );
    let verified: Vec<_> = journal
        .iter()
        .filter(|(kind, _)| kind == "verified")
        .collect();
    assert_eq!(verified.len(), 3, "{journal:#?}");
    for (_, v) in &verified {
        let text = v.to_string();
        assert!(text.contains("pass"), "{text}");
    }
    // The verdicts name the pods they counted: ten of ten in each cluster.
    let last = verified[2].1.to_string();
    assert!(last.contains("10 of 10"), "{last}");
}
