//! Applying flows through the API and the CLI: every file in `tests/flows`
//! gives its stated outcome, and plugins are checked against the registry.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Daemon, binary, cli};

/// A daemon with the plugins the sample flows name.
async fn daemon_with_plugins() -> Daemon {
    let d = Daemon::start().await;
    for (name, fixture) in [
        ("sql-lint", "fixture_precheck"),
        ("agent", "fixture_deployer"),
        ("health", "fixture_check"),
        ("policy", "fixture_policy"),
        ("router", "fixture_traffic"),
        ("canary-judge", "canary_judge"),
    ] {
        d.upload_ok(name, fixture).await;
    }
    d
}

async fn apply(d: &Daemon, text: &str) -> (u16, Value) {
    d.send(
        d.request(reqwest::Method::POST, "/api/v1/flows")
            .header("content-type", "application/toml")
            .body(text.to_string()),
    )
    .await
}

#[tokio::test]
async fn every_sample_flow_gives_its_stated_outcome() {
    let d = daemon_with_plugins().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flows");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# expect: ");
        let (status, body) = apply(&d, &text).await;
        if expect == "ok" {
            assert_eq!(status, 201, "{}: {body}", path.display());
            let (again, body) = apply(&d, &text).await;
            assert_eq!((again, &body["created"]), (200, &Value::Bool(false)));
        } else {
            assert_eq!(
                (status, body["code"].as_str()),
                (400, Some("flow.invalid")),
                "{}: {body}",
                path.display()
            );
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(expect), "{}: `{message}`", path.display());
        }
    }
    let (_, flows) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/flows"))
        .await;
    let names: Vec<&str> = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "blue-green",
            "canary-analysis",
            "health-checked",
            "quiet-hours",
            "standard"
        ]
    );
}

#[tokio::test]
async fn plugins_must_exist_and_fit_their_place() {
    let d = daemon_with_plugins().await;
    let flow = r#"
name = "wrong"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "health" }
batch = 1
checks = [{ plugin = "nosuch" }, { plugin = "agent", version = "9.9.9" }]
"#;
    let (status, body) = apply(&d, flow).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    for needle in [
        "stages[0].deployer.plugin: `health` is a check plugin; a deployer plugin is needed here",
        "stages[0].checks[0].plugin: no plugin named `nosuch`",
        "stages[0].checks[1].plugin: no plugin `agent@9.9.9`",
    ] {
        assert!(
            message.contains(needle),
            "`{needle}` missing from `{message}`"
        );
    }
    let (missing, _) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/flows/wrong"))
        .await;
    assert_eq!(missing, 404, "a refused flow was stored");
}

#[tokio::test]
async fn a_flow_version_is_immutable() {
    let d = daemon_with_plugins().await;
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flows/blue-green.toml"),
    )
    .unwrap();
    assert_eq!(apply(&d, &text).await.0, 201);
    let changed = text.replace("bake_per_step = \"5m\"", "bake_per_step = \"1m\"");
    let (status, body) = apply(&d, &changed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("flow.version_exists"))
    );
    let bumped = changed.replace("version = 3", "version = 4");
    assert_eq!(apply(&d, &bumped).await.0, 201);
    let (_, versions) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/flows/blue-green"))
        .await;
    assert_eq!(versions[0]["version"], 3);
    assert_eq!(versions[1]["version"], 4);
    assert!(versions[1]["source"].as_str().unwrap().contains("\"1m\""));
}

#[tokio::test]
async fn flows_are_applied_from_the_cli() {
    let d = daemon_with_plugins().await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flows/standard.toml");
    let out = std::process::Command::new(binary())
        .args(["flow", "apply"])
        .arg(&file)
        .env("GREENLIGHT_URL", &d.base)
        .env("GREENLIGHT_TOKEN", &d.token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Applied standard@1"), "{stdout}");
    assert!(stdout.contains("3. go-ahead (approval)"), "{stdout}");

    let (ok, out, err) = cli(&d, &["flow", "list", "--json"]);
    assert!(ok, "{err}");
    let flows: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(flows.as_array().map(Vec::len), Some(1), "{flows:#}");
    assert_eq!(
        (
            &flows[0]["name"],
            &flows[0]["version"],
            &flows[0]["applied_by"]
        ),
        (&json!("standard"), &json!(1), &json!("admin")),
        "{flows:#}"
    );
    assert!(
        flows[0]["source"]
            .as_str()
            .is_some_and(|s| s.contains("name = \"standard\"")),
        "{flows:#}"
    );

    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flows/batch-over-half.toml");
    let out = std::process::Command::new(binary())
        .args(["flow", "apply"])
        .arg(&bad)
        .env("GREENLIGHT_URL", &d.base)
        .env("GREENLIGHT_TOKEN", &d.token)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flow.invalid (400): stages[0].batch: 60% is not allowed"),
        "{stderr}"
    );
    let (ok, out, err) = cli(&d, &["flow", "apply", bad.to_str().unwrap(), "--json"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("flow.invalid (400): stages[0].batch: 60% is not allowed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_release_is_planned_without_running_anything() {
    let d = daemon_with_plugins().await;
    let standard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flows/standard.toml"),
    )
    .unwrap();
    assert_eq!(apply(&d, &standard).await.0, 201);
    let targets: Vec<Value> = (0..10)
        .map(|i| serde_json::json!({"id": format!("web-{i}"), "address": format!("10.0.0.{i}:80")}))
        .collect();
    let (status, plan) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/flows/standard/plan")
                .json(&serde_json::json!({"targets": targets})),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let kinds: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["precheck", "deploy", "approval", "deploy"]);
    assert_eq!(plan[1]["batches"], serde_json::json!([["web-0"]]));
    assert_eq!(plan[1]["bake_ms"], 600_000);
    let rollout: Vec<usize> = plan[3]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_array().unwrap().len())
        .collect();
    assert_eq!(rollout, [3, 3, 3]);
    assert_eq!(
        plan[3]["plugins"],
        serde_json::json!(["agent@1.0.0", "health@latest"])
    );
    assert_eq!(plan[2]["approvers"], 2);

    // A fixed batch size larger than half the environment is refused.
    let two = r#"
name = "pairs"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "agent" }
batch = 2
"#;
    assert_eq!(apply(&d, two).await.0, 201);
    let (status, err) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/flows/pairs/plan")
                .json(&serde_json::json!({"targets": [{"id": "a"}, {"id": "b"}, {"id": "c"}]})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("flow.invalid")),
        "{err}"
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("stages[0].batch: a batch of 2 is more than 50% of the 3 targets"),
        "{err}"
    );
    let (status, _) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/flows/nosuch/plan")
                .json(&serde_json::json!({"targets": [{"id": "a"}]})),
        )
        .await;
    assert_eq!(status, 404);
}
