//! `kubernetes-check` on the real cluster's pods: crash-looping, unpullable
//! and unschedulable pods (the real scheduler finds no node with room) each
//! fail the check, naming the pods and the reasons; healthy ones pass.

use serde_json::{Value, json};

use super::{deployment, grant, target};
use crate::support::Daemon;
use crate::support::k8s::Cluster;

async fn check(d: &Daemon, targets: Value, max_restarts: &str) -> Value {
    let answer = d
        .invoke(
            "kubernetes-check",
            json!({
                "context": {"application": "shop", "environment": "prod", "version": "2.0.0",
                            "parameters": {"max_restarts": max_restarts}},
                "targets": targets
            }),
        )
        .await;
    answer["output"]["verdict"].clone()
}

#[tokio::test]
async fn crashing_unpullable_and_unschedulable_pods_fail_the_check_by_name() {
    let cluster = Cluster::start().await;
    let all = [&cluster];
    let image = |tag: &str| format!("registry.example/shop:{tag}");
    let huge = json!({"template": {"metadata": {"labels": {"app": "unschedulable"}}, "spec": {
        "containers": [{"name": "web", "image": image("2.0.0"),
                        "resources": {"requests": {"cpu": "5000"}}}]}}});
    for (name, tag, extra) in [
        ("healthy", "2.0.0", json!({})),
        ("crashing", "crashloop-2.0.0", json!({})),
        ("unpullable", "imagepullbackoff-2.0.0", json!({})),
        ("unschedulable", "2.0.0", huge),
    ] {
        let mut d = deployment(name, 2, &image(tag), json!({}), json!({}));
        if let Some(template) = extra.get("template") {
            d["spec"]["template"] = template.clone();
        }
        cluster.apply(&d.to_string()).await;
    }
    cluster.rollout_done("deployment/healthy").await;
    let waiting = "{.metadata.name} {.status.containerStatuses[0].state.waiting.reason}";
    cluster
        .wait_for_pod("app=crashing", waiting, "CrashLoopBackOff")
        .await;
    cluster
        .wait_for_pod("app=unpullable", waiting, "ImagePullBackOff")
        .await;
    let unscheduled = "{.metadata.name} {.status.conditions[0].reason}";
    cluster
        .wait_for_pod("app=unschedulable", unscheduled, "Unschedulable")
        .await;

    let d = Daemon::start().await;
    d.upload_ok("kubernetes-check", "kubernetes_check").await;
    d.grant("kubernetes-check", grant(&all)).await;

    let healthy = check(&d, json!([target("healthy", &all, 0, "healthy")]), "0").await;
    assert_eq!(healthy["status"], "pass", "{healthy:#}");

    for (name, reason) in [
        ("crashing", "CrashLoopBackOff"),
        ("unpullable", "ImagePullBackOff"),
        ("unschedulable", "Unschedulable"),
    ] {
        // With the healthy workload beside it: one failing target fails
        // the check.
        let targets = json!([
            target("healthy", &all, 0, "healthy"),
            target(name, &all, 0, name),
        ]);
        let verdict = check(&d, targets, "5").await;
        assert_eq!(verdict["status"], "fail", "{name}: {verdict:#}");
        let summary = verdict["summary"].as_str().unwrap();
        assert!(summary.contains(reason), "{name}: {summary}");
        assert!(
            summary.contains(&format!("{name}-")),
            "{name}: the pods are named: {summary}"
        );
    }

    // The metrics count what was found: two pods of two containers, each
    // restarted three times by the simulated nodes.
    let verdict = check(&d, json!([target("crashing", &all, 0, "crashing")]), "5").await;
    let metric = |name: &str| {
        let m = verdict["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name);
        m.map(|m| m["value"].as_f64().unwrap())
    };
    assert_eq!(metric("ready_pods"), Some(0.0), "{verdict:#}");
    assert_eq!(metric("desired_pods"), Some(2.0), "{verdict:#}");
    assert_eq!(metric("restarts"), Some(12.0), "{verdict:#}");
    assert_eq!(metric("problem_pods"), Some(2.0), "{verdict:#}");
}
