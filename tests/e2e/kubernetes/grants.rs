//! A Kubernetes plugin whose grant does not allow the cluster's origin, or
//! trusts another CA for it, fails with an error that names the origin and
//! what was wrong; with the right grant the same call reaches the cluster.

use std::process::Command;

use serde_json::{Value, json};

use super::{deployment, grant, target};
use crate::support::Daemon;
use crate::support::k8s::Cluster;

/// A CA of its own, which signed nothing the cluster presents.
fn other_ca() -> String {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("ca.key"), dir.path().join("ca.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=some-other-ca", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(cert).unwrap()
}

async fn check(d: &Daemon, target: &Value) -> Value {
    d.invoke(
        "kubernetes-check",
        json!({
            "context": {"application": "shop", "environment": "prod", "version": "1.0.0", "parameters": {}},
            "targets": [target]
        }),
    )
    .await
}

/// What a check answer says went wrong: the call's error, or the verdict's
/// summary when the plugin turned the failure into an `error` verdict.
fn failure(answer: &Value) -> String {
    if answer["status"] == "ok" {
        let verdict = &answer["output"]["verdict"];
        assert_eq!(verdict["status"], "error", "{answer:#}");
        verdict["summary"].as_str().unwrap().to_string()
    } else {
        answer["error"]["message"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn a_missing_grant_or_a_wrong_ca_fails_naming_the_cluster_origin() {
    let cluster = Cluster::start().await;
    let all = [&cluster];
    cluster
        .apply(
            &deployment(
                "shop",
                2,
                "registry.example/shop:1.0.0",
                json!({}),
                json!({}),
            )
            .to_string(),
        )
        .await;
    cluster.rollout_done("deployment/shop").await;
    let d = Daemon::start().await;
    d.upload_ok("kubernetes-check", "kubernetes_check").await;
    let shop = target("shop", &all, 0, "shop");
    let origin = cluster.server.as_str();

    // No grant for the cluster at all.
    let answer = check(&d, &shop).await;
    let message = failure(&answer);
    assert!(message.contains(origin), "{message}");
    assert!(message.contains("not granted"), "{message}");

    // The origin granted with another CA: refused at the handshake.
    let mut wrong = grant(&all);
    wrong["tls"][0]["ca_pem"] = json!(other_ca());
    d.grant("kubernetes-check", wrong).await;
    let answer = check(&d, &shop).await;
    let message = failure(&answer);
    assert!(message.contains(origin), "{message}");
    assert!(message.contains("not signed by the CA"), "{message}");

    // The origin granted without its CA: the public roots do not know it.
    let mut public = grant(&all);
    public.as_object_mut().unwrap().remove("tls");
    d.grant("kubernetes-check", public).await;
    let message = failure(&check(&d, &shop).await);
    assert!(message.contains(origin), "{message}");

    // The right grant: the check reads the cluster.
    d.grant("kubernetes-check", grant(&all)).await;
    let answer = check(&d, &shop).await;
    let verdict = &answer["output"]["verdict"];
    assert_eq!(verdict["status"], "pass", "{answer:#}");
    assert!(
        verdict["summary"].as_str().unwrap().contains("2 of 2"),
        "{answer:#}"
    );
}
