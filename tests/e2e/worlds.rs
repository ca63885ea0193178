//! One healthy plugin per world, uploaded and invoked through the API.

use serde_json::json;

use crate::support::{Daemon, verdict};

#[tokio::test]
async fn a_check_uses_its_kv_config_secret_and_clock() {
    let d = Daemon::start().await;
    let up = d.upload_ok("probe", "fixture_check").await;
    assert_eq!(up["plugin"]["kind"], "check");
    d.grant(
        "probe",
        json!({"config": {"greeting": "hello"}, "secrets": {"token": "s3cret"}}),
    )
    .await;
    let first = d.verify("probe", json!({})).await;
    let v = verdict(&first);
    assert_eq!(v["status"], "pass");
    assert_eq!(v["summary"], "1 targets healthy, greeting=hello");
    let metric = |answer: &serde_json::Value, name: &str| {
        answer["output"]["verdict"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no metric {name}: {answer}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(metric(&first, "secret_len"), 6.0);
    assert!(
        metric(&first, "now_ms") > 1.7e12,
        "the release clock is wall time"
    );
    assert_eq!(first["logs"][0]["message"], "verifying");
    assert_eq!(first["logs"][0]["fields"]["targets"], "1");
    // The kv store keeps the counter between invocations.
    let second = d.verify("probe", json!({})).await;
    assert_eq!(
        metric(&first, "invocations") + 1.0,
        metric(&second, "invocations")
    );
    // The secret is never shown back.
    let (_, detail) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins/probe"))
        .await;
    assert_eq!(detail["grant"]["secret_names"], json!(["token"]));
    assert!(!detail.to_string().contains("s3cret"), "{detail}");
}

/// A check built without the standard library imports no WASI interface at
/// all, and the daemon takes it and runs it like any other check.
#[tokio::test]
async fn a_check_built_without_std_imports_only_the_platform_and_runs() {
    let d = Daemon::start().await;
    let up = d.upload_ok("lean", "fixture_no_std_check").await;
    assert_eq!(up["plugin"]["kind"], "check", "{up}");
    let imports: Vec<&str> = up["plugin"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(!imports.is_empty(), "{up}");
    assert!(
        imports.iter().all(|i| i.starts_with("greenlight:plugin/")),
        "{imports:?}"
    );
    let std_built = d.upload_ok("probe", "fixture_check").await;
    assert!(
        std_built["plugin"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("wasi:")),
        "the std-built check is the one with WASI imports: {std_built}"
    );
    let answer = d.verify("lean", json!({})).await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "fail");
    assert_eq!(v["summary"], "fixture failure");
    assert_eq!(v["metrics"][0]["name"], "error_rate");
}

#[tokio::test]
async fn a_precheck_marks_destructive_migrations_forward_only() {
    let d = Daemon::start().await;
    assert_eq!(
        d.upload_ok("sql", "fixture_precheck").await["plugin"]["kind"],
        "precheck"
    );
    let answer = d
        .invoke(
            "sql",
            json!({"artifacts": [
                {"kind": "sql-migration", "name": "001.sql", "content": "ALTER TABLE a ADD b int;"},
                {"kind": "sql-migration", "name": "002.sql", "content": "drop table legacy;"}
            ]}),
        )
        .await;
    assert_eq!(
        answer["output"]["precheck"]["forward_only"], true,
        "{answer}"
    );
    assert_eq!(answer["output"]["precheck"]["verdict"]["status"], "pass");
}

#[tokio::test]
async fn a_deployer_recognises_a_retried_batch_by_its_idempotency_key() {
    let d = Daemon::start().await;
    assert_eq!(
        d.upload_ok("agent", "fixture_deployer").await["plugin"]["kind"],
        "deployer"
    );
    let body = json!({
        "function": "deploy",
        "idempotency_key": "rel-1/batch-0/attempt-1",
        "context": {"version": "2.0.0"},
        "targets": [{"id": "web-1", "address": "10.0.0.1:80"}, {"id": "web-2", "address": "10.0.0.2:80"}]
    });
    let first = d.invoke("agent", body.clone()).await;
    let results = &first["output"]["targets"]["ok"];
    assert_eq!(
        results[0]["message"], "deployed 2.0.0 to 10.0.0.1:80",
        "{first}"
    );
    let again = d.invoke("agent", body).await;
    assert_eq!(
        again["output"]["targets"]["ok"][1]["message"],
        "already deployed (rel-1/batch-0/attempt-1)"
    );
    // A call that needs a key and has none is refused before the plugin runs.
    let (status, err) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/plugins/agent/latest/invoke")
                .json(&json!({"function": "rollback"})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("invoke.bad_input"))
    );
    assert!(
        err["message"].as_str().unwrap().contains("idempotency_key"),
        "{err}"
    );
}

#[tokio::test]
async fn traffic_weights_are_set_and_read_back() {
    let d = Daemon::start().await;
    d.upload_ok("router", "fixture_traffic").await;
    let set = d
        .invoke(
            "router",
            json!({"function": "set-weights", "weights": [{"group": "blue", "percent": 90}, {"group": "green", "percent": 10}]}),
        )
        .await;
    assert_eq!(set["output"]["done"], json!({"ok": null}), "{set}");
    let bad = d
        .invoke(
            "router",
            json!({"function": "set-weights", "weights": [{"group": "blue", "percent": 90}]}),
        )
        .await;
    assert_eq!(bad["output"]["done"]["fault"]["retryable"], false, "{bad}");
    let now = d
        .invoke("router", json!({"function": "current-weights"}))
        .await;
    assert_eq!(
        now["output"]["weights"]["ok"],
        json!([{"group": "blue", "percent": 90}, {"group": "green", "percent": 10}])
    );
}

#[tokio::test]
async fn a_policy_rolls_back_on_a_failed_check() {
    let d = Daemon::start().await;
    d.upload_ok("policy", "fixture_policy").await;
    let answer = d
        .invoke(
            "policy",
            json!({"observations": [
                {"check": "http-health", "stage": "canary", "verdict": {"status": "pass", "summary": "ok"}},
                {"check": "error-rate", "stage": "rolling", "batch": 2, "verdict": {"status": "fail", "summary": "error_rate 7.2% > 5%"}}
            ]}),
        )
        .await;
    let decision = &answer["output"]["decision"];
    assert_eq!(decision["kind"], "rollback", "{answer}");
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("error_rate 7.2% > 5%")
    );
}

#[tokio::test]
async fn a_notifier_accepts_events_and_reports_its_own_failure() {
    let d = Daemon::start().await;
    d.upload_ok("notify", "fixture_notifier").await;
    let ok = d
        .invoke(
            "notify",
            json!({"event": {"kind": "succeeded", "message": "shop 2.0.0 is out"}}),
        )
        .await;
    assert_eq!(ok["output"]["done"], json!({"ok": null}), "{ok}");
    let refused = d
        .invoke(
            "notify",
            json!({"context": {"parameters": {"fail": "true"}}, "event": {"kind": "succeeded"}}),
        )
        .await;
    assert_eq!(
        refused["output"]["done"]["fault"],
        json!({"message": "notifier refused", "retryable": true})
    );
}

/// A deployer of interface 0.2.0 is served beside those of 0.1.0: its
/// finished work reads like theirs, it sees the targets' attributes, and
/// work still in progress is answered as such, with the plugin's note.
#[tokio::test]
async fn a_deployer_of_interface_0_2_0_is_served_beside_0_1_0() {
    let d = Daemon::start().await;
    let up = d.upload_ok("kube", "fixture_deployer_v2").await;
    assert_eq!(up["plugin"]["kind"], "deployer", "{up}");
    assert!(
        up["plugin"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().ends_with("@0.2.0")),
        "{up}"
    );
    let body = |steps: &str| {
        json!({
            "function": "deploy",
            "idempotency_key": format!("rel-1/batch-0/{steps}"),
            "context": {"version": "2.0.0", "parameters": {"steps": steps}},
            "targets": [{
                "id": "web-1",
                "address": "10.0.0.1:80",
                "attributes": {"cluster": "https://127.0.0.1:6443", "name": "web"}
            }]
        })
    };
    let done = d.invoke("kube", body("0")).await;
    assert_eq!(
        done["output"]["targets"]["ok"][0]["message"],
        "deployed 2.0.0 after 1 questions (2 attributes)",
        "{done}"
    );
    let waiting = d.invoke("kube", body("2")).await;
    assert_eq!(
        waiting["output"]["in_progress"],
        json!({"note": "1 of 3 steps done", "ask_again_after_ms": 100}),
        "{waiting}"
    );
}
