//! What a deployer answers is checked against what it was asked: an answer
//! for a target it was not given, or for none, fails the call as a plugin
//! error, which the stage retries and, when the attempts run out, rolls
//! back. Through the real path: the API, the engine, wasmtime and the
//! fixture deployer.

use serde_json::Value;

use crate::support::Daemon;
use crate::support::releases::{
    Recorder, advance, apply_flow, put_environment, release_daemon, start_release, wait_on,
    wait_status,
};

/// A rolling flow over halves of the fleet whose deployer is given
/// `answer` (`answer-for = "web-9"`, `answer = "none"`) as parameters.
fn flow(recorder: &Recorder, name: &str, answer: &str) -> String {
    format!(
        r#"
name = "{name}"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls", {answer} }} }}
batch = "50%"
checks = [{{ plugin = "health", params = {{ mode = "remote", url = "{origin}/verdict" }} }}]
"#,
        origin = recorder.origin()
    )
}

/// The journaled `deploy-failed` events of a release.
async fn deploy_failures(d: &Daemon, id: &str, at_least: usize) -> Vec<Value> {
    let journal = wait_on(
        d,
        &format!("/api/v1/releases/{id}/journal"),
        Some(id),
        "a failed deploy",
        |events| failures(events).len() >= at_least,
    )
    .await;
    failures(&journal)
}

fn failures(journal: &Value) -> Vec<Value> {
    journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "deploy-failed")
        .map(|e| e["detail"].clone())
        .collect()
}

/// Lets every attempt of the first batch fail: after each failure the
/// clock passes the retry's backoff, until the third attempt fails and
/// the release rolls back.
async fn every_attempt_fails(d: &Daemon, id: &str) -> (Vec<Value>, Value) {
    for attempt in 1..3 {
        deploy_failures(d, id, attempt).await;
        advance(d, 60_000).await;
    }
    let done = wait_status(d, id, "rolled-back").await;
    (deploy_failures(d, id, 3).await, done)
}

#[tokio::test]
async fn a_deployer_answering_for_targets_it_was_not_given_is_rolled_back() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &flow(&recorder, "stranger", r#"answer-for = "web-9""#)).await;
    apply_flow(&d, &flow(&recorder, "silent", r#"answer = "none""#)).await;
    put_environment(&d, "shop", "prod", 2, &[]).await;

    let cases = [
        (
            "stranger",
            "the deployer agent@1.0.0 answered for `web-9`, which it was not given; \
             it did not answer for `web-0`",
        ),
        (
            "silent",
            "the deployer agent@1.0.0 answered for no target; it did not answer for `web-0`",
        ),
    ];
    for (flow, message) in cases {
        let before = recorder.calls_of("deploy").len();
        let id = start_release(&d, "shop", "prod", "2.0.0", flow).await;
        let (failed, done) = every_attempt_fails(&d, &id).await;

        let attempts: Vec<(u64, bool, &str)> = failed
            .iter()
            .map(|f| {
                (
                    f["attempt"].as_u64().unwrap(),
                    f["retryable"].as_bool().unwrap(),
                    f["message"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            attempts,
            [(1, true, message), (2, true, message), (3, true, message)],
            "{flow}"
        );
        let deploys = &recorder.calls_of("deploy")[before..];
        let keys: Vec<&str> = deploys.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [1, 2, 3].map(|n| format!("{id}/0/{n}")),
            "one call per attempt, each with its key"
        );
        let outcome = done["outcome"].as_str().unwrap();
        assert!(
            outcome.contains("deploy failed at stage rollout, batch 1")
                && outcome.contains(message),
            "{flow}: {outcome}"
        );
        // No target counts as deployed or verified on the deployer's word,
        // and the environment keeps no record of the version.
        let states: Vec<&str> = done["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["pending", "pending"], "{done:#}");
        assert!(done["decisions"].as_array().unwrap().is_empty(), "{done:#}");
        let (_, env) = d
            .send(d.request(reqwest::Method::GET, "/api/v1/apps/shop/envs/prod"))
            .await;
        assert_eq!(env["current_version"], Value::Null, "{env:#}");
    }
    assert_eq!(
        recorder
            .calls_of("rollback")
            .iter()
            .map(|c| c.targets.clone())
            .collect::<Vec<_>>(),
        [vec!["web-0".to_string()], vec!["web-0".to_string()]],
        "each release put its first batch back"
    );
}

#[tokio::test]
async fn a_traffic_shift_that_does_not_read_back_is_a_failed_shift() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    let origin = recorder.origin();
    apply_flow(
        &d,
        &format!(
            r#"
name = "switch"
version = 1

[[stages]]
name = "switch"
kind = "deploy"
strategy = "blue-green"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
traffic = {{ plugin = "router", params = {{ ignore-weights = "true" }} }}
steps = [10, 100]
checks = [{{ plugin = "health", params = {{ mode = "remote", url = "{origin}/verdict" }} }}]
"#
        ),
    )
    .await;
    put_environment(&d, "shop", "prod", 4, &["blue", "green"]).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "switch").await;
    let journal = wait_on(
        &d,
        &format!("/api/v1/releases/{id}/journal"),
        Some(&id),
        "a failed shift",
        |events| {
            events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "traffic-failed")
        },
    )
    .await;
    let events = journal.as_array().unwrap();
    let failed = events
        .iter()
        .find(|e| e["kind"] == "traffic-failed")
        .unwrap();
    assert_eq!(
        failed["detail"]["message"],
        "the traffic plugin router@1.0.0 reads back no weights after being set to \
         blue 90%, green 10%: the shift did not take",
        "{failed:#}"
    );
    assert_eq!(failed["detail"]["retryable"], true, "{failed:#}");
    assert!(
        !events.iter().any(|e| e["kind"] == "traffic-shifted"),
        "a shift that did not take is not journaled as made"
    );
}

#[tokio::test]
async fn a_plugin_error_reads_once_with_its_code_in_the_release() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &crate::support::releases::standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 2, &[]).await;
    // The deployer may no longer reach where it records its calls.
    d.grant("agent", serde_json::json!({"allowed_hosts": []}))
        .await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    let stopped = crate::support::releases::wait_for(&d, &id, "the denied deploy", |r| {
        r["rollback"]["reason"]
            .as_str()
            .is_some_and(|s| s.contains("host_denied"))
    })
    .await;
    let reason = stopped["rollback"]["reason"].as_str().unwrap();
    // The error names its fix: the recorder is no target of the release,
    // so granting its origin is the way.
    let expected = format!(
        "agent@1.0.0 host_denied: outbound HTTP to {0} is not granted; an admin grants it \
         with `greenlight plugin grant agent --allow-host {0}`",
        recorder.origin()
    );
    assert!(reason.contains(&expected), "{reason}");
    assert!(!reason.contains("host_denied: host_denied"), "{reason}");
}
