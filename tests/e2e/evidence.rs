//! No release passes on no evidence: a round in which every check measured
//! nothing pauses as verified by nothing, whether the default policy or a
//! policy plugin rules on it, until a human resumes; the release, its
//! stage and `release show` say so.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::releases::{
    Recorder, apply_flow, command, put_environment, release_daemon, start_release, wait_status,
};
use crate::support::{Daemon, binary};

/// A rolling flow over halves of the fleet, verified by `checks`, ruled on
/// by `policy` when given.
fn flow(recorder: &Recorder, checks: &[&str], policy: Option<&str>) -> String {
    let origin = recorder.origin();
    let checks: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                r#"{{ plugin = "{c}", params = {{ mode = "remote", url = "{origin}/verdict" }} }}"#
            )
        })
        .collect();
    let policy = policy
        .map(|p| format!(r#"policy = {{ plugin = "{p}" }}"#))
        .unwrap_or_default();
    format!(
        r#"
name = "quiet"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
batch = "50%"
checks = [{checks}]
{policy}
"#,
        checks = checks.join(", ")
    )
}

/// A daemon with `shop/prod` of two targets and the fixture check uploaded
/// under each of `checks`' names.
async fn quiet_shop(recorder: &Recorder, checks: &[&str], policy: Option<&str>) -> Daemon {
    let d = release_daemon(recorder).await;
    for name in checks.iter().filter(|c| **c != "health") {
        d.upload_ok(name, "fixture_check").await;
        d.grant(name, json!({"allowed_hosts": [recorder.origin()]}))
            .await;
    }
    if let Some(name) = policy {
        d.upload_ok(name, "threshold_policy").await;
    }
    apply_flow(&d, &flow(recorder, checks, policy)).await;
    put_environment(&d, "shop", "prod", 2, &[]).await;
    d
}

async fn show(d: &Daemon, id: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(binary())
            .args(["release", "show", id])
            .env("GREENLIGHT_URL", &d.base)
            .env("GREENLIGHT_TOKEN", &d.token)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("`greenlight release show` finished")
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn current_version(d: &Daemon) -> Value {
    let (_, env) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/apps/shop/envs/prod"))
        .await;
    env["current_version"].clone()
}

#[tokio::test]
async fn a_round_of_no_data_pauses_as_verified_by_nothing_until_a_human_resumes() {
    let recorder = Recorder::start().await;
    let checks = ["health", "latency", "saturation"];
    let d = quiet_shop(&recorder, &checks, None).await;
    recorder.verdicts("rollout", &["no-data no requests yet"; 3]);
    let id = start_release(&d, "shop", "prod", "2.0.0", "quiet").await;

    let paused = wait_status(&d, &id, "paused").await;
    let nothing = "verified by nothing: all 3 checks returned no data";
    assert_eq!(paused["pause"]["by"], "default-policy");
    assert_eq!(
        paused["pause"]["reason"],
        "verified by nothing at stage rollout, batch 1: all 3 checks returned no data"
    );
    assert_eq!(paused["decisions"][0]["ruling"], "pause");
    assert_eq!(paused["decisions"][0]["unverified"], nothing);
    assert_eq!(paused["stages"][0]["unverified"], nothing, "{paused:#}");
    let shown = show(&d, &id).await;
    assert!(
        shown.contains(&format!("  1. rollout (deploy)\n       {nothing}\n")),
        "{shown}"
    );
    assert!(shown.contains("by default-policy: verified by nothing at stage rollout, batch 1"));
    assert_eq!(recorder.calls_of("deploy").len(), 1, "the next batch waits");

    let (status, body) = command(&d, &id, "resume", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let done = wait_status(&d, &id, "succeeded").await;
    assert_eq!(
        done["stages"][0]["unverified"],
        "verified by nothing in 1 of 2 rounds: all 3 checks returned no data",
        "the second batch's checks passed: {done:#}"
    );
    assert_eq!(done["decisions"][1]["unverified"], Value::Null);
    assert_eq!(current_version(&d).await, "2.0.0");
}

/// `threshold-policy` skips `no-data` verdicts and would proceed on a
/// round of them ("no breach in 1 observations"); the engine holds it.
#[tokio::test]
async fn a_policy_plugin_cannot_pass_a_round_verified_by_nothing() {
    let recorder = Recorder::start().await;
    let d = quiet_shop(&recorder, &["health"], Some("threshold")).await;
    recorder.verdicts("rollout", &["no-data no requests yet"]);
    let id = start_release(&d, "shop", "prod", "2.0.0", "quiet").await;

    let paused = wait_status(&d, &id, "paused").await;
    assert_eq!(paused["pause"]["by"], "engine");
    assert_eq!(
        paused["pause"]["reason"],
        "verified by nothing at stage rollout, batch 1: its only check, health@1.0.0, \
         returned no data; threshold@1.0.0 would have proceeded: no breach in 1 observations",
        "{paused:#}"
    );
    assert_eq!(
        paused["stages"][0]["unverified"],
        "verified by nothing: its only check, health@1.0.0, returned no data"
    );

    let (status, body) = command(&d, &id, "resume", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let done = wait_status(&d, &id, "succeeded").await;
    let last = &done["decisions"][1];
    assert_eq!(
        (&last["ruling"], &last["by"]),
        (&json!("proceed"), &json!("threshold@1.0.0"))
    );
    assert_eq!(current_version(&d).await, "2.0.0");
}
