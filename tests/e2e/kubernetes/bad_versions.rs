//! Versions that crash, never become ready, or cannot be pulled: each is
//! detected by the deployer on the real cluster's pod statuses or rollout
//! conditions and rolled back, the workloads ending on their old pod
//! template with the old pods ready again.

use serde_json::json;

use super::{assert_rolled_out, daemon, deployment, rolling_flow, settled_as, target};
use crate::support::k8s::Cluster;
use crate::support::releases::{put_inventory, start_release};

#[tokio::test]
async fn crashing_unready_and_unpullable_versions_are_rolled_back_to_the_old_pod_template() {
    let cluster = Cluster::start().await;
    let all = [&cluster];
    let old = "registry.example/shop:1.0.0";
    // Each case is an environment of two Deployments, released at once.
    // The Deployments' own progress deadline is short, so that a version
    // that never becomes ready fails by Kubernetes' rule
    // (ProgressDeadlineExceeded) within seconds.
    let cases = [
        ("crash", "crashloop-2.0.0", "CrashLoopBackOff"),
        ("unready", "unready-2.0.0", "progress deadline"),
        ("pull", "imagepullbackoff-2.0.0", "ImagePullBackOff"),
    ];
    for (env, _, _) in cases {
        for n in 1..=2 {
            let spec = json!({"progressDeadlineSeconds": 8});
            let name = format!("{env}-{n}");
            cluster
                .apply(&deployment(&name, 4, old, json!({}), spec).to_string())
                .await;
        }
    }
    for (env, _, _) in cases {
        for n in 1..=2 {
            cluster.rollout_done(&format!("deployment/{env}-{n}")).await;
        }
    }
    let d = daemon(&all, &rolling_flow("kube-batches")).await;
    let mut releases = Vec::new();
    for (env, version, _) in cases {
        let targets = json!({"targets": [
            target(&format!("{env}-1"), &all, 0, &format!("{env}-1")),
            target(&format!("{env}-2"), &all, 0, &format!("{env}-2")),
        ]});
        put_inventory(&d, "shop", env, targets).await;
        releases.push(start_release(&d, "shop", env, version, "kube-batches").await);
    }

    for ((env, version, reason), id) in cases.into_iter().zip(&releases) {
        let state = settled_as(&d, id, "rolled-back").await;
        let why = state["rollback"]["reason"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "{env}: {why}\n{state:#}");
        assert!(why.contains(&format!("{env}-1")), "{env}: {why}");

        // The first workload was patched and restored; the second was
        // never touched.
        let first = assert_rolled_out(&cluster, &format!("{env}-1"), old).await;
        assert_eq!(first["metadata"]["generation"], 3, "{first:#}");
        let notes = &first["metadata"]["annotations"];
        assert!(
            notes["greenlight.dev/rollback-key"].is_string(),
            "{notes:#}"
        );
        assert!(notes.get("greenlight.dev/version").is_none(), "{notes:#}");
        let second = assert_rolled_out(&cluster, &format!("{env}-2"), old).await;
        assert_eq!(second["metadata"]["generation"], 1, "{second:#}");

        // No pod of the bad version is left.
        let pods = cluster
            .kubectl(&["get", "pods", "-l", &format!("app={env}-1"), "-o", "json"])
            .await;
        let pods: serde_json::Value = serde_json::from_str(&pods).unwrap();
        for pod in pods["items"].as_array().unwrap() {
            let image = pod["spec"]["containers"][0]["image"].as_str().unwrap();
            let deleting = pod["metadata"]["deletionTimestamp"].is_string();
            assert!(
                image == old || deleting,
                "{env}: a pod of {version} runs: {pod:#}"
            );
        }
    }
}
