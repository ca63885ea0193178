//! The README's "Releasing on Kubernetes", step by step through the CLI,
//! on a test-bed cluster: the ServiceAccount and Role of
//! `examples/kubernetes/rbac.yaml` (so the permissions it lists are proved
//! enough), the plugins pushed and granted with the cluster's CA and the
//! ServiceAccount's token, the environment imported from the kubeconfig,
//! `examples/kubernetes/flow.toml` applied, and a release started and
//! watched to its end.

use std::path::Path;

use base64::Engine as _;
use serde_json::json;

use super::{assert_rolled_out, deployment};
use crate::support::k8s::Cluster;
use crate::support::{Daemon, cli, cli_start_release};

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/kubernetes")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Runs the CLI, which must succeed; returns its output.
fn run(d: &Daemon, args: &[&str]) -> String {
    let (ok, out, err) = cli(d, args);
    assert!(ok, "greenlight {args:?}: {out}{err}");
    out
}

#[tokio::test]
async fn the_readme_walkthrough_takes_a_kubeconfig_to_a_first_release() {
    let cluster = Cluster::start().await;
    let old = "registry.example.com/shop:1.4.0";
    let part_of = json!({"app.kubernetes.io/part-of": "shop"});
    let mut canary = part_of.clone();
    canary["greenlight.dev/canary"] = json!("true");
    cluster
        .apply(&deployment("shop", 6, old, part_of, json!({})).to_string())
        .await;
    cluster
        .apply(&deployment("shop-canary", 1, old, canary, json!({})).to_string())
        .await;
    for name in ["shop", "shop-canary"] {
        cluster.rollout_done(&format!("deployment/{name}")).await;
    }

    // 1. The identity, and its token (Kubernetes before 1.24 keeps it in a
    //    Secret the token controller made).
    cluster.apply(&example("rbac.yaml")).await;
    let sa = cluster.get("serviceaccount", "greenlight").await;
    let secret_name = sa["secrets"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{sa:#}"));
    let secret = cluster.get("secret", secret_name).await;
    let token = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["token"].as_str().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();

    // 2. The plugins, pushed and granted the cluster with its CA.
    let d = Daemon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("cluster-ca.pem");
    std::fs::write(&ca, &cluster.ca_pem).unwrap();
    let plugins = Path::new(env!("GREENLIGHT_PLUGINS_DIR"));
    let server = cluster.server.as_str();
    let tls_ca = format!("{server}={}", ca.display());
    let secret = format!("kubernetes-token={token}");
    for (name, file) in [
        ("kubernetes-deployer", "kubernetes_deployer"),
        ("kubernetes-check", "kubernetes_check"),
    ] {
        let wasm = plugins.join(format!("{file}.wasm"));
        let wasm = wasm.to_str().unwrap();
        run(
            &d,
            &["plugin", "push", wasm, "--name", name, "--version", "1.0.0"],
        );
        run(
            &d,
            &[
                "plugin",
                "grant",
                name,
                "--allow-host",
                server,
                "--tls-ca",
                &tls_ca,
                "--secret",
                &secret,
            ],
        );
    }

    // 3. The environment, from the kubeconfig.
    let kubeconfig = cluster.kubeconfig.to_str().unwrap();
    let out = run(
        &d,
        &[
            "inventory",
            "import",
            "shop",
            "prod",
            "--kubeconfig",
            kubeconfig,
            "-l",
            "app.kubernetes.io/part-of=shop",
            "--containers",
            "web",
        ],
    );
    assert!(out.contains("shop-canary"), "{out}");

    // 4. The flow, its bake shortened for the test.
    let flow = example("flow.toml");
    let short = flow
        .replace(r#"bake = "10m""#, r#"bake = "2s""#)
        .replace(r#"check_interval = "2m""#, r#"check_interval = "1s""#);
    assert_ne!(
        short, flow,
        "the example flow no longer bakes as the test expects"
    );
    let flow_file = dir.path().join("flow.toml");
    std::fs::write(&flow_file, short).unwrap();
    run(&d, &["flow", "apply", flow_file.to_str().unwrap()]);

    // 5. The release, started and watched to its end.
    let id = cli_start_release(&d, "shop", "prod", "1.5.0", "kubernetes");
    // Blocking is fine here: the daemon is another process.
    let watched = run(&d, &["release", "watch", &id]);
    assert!(watched.contains("succeeded"), "{watched}");

    let new = "registry.example.com/shop:1.5.0";
    for name in ["shop-canary", "shop"] {
        let w = assert_rolled_out(&cluster, name, new).await;
        assert_eq!(w["metadata"]["generation"], 2, "{w:#}");
    }
}
