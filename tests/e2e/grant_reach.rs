//! Grants that follow the release: a plugin may call the targets the
//! inventory lists for the release it works for; grants are edited entry
//! by entry; flow and inventory changes warn of a grant that reaches only
//! some of an environment's targets; a refused request names its fix.

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::bundled::{context, daemon_with, origin, serve};
use crate::support::{Daemon, cli, error_code, verdict};

/// A target whose `/ready` answers 200.
async fn healthy() -> std::net::SocketAddr {
    serve(Router::new().route("/ready", get(|| async { "ready" }))).await
}

fn check(targets: &[(&str, String)]) -> Value {
    json!({
        "context": context(json!({"path": "/ready"})),
        "targets": targets.iter().map(|(id, address)| json!({"id": id, "address": address})).collect::<Vec<_>>(),
    })
}

async fn put_targets(d: &Daemon, env: &str, targets: &[(&str, String)]) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(id, address)| json!({"id": id, "address": address}))
        .collect();
    let (status, body) = d
        .send(
            d.request(
                reqwest::Method::PUT,
                &format!("/api/v1/apps/shop/envs/{env}"),
            )
            .json(&json!({ "targets": targets })),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    body
}

#[tokio::test]
async fn a_grant_of_the_release_targets_follows_the_inventory() {
    let (a, b) = (healthy().await, healthy().await);
    let d = daemon_with("health", "http_health").await;
    put_targets(&d, "prod", &[("web-1", a.to_string())]).await;
    let (ok, out, err) = cli(
        &d,
        &["plugin", "grant", "health", "--allow-release-targets"],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("and the targets of its releases, as the inventory lists them"),
        "{out}"
    );

    let answer = d.invoke("health", check(&[("web-1", a.to_string())])).await;
    assert_eq!(verdict(&answer)["status"], "pass", "{answer}");

    // web-2 is not in the inventory yet: its origin is not granted, and
    // the error says how to grant it.
    let both = check(&[("web-1", a.to_string()), ("web-2", b.to_string())]);
    let answer = d.invoke("health", both.clone()).await;
    assert_eq!(error_code(&answer), "host_denied", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    let expected = format!(
        "outbound HTTP to {} is not granted; an admin grants it with \
         `greenlight plugin grant health --allow-host {}`",
        origin(b),
        origin(b)
    );
    assert!(message.starts_with(&expected), "{message}");

    // Once the inventory lists it, the same grant reaches it.
    put_targets(
        &d,
        "prod",
        &[("web-1", a.to_string()), ("web-2", b.to_string())],
    )
    .await;
    let answer = d.invoke("health", both.clone()).await;
    assert_eq!(verdict(&answer)["status"], "pass", "{answer}");
    assert_eq!(answer["http_requests"], 2, "{answer}");

    // Another environment's targets are not this release's.
    let mut staging = both.clone();
    staging["context"]["environment"] = json!("staging");
    let answer = d.invoke("health", staging).await;
    assert_eq!(error_code(&answer), "host_denied", "{answer}");

    // Taken back, the grant names no host: web-1 is refused, and the error
    // says it is a target and how to let the plugin call every target.
    let (ok, out, err) = cli(&d, &["plugin", "grant", "health", "--no-release-targets"]);
    assert!(ok, "{out}{err}");
    let answer = d.invoke("health", both).await;
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "is not granted; it is the address of target web-1: an admin lets the plugin \
             call every target of its releases with `greenlight plugin grant health \
             --allow-release-targets`, or this origin alone with `greenlight plugin grant \
             health --allow-host {}`",
            origin(a)
        )),
        "{message}"
    );
}

#[tokio::test]
async fn grant_edits_add_and_remove_entries_and_keep_the_rest() {
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    let grant = |args: &[&str]| {
        let mut all = vec!["plugin", "grant", "probe"];
        all.extend_from_slice(args);
        cli(&d, &all)
    };
    let shown = || async {
        let (_, plugin) = d
            .send(d.request(reqwest::Method::GET, "/api/v1/plugins/probe"))
            .await;
        plugin["grant"].clone()
    };
    let (ok, out, err) = grant(&[
        "--allow-host",
        "http://10.0.0.1:9090",
        "--secret",
        "token=s3cret",
        "--config",
        "tier=gold",
        "--deadline-ms",
        "9000",
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = grant(&["--allow-host", "http://10.0.0.2:9090", "--memory-mib", "64"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Grant of probe changed."), "{out}");
    let g = shown().await;
    assert_eq!(
        g["allowed_hosts"],
        json!(["http://10.0.0.1:9090", "http://10.0.0.2:9090"]),
        "{g}"
    );
    assert_eq!(g["secret_names"], json!(["token"]), "{g}");
    assert_eq!(g["config"], json!({"tier": "gold"}), "{g}");
    assert_eq!(
        g["limits"],
        json!({"deadline_ms": 9000, "memory_mib": 64}),
        "{g}"
    );

    let (ok, out, err) = grant(&[
        "--remove-host",
        "http://10.0.0.1:9090",
        "--remove-config",
        "tier",
        "--reset-limit",
        "deadline_ms",
    ]);
    assert!(ok, "{out}{err}");
    let g = shown().await;
    assert_eq!(g["allowed_hosts"], json!(["http://10.0.0.2:9090"]), "{g}");
    assert_eq!(g["config"], json!({}), "{g}");
    assert_eq!(g["limits"], json!({"memory_mib": 64}), "{g}");
    assert_eq!(g["secret_names"], json!(["token"]), "{g}");

    // A removal of what the grant does not hold is refused, naming it,
    // and changes nothing.
    let (ok, _, err) = grant(&[
        "--remove-host",
        "http://10.0.0.1:9090",
        "--remove-secret",
        "token",
    ]);
    assert!(!ok);
    assert!(
        err.contains(
            "remove_hosts[0]: `http://10.0.0.1:9090` is not among the grant's allowed_hosts"
        ),
        "{err}"
    );
    assert_eq!(shown().await["secret_names"], json!(["token"]));
    let (ok, _, err) = grant(&[]);
    assert!(!ok);
    assert!(err.contains("nothing to change"), "{err}");

    // --replace makes the grant exactly what it is given.
    let (ok, out, err) = grant(&["--replace", "--allow-host", "http://10.0.0.3:9090"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Grant of probe replaced."), "{out}");
    let g = shown().await;
    assert_eq!(g["allowed_hosts"], json!(["http://10.0.0.3:9090"]), "{g}");
    assert_eq!(g["secret_names"], json!([]), "{g}");
    assert_eq!(g["limits"], json!({}), "{g}");

    let (status, body) = d
        .send(
            d.request(reqwest::Method::PATCH, "/api/v1/plugins/nope/grant")
                .json(&json!({"allow_hosts": ["http://10.0.0.3:9090"]})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PATCH, "/api/v1/plugins/probe/grant")
                .json(&json!({"allow_hosts": ["10.0.0.3:9090"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("allow_hosts[0]: "),
        "{body}"
    );
}

const FLOW: &str = r#"
name = "verified"
version = 1

[[stages]]
name = "verify"
kind = "verify"
checks = [{ plugin = "health", params = { path = "/ready" } }]
"#;

#[tokio::test]
async fn flow_and_inventory_changes_warn_of_a_grant_that_reaches_some_targets() {
    let d = daemon_with("health", "http_health").await;
    let web = |i: u8| {
        (
            format!("10.0.0.{i}:8080"),
            format!("http://10.0.0.{i}:8080"),
        )
    };
    put_targets(&d, "prod", &[("web-1", web(1).0), ("web-2", web(2).0)]).await;
    put_targets(&d, "beta", &[("beta-1", web(9).0)]).await;
    d.grant("health", json!({"allowed_hosts": [web(1).1]}))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flow.toml");
    std::fs::write(&file, FLOW).unwrap();
    let (ok, out, err) = cli(&d, &["flow", "apply", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let expected = format!(
        "warning: flow verified stages[0].checks[0]: plugin `health` may call 1 of the 2 \
         targets of shop/prod, not web-2 ({}); let it call every target of its releases \
         with `greenlight plugin grant health --allow-release-targets`",
        web(2).1
    );
    assert!(err.contains(&expected), "{err}");
    // beta's one target is not granted at all: the plugin is taken as not
    // calling beta's targets, so nothing is said of it.
    assert_eq!(err.matches("warning:").count(), 1, "{err}");

    // The inventory grows past the grant: putting it warns, through the API.
    let body = put_targets(
        &d,
        "prod",
        &[
            ("web-1", web(1).0),
            ("web-2", web(2).0),
            ("web-3", web(3).0),
        ],
    )
    .await;
    let warnings = body["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{body}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("may call 1 of the 3 targets of shop/prod, not web-2"),
        "{body}"
    );

    // A grant that follows the release silences it.
    let (ok, out, err) = cli(
        &d,
        &["plugin", "grant", "health", "--allow-release-targets"],
    );
    assert!(ok, "{out}{err}");
    let body = put_targets(&d, "prod", &[("web-1", web(1).0), ("web-4", web(4).0)]).await;
    assert_eq!(body.get("warnings"), None, "{body}");
}
