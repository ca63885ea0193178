//! Blue-green on Kubernetes: a Service's selector switched from the live
//! group to the one just deployed, and stepped weights on a Gateway API
//! HTTPRoute (its CRD installed in the test cluster).

use serde_json::{Value, json};

use super::{
    IMAGE, assert_rolled_out, daemon, deploy_flow, deployment, settled_as, target, token_secret,
};
use crate::support::k8s::{Cluster, Options};
use crate::support::releases::{journal_details, put_inventory, start_release};

const GROUP_LABEL: &str = "greenlight.dev/group";

fn service(name: &str, selector: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}
    })
    .to_string()
}

/// The workloads of one application: `PREFIX-blue` and `PREFIX-green`, two
/// replicas each on the old version, their pods labelled with their group.
async fn workloads(cluster: &Cluster, prefix: &str) {
    for group in ["blue", "green"] {
        let labels = json!({"tier": prefix, GROUP_LABEL: group});
        let name = format!("{prefix}-{group}");
        let old = IMAGE.replace("{version}", "1.0.0");
        cluster
            .apply(&deployment(&name, 2, &old, labels, json!({})).to_string())
            .await;
    }
}

fn environment(all: &[&Cluster], prefix: &str) -> Value {
    let mut targets = Vec::new();
    for group in ["blue", "green"] {
        let name = format!("{prefix}-{group}");
        let mut t = target(&name, all, 0, &name);
        t["group"] = json!(group);
        targets.push(t);
    }
    json!({"targets": targets, "live_group": "blue"})
}

/// The weights each traffic-shifted event of a release set, in order.
async fn shifts(d: &crate::support::Daemon, id: &str) -> Vec<Vec<(String, u64)>> {
    journal_details(d, id)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "traffic-shifted")
        .map(|(_, e)| {
            let mut weights: Vec<(String, u64)> = e["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    (
                        w["group"].as_str().unwrap().to_string(),
                        w["percent"].as_u64().unwrap(),
                    )
                })
                .collect();
            weights.sort();
            weights
        })
        .collect()
}

fn weights(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(g, p)| (g.to_string(), *p)).collect()
}

#[tokio::test]
async fn blue_green_switches_a_service_selector_and_steps_an_httproute_weights() {
    let cluster = Cluster::start_with(Options { gateway_api: true }).await;
    let all = [&cluster];
    let secret = token_secret(0);
    let server = &cluster.server;

    // By Service selector: `svc`, its Service selecting the blue pods.
    workloads(&cluster, "svc").await;
    cluster
        .apply(&service("svc", json!({"tier": "svc", GROUP_LABEL: "blue"})))
        .await;
    // By HTTPRoute: `route`, a Service per group and a route all on blue.
    workloads(&cluster, "route").await;
    for group in ["blue", "green"] {
        let name = format!("route-{group}");
        cluster
            .apply(&service(
                &name,
                json!({"tier": "route", GROUP_LABEL: group}),
            ))
            .await;
    }
    let backend = |name: &str, weight: u32| json!({"name": name, "port": 80, "weight": weight});
    cluster
        .apply(
            &json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "route", "namespace": "default"},
                "spec": {
                    "parentRefs": [{"name": "edge"}],
                    "rules": [
                        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                         "backendRefs": [backend("route-blue", 100), backend("route-green", 0)]},
                        {"backendRefs": [backend("route-blue", 100), backend("route-green", 0)]}
                    ]
                }
            })
            .to_string(),
        )
        .await;
    for name in ["svc-blue", "svc-green", "route-blue", "route-green"] {
        cluster.rollout_done(&format!("deployment/{name}")).await;
    }

    let by_service = format!(
        r#"{{ plugin = "kubernetes-traffic", params = {{ cluster = "{server}", namespace = "default", mode = "service", service = "svc", groups = "blue,green", token_secret = "{secret}" }} }}"#
    );
    let by_route = format!(
        r#"{{ plugin = "kubernetes-traffic", params = {{ cluster = "{server}", namespace = "default", mode = "httproute", route = "route", backends = "blue=route-blue,green=route-green", token_secret = "{secret}" }} }}"#
    );
    let d = daemon(
        &all,
        &deploy_flow(
            "kube-svc",
            "blue-green",
            &format!("traffic = {by_service}\nsteps = [100]"),
        ),
    )
    .await;
    crate::support::releases::apply_flow(
        &d,
        &deploy_flow(
            "kube-route",
            "blue-green",
            &format!("traffic = {by_route}\nsteps = [10, 50, 100]"),
        ),
    )
    .await;
    put_inventory(&d, "svc", "prod", environment(&all, "svc")).await;
    put_inventory(&d, "route", "prod", environment(&all, "route")).await;
    let by_service = start_release(&d, "svc", "prod", "2.0.0", "kube-svc").await;
    let by_route = start_release(&d, "route", "prod", "2.0.0", "kube-route").await;
    let new = IMAGE.replace("{version}", "2.0.0");
    let old = IMAGE.replace("{version}", "1.0.0");

    // The Service: the green Deployment was released, then the selector
    // switched to green at once.
    settled_as(&d, &by_service, "succeeded").await;
    assert_rolled_out(&cluster, "svc-green", &new).await;
    let blue = assert_rolled_out(&cluster, "svc-blue", &old).await;
    assert_eq!(blue["metadata"]["generation"], 1, "{blue:#}");
    let svc = cluster.get("service", "svc").await;
    assert_eq!(svc["spec"]["selector"][GROUP_LABEL], "green", "{svc:#}");
    assert_eq!(svc["spec"]["selector"]["tier"], "svc", "{svc:#}");
    assert_eq!(
        shifts(&d, &by_service).await,
        [weights(&[("blue", 0), ("green", 100)])]
    );
    // The HTTPRoute: 10%, 50%, then 100% to green, written into the
    // backendRefs of every rule, read back from the cluster.
    settled_as(&d, &by_route, "succeeded").await;
    assert_rolled_out(&cluster, "route-green", &new).await;
    assert_eq!(
        shifts(&d, &by_route).await,
        [
            weights(&[("blue", 90), ("green", 10)]),
            weights(&[("blue", 50), ("green", 50)]),
            weights(&[("blue", 0), ("green", 100)]),
        ]
    );
    let route = cluster.get("httproute", "route").await;
    for rule in route["spec"]["rules"].as_array().unwrap() {
        let refs = rule["backendRefs"].as_array().unwrap();
        assert_eq!(refs[0]["name"], "route-blue", "{route:#}");
        assert_eq!(refs[0]["weight"], 0, "{route:#}");
        assert_eq!(refs[1]["name"], "route-green", "{route:#}");
        assert_eq!(refs[1]["weight"], 100, "{route:#}");
    }
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "edge", "{route:#}");
}
