//! Plugin ownership, version approval and secret redaction: a plugin-author
//! publishes only under names it owns, a version runs under the plugin's
//! grant (hosts, configuration, secrets) only once an admin approved it, and
//! no granted secret's value leaves the sandbox in anything a plugin says.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::releases::{
    Recorder, apply_flow, put_environment, release_daemon, wait_status,
};
use crate::support::{Daemon, fixture};

const SECRET: &str = "prod-secret-7f3a9c";

/// Uploads a fixture as the holder of `token`.
async fn upload_as(d: &Daemon, token: &str, name: &str, version: &str) -> (u16, Value) {
    d.send(
        reqwest::Client::new()
            .post(d.url("/api/v1/plugins"))
            .bearer_auth(token)
            .query(&[("name", name), ("version", version)])
            .body(fixture("fixture_check")),
    )
    .await
}

/// Invokes a check version as the holder of `token`.
async fn invoke_as(d: &Daemon, token: &str, plugin: &str, params: Value) -> (u16, Value) {
    d.send(
        reqwest::Client::new()
            .post(d.url(&format!("/api/v1/plugins/{plugin}/invoke")))
            .bearer_auth(token)
            .json(&json!({
                "context": {"application": "shop", "environment": "prod", "version": "2.0.0", "parameters": params},
                "targets": [{"id": "web-1", "address": "127.0.0.1:1"}]
            })),
    )
    .await
}

fn metric(answer: &Value, name: &str) -> f64 {
    answer["output"]["verdict"]["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("no metric {name} in {answer}"))
}

async fn approve(d: &Daemon, plugin: &str, version: &str) -> (u16, Value) {
    d.send(
        d.request(
            Method::POST,
            &format!("/api/v1/plugins/{plugin}/{version}/approve"),
        )
        .json(&json!({"comment": "reviewed"})),
    )
    .await
}

#[tokio::test]
async fn a_plugin_author_cannot_publish_over_or_run_another_teams_plugin() {
    let d = Daemon::start().await;
    d.upload_ok("health", "fixture_check").await;
    d.grant("health", json!({"secrets": {"token": SECRET}}))
        .await;
    let mallory = d.create_token("mallory", "plugin-author").await;

    let (status, body) = upload_as(&d, &mallory, "health", "1.0.1").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "plugin.not_owner", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not among its owners"),
        "{body}"
    );
    let (_, detail) = d
        .send(d.request(Method::GET, "/api/v1/plugins/health"))
        .await;
    assert_eq!(detail["versions"].as_array().unwrap().len(), 1, "{detail}");

    // Nor may it run the plugin at will with its live grant.
    let (status, body) = invoke_as(&d, &mallory, "health/1.0.0", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "plugin.not_owner", "{body}");

    // The refusal is in the audit log, as denied.
    let (_, log) = d
        .send(d.request(Method::GET, "/api/v1/audit?limit=100"))
        .await;
    let denied = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "mallory" && e["outcome"] == "denied")
        .count();
    assert!(denied >= 2, "{log:#}");

    // An admin shares the plugin; then the author publishes, unapproved.
    let (status, body) = d
        .send(
            d.request(Method::PUT, "/api/v1/plugins/health/owners")
                .json(&json!({"owners": ["admin", "mallory"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload_as(&d, &mallory, "health", "1.0.1").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plugin"]["approved"], false, "{body}");
}

#[tokio::test]
async fn a_new_version_runs_without_the_grant_until_an_admin_approves_it() {
    let d = Daemon::start().await;
    let alice = d.create_token("alice", "plugin-author").await;
    let (status, body) = upload_as(&d, &alice, "probe", "1.0.0").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plugin"]["approved"], false, "{body}");
    d.grant(
        "probe",
        json!({"secrets": {"token": SECRET}, "config": {"greeting": "hi"}}),
    )
    .await;

    // Unapproved: it runs, but under the empty grant.
    let (status, answer) = invoke_as(&d, &alice, "probe/1.0.0", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["grant_applied"], false, "{answer}");
    assert_eq!(metric(&answer, "secret_len"), -1.0, "{answer}");

    // Only an admin approves.
    let (status, body) = d
        .send(
            reqwest::Client::new()
                .post(d.url("/api/v1/plugins/probe/1.0.0/approve"))
                .bearer_auth(&alice)
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = approve(&d, "probe", "1.0.0").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approved_by"], "admin", "{body}");
    let (status, answer) = invoke_as(&d, &alice, "probe/1.0.0", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["grant_applied"], true, "{answer}");
    assert_eq!(metric(&answer, "secret_len"), SECRET.len() as f64);

    // The next version does not inherit the approval.
    let (status, _) = upload_as(&d, &alice, "probe", "1.0.1").await;
    assert_eq!(status, 201);
    let (_, answer) = invoke_as(&d, &alice, "probe/1.0.1", json!({})).await;
    assert_eq!(metric(&answer, "secret_len"), -1.0, "{answer}");
    let (status, answer) = invoke_as(&d, &alice, "probe/latest", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["grant_applied"], false, "{answer}");

    // The approval is in the audit log with its comment.
    let (_, log) = d
        .send(d.request(Method::GET, "/api/v1/audit?limit=100"))
        .await;
    let approval = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "POST /api/v1/plugins/{name}/{version}/approve"
                && e["outcome"] == "allowed"
        })
        .unwrap_or_else(|| panic!("no approval audited: {log:#}"));
    assert_eq!(approval["comment"], "reviewed", "{approval}");
}

/// A one-stage flow whose check says the secret everywhere it can.
fn leaky_flow(recorder: &Recorder, flow_version: u32, plugin_version: &str) -> String {
    format!(
        r#"
name = "leaky"
version = {flow_version}

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
batch = "50%"
checks = [{{ plugin = "probe", version = "{plugin_version}", params = {{ mode = "leak-secret" }} }}]
"#,
        origin = recorder.origin()
    )
}

async fn start(d: &Daemon, flow_version: u32) -> (u16, Value) {
    d.send(d.request(Method::POST, "/api/v1/releases").json(&json!({
        "application": "shop", "environment": "prod", "version": "2.0.0",
        "flow": "leaky", "flow_version": flow_version
    })))
    .await
}

#[tokio::test]
async fn releases_run_only_approved_versions_and_never_show_a_secret() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    put_environment(&d, "shop", "prod", 2, &[]).await;
    let alice = d.create_token("alice", "plugin-author").await;
    let (status, _) = upload_as(&d, &alice, "probe", "1.0.0").await;
    assert_eq!(status, 201);
    d.grant("probe", json!({"secrets": {"token": SECRET}}))
        .await;
    apply_flow(&d, &leaky_flow(&recorder, 1, "latest")).await;

    // Nothing approved: a flow that names no version has nothing to run.
    let (status, body) = start(&d, 1).await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no version of plugin `probe` is approved"),
        "{body}"
    );

    let (status, _) = approve(&d, "probe", "1.0.0").await;
    assert_eq!(status, 200);
    let (status, _) = upload_as(&d, &alice, "probe", "1.0.1").await;
    assert_eq!(status, 201);
    apply_flow(&d, &leaky_flow(&recorder, 2, "1.0.1")).await;
    // A flow naming the unapproved version exactly is refused by name.
    let (status, body) = start(&d, 2).await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`probe@1.0.1` is not approved yet"),
        "{body}"
    );

    // The versionless flow runs 1.0.0, the highest approved version, under
    // the grant; what its check said is shown with the secret's name only.
    let (status, body) = start(&d, 1).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let done = wait_status(&d, &id, "succeeded").await;
    let shown = done.to_string();
    assert!(shown.contains("the token is [secret:token]"), "{done:#}");
    assert!(!shown.contains(SECRET), "{done:#}");
    let (_, journal) = d
        .send(d.request(Method::GET, &format!("/api/v1/releases/{id}/journal")))
        .await;
    assert!(!journal.to_string().contains(SECRET), "{journal:#}");
    let (_, events) = d
        .send(d.request(Method::GET, &format!("/api/v1/releases/{id}")))
        .await;
    assert!(!events.to_string().contains(SECRET));
}

#[tokio::test]
async fn a_secret_is_redacted_from_logs_stderr_and_errors() {
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    d.grant("probe", json!({"secrets": {"token": SECRET}}))
        .await;

    let answer = d
        .invoke(
            "probe",
            json!({"context": {"parameters": {"mode": "leak-secret"}}}),
        )
        .await;
    let text = answer.to_string();
    assert!(!text.contains(SECRET), "{answer:#}");
    assert_eq!(
        answer["output"]["verdict"]["summary"],
        "the token is [secret:token]"
    );
    assert_eq!(
        answer["logs"][0]["message"], "the token is [secret:token]",
        "{answer:#}"
    );
    assert!(
        answer["stderr"]
            .as_str()
            .unwrap()
            .contains("stderr says [secret:token]")
    );
    assert!(text.contains("len_[secret:token]"), "{answer:#}");

    let answer = d
        .invoke(
            "probe",
            json!({"context": {"parameters": {"mode": "leak-secret", "panic": "yes"}}}),
        )
        .await;
    assert_eq!(answer["status"], "failed", "{answer:#}");
    assert!(!answer.to_string().contains(SECRET), "{answer:#}");
    assert!(
        answer.to_string().contains("panicking with [secret:token]"),
        "{answer:#}"
    );
}
