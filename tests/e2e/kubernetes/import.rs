//! `greenlight inventory import` against two real clusters: one reached
//! with a bearer token, the other with a client certificate, both from one
//! kubeconfig. The imported targets are what the Kubernetes plugins need:
//! a check on them, granted a token for one cluster and a client
//! certificate for the other, reads both.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{deployment, token_secret};
use crate::support::k8s::{Cluster, Options};
use crate::support::{Daemon, cli};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A kubeconfig with context `east` (cluster 0, its admin token) and
/// `west` (cluster 1, a client certificate), current context `east`.
fn kubeconfig(east: &Cluster, west: &Cluster, cert: &(String, String)) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: east
  cluster: {{server: '{}', certificate-authority-data: {}}}
- name: west
  cluster: {{server: '{}', certificate-authority-data: {}}}
users:
- name: east-admin
  user: {{token: {}}}
- name: west-admin
  user: {{client-certificate-data: {}, client-key-data: {}}}
contexts:
- name: east
  context: {{cluster: east, user: east-admin, namespace: default}}
- name: west
  context: {{cluster: west, user: west-admin}}
current-context: east
",
        east.server,
        b64(&east.ca_pem),
        west.server,
        b64(&west.ca_pem),
        east.token,
        b64(&cert.0),
        b64(&cert.1),
    )
}

/// Runs `greenlight inventory import shop prod --kubeconfig CONFIG` with
/// `args` (split at spaces).
fn import(d: &Daemon, config: &str, args: &str) -> (bool, String, String) {
    let mut all = vec![
        "inventory",
        "import",
        "shop",
        "prod",
        "--kubeconfig",
        config,
    ];
    all.extend(args.split(' '));
    cli(d, &all)
}

#[tokio::test]
async fn inventory_import_reads_two_clusters_into_targets_the_plugins_can_use() {
    let clusters = Cluster::start_many(2, Options::default()).await;
    let (east, west) = (&clusters[0], &clusters[1]);
    let shop = json!({"part-of": "shop"});
    let canary = json!({"part-of": "shop", "greenlight.dev/canary": "true"});
    let old = "registry.example/shop:1.0.0";
    east.apply(&deployment("shop", 3, old, shop.clone(), json!({})).to_string())
        .await;
    east.apply(&deployment("shop-canary", 1, old, canary, json!({})).to_string())
        .await;
    east.apply(
        &deployment("billing", 1, old, json!({"part-of": "billing"}), json!({})).to_string(),
    )
    .await;
    west.apply(&deployment("shop", 2, old, shop, json!({})).to_string())
        .await;
    for (c, name) in [(east, "shop"), (east, "shop-canary"), (west, "shop")] {
        c.rollout_done(&format!("deployment/{name}")).await;
    }
    let d = Daemon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");

    // A v1 certificate (what `openssl x509 -req` writes without
    // extensions) is refused before anything is sent, saying what to do.
    let v1 = west.client_certificate("greenlight-import", "system:masters", true);
    std::fs::write(&config, kubeconfig(east, west, &v1)).unwrap();
    let config = config.to_str().unwrap();
    let (ok, _, err) = import(&d, config, "--context west -l part-of=shop");
    assert!(!ok);
    assert!(err.contains("context `west`"), "{err}");
    assert!(
        err.contains("client-certificate: an X.509 v1 certificate"),
        "{err}"
    );

    let cert = west.client_certificate("greenlight-import", "system:masters", false);
    std::fs::write(config, kubeconfig(east, west, &cert)).unwrap();
    let secret = token_secret(0);
    let args = format!(
        "--context east --context west -l part-of=shop --containers web --token-secret east={secret}"
    );
    let (ok, out, err) = import(&d, config, &args);
    assert!(ok, "{out}{err}");

    let (status, env) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/apps/shop/envs/prod"))
        .await;
    assert_eq!(status, 200, "{env}");
    let targets = env["targets"].as_array().unwrap();
    // The canary first, where a canary stage takes its targets.
    let ids: Vec<&str> = targets.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["shop-canary.east", "shop.east", "shop.west"],
        "{env:#}"
    );
    let west_shop = targets.iter().find(|t| t["id"] == "shop.west").unwrap();
    let attributes = &west_shop["attributes"];
    assert_eq!(attributes["cluster"], west.server.as_str(), "{env:#}");
    assert_eq!(attributes["namespace"], "default");
    assert_eq!(attributes["kind"], "Deployment");
    assert_eq!(attributes["name"], "shop");
    assert_eq!(attributes["containers"], "web");
    assert!(attributes.get("token_secret").is_none(), "{env:#}");
    let east_shop = targets.iter().find(|t| t["id"] == "shop.east").unwrap();
    assert_eq!(east_shop["attributes"]["token_secret"], secret.as_str());

    // A selector that matches nothing changes nothing.
    let (ok, _, err) = import(&d, config, "-l part-of=none");
    assert!(!ok);
    assert!(err.contains("nothing was changed"), "{err}");

    // The plugins reach both clusters with what the import wrote: a token
    // for east, the client certificate alone for west.
    d.upload_ok("kubernetes-check", "kubernetes_check").await;
    let grant = json!({
        "allowed_hosts": [east.server, west.server],
        "secrets": {secret.clone(): east.token, "west-cert": cert.0, "west-key": cert.1},
        "tls": [
            {"origin": east.server, "ca_pem": east.ca_pem},
            {"origin": west.server, "ca_pem": west.ca_pem,
             "client_cert_secret": "west-cert", "client_key_secret": "west-key"},
        ]
    });
    d.grant("kubernetes-check", grant).await;
    let targets: Vec<Value> = targets.to_vec();
    let answer = d
        .invoke(
            "kubernetes-check",
            json!({
                "context": {"application": "shop", "environment": "prod", "version": "1.0.0", "parameters": {}},
                "targets": targets
            }),
        )
        .await;
    let verdict = &answer["output"]["verdict"];
    assert_eq!(verdict["status"], "pass", "{answer:#}");
    let summary = verdict["summary"].as_str().unwrap();
    assert!(summary.contains("6 of 6"), "{summary}");
}
