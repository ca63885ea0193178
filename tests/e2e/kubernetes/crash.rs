//! The daemon killed with SIGKILL in the middle of a rollout: after the
//! restart the release asks the deployer about the same work with the same
//! key, and the rollout finishes without a second patch (the workloads'
//! generations prove it).

use serde_json::json;

use super::{assert_rolled_out, daemon, deployment, rolling_flow, settled_as, target};
use crate::support::k8s::Cluster;
use crate::support::releases::{journal, put_inventory, start_release, wait_for_within};

#[tokio::test]
async fn a_daemon_killed_mid_rollout_resumes_and_finishes_without_a_second_patch() {
    let cluster = Cluster::start().await;
    let all = [&cluster];
    let old = "registry.example/shop:1.0.0";
    for name in ["shop-1", "shop-2"] {
        let mut d = deployment(name, 10, old, json!({}), json!({}));
        // Each new pod takes two seconds to become ready, so that a
        // rollout of ten is under way long enough to be interrupted.
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"greenlight-testbed/ready-after-seconds": "2"});
        cluster.apply(&d.to_string()).await;
    }
    for name in ["shop-1", "shop-2"] {
        cluster.rollout_done(&format!("deployment/{name}")).await;
    }
    let d = daemon(&all, &rolling_flow("kube-crash")).await;
    let targets = json!({"targets": [
        target("shop-1", &all, 0, "shop-1"),
        target("shop-2", &all, 0, "shop-2"),
    ]});
    put_inventory(&d, "shop", "prod", targets).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "kube-crash").await;

    // The first batch is in progress: patched, its rollout under way.
    let during = wait_for_within(
        &d,
        &id,
        "the first rollout in progress",
        super::RELEASE_WAIT,
        |r| r["progress"]["of"]["work"] == "deploy",
    )
    .await;
    let before = cluster.get("deployment", "shop-1").await;
    assert_eq!(before["metadata"]["generation"], 2, "{during:#}");
    let key = before["metadata"]["annotations"]["greenlight.dev/deploy-key"].clone();
    assert!(key.is_string(), "{before:#}");

    let d = d.crash_and_restart().await;
    settled_as(&d, &id, "succeeded").await;

    let new = "registry.example/shop:2.0.0";
    for name in ["shop-1", "shop-2"] {
        let w = assert_rolled_out(&cluster, name, new).await;
        assert_eq!(
            w["metadata"]["generation"], 2,
            "{name} patched twice: {w:#}"
        );
    }
    let after = cluster.get("deployment", "shop-1").await;
    assert_eq!(
        after["metadata"]["annotations"]["greenlight.dev/deploy-key"], key,
        "{after:#}"
    );
    let events = journal(&d, &id).await;
    let deploys = events.iter().filter(|e| *e == "deploy-started").count();
    assert_eq!(deploys, 2, "one deploy per batch: {events:?}");
}
