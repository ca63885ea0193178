//! Releases end to end: the real daemon on a manual clock, real sled, real
//! wasmtime and the fixture plugins, with a recorder seeing every deploy and
//! rollback call and deciding the checks' verdicts.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::releases::{
    CLOCK_START_MS, RecordedCall, Recorder, advance, apply_flow, command, journal, put_environment,
    release, release_daemon, set_clock, standard_flow, start_release, wait_for, wait_status,
};
use crate::support::{Daemon, assert_refused};

const MINUTE: u64 = 60_000;

/// A daemon with the standard flow and `shop/prod` of `n` targets.
async fn shop(recorder: &Recorder, n: usize) -> Daemon {
    let d = release_daemon(recorder).await;
    apply_flow(&d, &standard_flow(recorder)).await;
    put_environment(&d, "shop", "prod", n, &[]).await;
    d
}

/// Waits until the canary's first check round is decided.
async fn canary_baking(d: &Daemon, id: &str) -> Value {
    wait_for(d, id, "the canary bake", |r| !r["next_check_ms"].is_null()).await
}

/// Takes a release past the canary's bake to the approval gate.
async fn to_the_gate(d: &Daemon, id: &str) -> Value {
    canary_baking(d, id).await;
    advance(d, 10 * MINUTE).await;
    wait_status(d, id, "waiting-approval").await
}

fn decisions(r: &Value) -> Vec<(String, String)> {
    r["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["ruling"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn distinct_targets(calls: &[RecordedCall]) -> usize {
    calls
        .iter()
        .flat_map(|c| c.targets.iter())
        .collect::<BTreeSet<_>>()
        .len()
}

async fn current_version(d: &Daemon) -> Value {
    let (_, env) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/apps/shop/envs/prod"))
        .await;
    env["current_version"].clone()
}

#[tokio::test]
async fn a_canary_and_rolling_release_succeeds() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 8).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;

    let baking = canary_baking(&d, &id).await;
    assert_eq!(baking["status"], "running");
    assert_eq!(
        baking["bake_until_ms"].as_u64(),
        Some(CLOCK_START_MS + 10 * MINUTE),
        "{baking:#}"
    );
    let gate = {
        advance(&d, 10 * MINUTE).await;
        wait_status(&d, &id, "waiting-approval").await
    };
    assert_eq!(gate["gate"]["stage"], "go-ahead");
    assert_eq!(
        gate["gate"]["expires_at_ms"].as_u64(),
        Some(CLOCK_START_MS + 70 * MINUTE)
    );
    let (status, body) = command(&d, &id, "approve", json!({"comment": "canary is fine"})).await;
    assert_eq!(status, 200, "{body}");
    let done = wait_status(&d, &id, "succeeded").await;

    // One canary call, then batches of two (25% of 8) over the other seven.
    let deploys = recorder.calls_of("deploy");
    let sizes: Vec<usize> = deploys.iter().map(|c| c.targets.len()).collect();
    assert_eq!(sizes, [1, 2, 2, 2, 1], "{deploys:?}");
    let keys: BTreeSet<&str> = deploys.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys.len(), deploys.len(), "every batch has its own key");
    assert_eq!(distinct_targets(&deploys), 8, "every target deployed once");
    assert!(recorder.calls_of("rollback").is_empty());

    assert!(decisions(&done).iter().all(|(r, _)| r == "proceed"));
    // The summary: the canary baked ten minutes; the gate was answered at once.
    let durations: Vec<&Value> = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["duration_ms"])
        .collect();
    assert_eq!(
        durations,
        [&json!(0), &json!(10 * MINUTE), &json!(0), &json!(0)]
    );
    assert!(
        done["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "verified"),
        "{done:#}"
    );
    assert_eq!(done["approvals"][0]["by"], "admin");
    assert_eq!(done["approvals"][0]["comment"], "canary is fine");
    assert_eq!(current_version(&d).await, "2.0.0");
    let events = journal(&d, &id).await;
    assert_eq!(events.first().map(String::as_str), Some("started"));
    assert_eq!(events.last().map(String::as_str), Some("finished"));

    // One action rolls the whole release back, all at once.
    let (status, body) = command(
        &d,
        &id,
        "rollback",
        json!({"mode": "emergency", "comment": "bad build"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let undone = wait_status(&d, &id, "rolled-back").await;
    assert!(undone["outcome"].as_str().unwrap().contains("bad build"));
    let rollbacks = recorder.calls_of("rollback");
    assert_eq!(
        rollbacks
            .iter()
            .map(|c| c.targets.len())
            .collect::<Vec<_>>(),
        [7, 1],
        "one call per stage: {rollbacks:?}"
    );
    assert_eq!(current_version(&d).await, Value::Null, "nothing known runs");
}

#[tokio::test]
async fn a_hard_breach_rolls_every_batch_back_newest_first() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 8).await;
    recorder.verdicts("rollout", &["pass ok", "fail error_rate 7.2% > 5%"]);
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    command(&d, &id, "approve", json!({})).await;
    let done = wait_status(&d, &id, "rolled-back").await;

    let deploys = recorder.calls_of("deploy");
    assert_eq!(deploys.len(), 3, "canary and two batches: {deploys:?}");
    let rollbacks = recorder.calls_of("rollback");
    let undone: Vec<&Vec<String>> = rollbacks.iter().map(|c| &c.targets).collect();
    let deployed: Vec<&Vec<String>> = deploys.iter().rev().map(|c| &c.targets).collect();
    assert_eq!(undone, deployed, "batches are undone newest first");

    let (ruling, reason) = decisions(&done).pop().unwrap();
    assert_eq!(ruling, "rollback");
    assert!(
        reason.contains("failed at stage rollout, batch 2") && reason.contains("7.2% > 5%"),
        "{reason}"
    );
    assert!(
        done["outcome"].as_str().unwrap().contains("7.2%"),
        "{done:#}"
    );
    assert!(
        done["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] != "pending")
            .all(|t| t["state"] == "rolled-back"),
        "{done:#}"
    );
    assert_eq!(current_version(&d).await, Value::Null);
}

#[tokio::test]
async fn a_soft_breach_pauses_until_a_human_resumes() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 4).await;
    recorder.verdicts("rollout", &["inconclusive only 3 requests sampled"]);
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    command(&d, &id, "approve", json!({})).await;
    let paused = wait_status(&d, &id, "paused").await;
    let reason = paused["pause"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("inconclusive") && reason.contains("3 requests"),
        "{reason}"
    );
    assert_eq!(paused["pause"]["by"], "default-policy");

    let (status, body) = command(&d, &id, "resume", json!({})).await;
    assert_eq!(status, 200, "{body}");
    wait_status(&d, &id, "succeeded").await;
    assert!(recorder.calls_of("rollback").is_empty());
}

#[tokio::test]
async fn a_gate_can_be_rejected_or_expire() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 4).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    let (status, body) = command(&d, &id, "reject", json!({})).await;
    assert_refused(status, &body, (409, "release.comment_required"), "comment");
    let (status, body) = command(&d, &id, "reject", json!({"comment": "p99 doubled"})).await;
    assert_eq!(status, 200, "{body}");
    let rejected = wait_status(&d, &id, "rejected").await;
    assert!(
        rejected["outcome"]
            .as_str()
            .unwrap()
            .contains("p99 doubled")
    );
    assert_eq!(
        recorder.calls_of("rollback").len(),
        1,
        "the canary is undone"
    );

    // The environment is free again; this time nobody answers the gate.
    let id = start_release(&d, "shop", "prod", "2.0.1", "standard").await;
    to_the_gate(&d, &id).await;
    let (status, body) = command(&d, &id, "resume", json!({})).await;
    assert_refused(
        status,
        &body,
        (409, "release.not_paused"),
        "waiting-approval",
    );
    advance(&d, 60 * MINUTE).await;
    let expired = wait_status(&d, &id, "rolled-back").await;
    assert!(
        expired["outcome"].as_str().unwrap().contains("expired"),
        "{expired:#}"
    );
}

#[tokio::test]
async fn busy_environments_and_unknown_applications_are_refused() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 4).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    let start = |app: &str, flow: &str| {
        d.request(reqwest::Method::POST, "/api/v1/releases").json(
            &json!({"application": app, "environment": "prod", "version": "3.0.0", "flow": flow}),
        )
    };
    let (status, body) = d.send(start("shop", "standard")).await;
    assert_refused(status, &body, (409, "release.busy"), &id);
    let (status, body) = d.send(start("cart", "standard")).await;
    assert_refused(
        status,
        &body,
        (404, "not_found"),
        "no environment `prod` in application `cart`",
    );
    let (status, body) = d.send(start("shop", "nope")).await;
    assert_refused(status, &body, (404, "not_found"), "nope");
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases")
                .json(&json!({"application": "shop", "environment": "prod", "flow": "standard"})),
        )
        .await;
    assert_refused(status, &body, (400, "request.bad_json"), "version");
    let (status, body) = command(&d, "nope", "approve", json!({})).await;
    assert_refused(status, &body, (404, "not_found"), "nope");
}

#[tokio::test]
async fn a_crash_mid_batch_redeploys_only_the_batch_in_flight_with_its_key() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 8).await;
    // Deploy calls: 0 is the canary, 1 and 2 the first rollout batches.
    recorder.hold_deploy(2);
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    command(&d, &id, "approve", json!({})).await;
    while recorder.calls_of("deploy").len() < 3 {
        recorder.next_call().await;
    }
    let now = CLOCK_START_MS + 10 * MINUTE;
    let d = d.crash_and_restart().await;
    set_clock(&d, now).await;
    recorder.free();
    let done = wait_status(&d, &id, "succeeded").await;

    let deploys = recorder.calls_of("deploy");
    assert_eq!(
        deploys.len(),
        6,
        "five batches, one of them asked twice: {deploys:?}"
    );
    assert_eq!(
        deploys[2], deploys[3],
        "the batch in flight is asked again with its key"
    );
    let keys: BTreeSet<&str> = deploys.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys.len(), 5, "no completed batch is deployed again");
    assert_eq!(distinct_targets(&deploys), 8);
    assert_eq!(done["approvals"].as_array().unwrap().len(), 1);
}

/// A deploy's outcome does not wait for the check round after it to be
/// durable and announced: while the batch's checks are still running (held
/// open here), the event stream already says the batch is deployed. Nothing
/// reads the release meanwhile, so only the engine's own flush can have
/// made the event durable and announced it.
#[tokio::test]
async fn a_deployed_batch_is_announced_while_its_checks_still_run() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 4).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    recorder.hold_checks("rollout");
    let mut stream = d
        .request(reqwest::Method::GET, "/api/v1/events")
        .query(&[("release", id.as_str())])
        .send()
        .await
        .expect("event stream");
    command(&d, &id, "approve", json!({})).await;
    let held = loop {
        let call = recorder.next_call().await;
        if call.action == "check" {
            break call;
        }
    };
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !seen.contains("event: deployed") {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no `deployed` event while the check was held: {other:?}; {seen}"),
        }
    }
    let deploys = recorder.calls_of("deploy");
    assert_eq!(
        deploys.len(),
        2,
        "the canary and the first rollout batch only: {deploys:?}"
    );
    assert_eq!(held.batch, deploys[1].batch, "{held:?} {deploys:?}");
    recorder.free();
    wait_status(&d, &id, "succeeded").await;
    assert_eq!(recorder.calls_of("deploy").len(), 4);
}

#[tokio::test]
async fn a_crash_mid_bake_resumes_the_bake_with_its_remaining_time() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 4).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    let before = canary_baking(&d, &id).await;
    let now = advance(&d, 4 * MINUTE).await;
    let d = d.crash_and_restart().await;
    set_clock(&d, now).await;
    let after = release(&d, &id).await;
    assert_eq!(after["status"], "running");
    assert_eq!(after["bake_until_ms"], before["bake_until_ms"]);
    // Six minutes remain: five brings the next check, one more ends the bake.
    advance(&d, 5 * MINUTE).await;
    wait_for(&d, &id, "the second bake check", |r| {
        r["decisions"].as_array().unwrap().len() == 2
    })
    .await;
    assert_eq!(release(&d, &id).await["status"], "running");
    advance(&d, MINUTE).await;
    wait_status(&d, &id, "waiting-approval").await;
    assert_eq!(
        recorder.calls_of("deploy").len(),
        1,
        "the canary is not redeployed"
    );
}

#[tokio::test]
async fn a_crash_at_a_gate_loses_no_approval() {
    let recorder = Recorder::start().await;
    let d = shop(&recorder, 4).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    let d = d.crash_and_restart().await;
    set_clock(&d, CLOCK_START_MS + 10 * MINUTE).await;
    let waiting = release(&d, &id).await;
    assert_eq!(waiting["status"], "waiting-approval");
    assert_eq!(waiting["gate"]["stage"], "go-ahead");

    let (status, body) = command(&d, &id, "approve", json!({"comment": "go"})).await;
    assert_eq!(status, 200, "{body}");
    let d = d.crash_and_restart().await;
    set_clock(&d, CLOCK_START_MS + 10 * MINUTE).await;
    let done = wait_status(&d, &id, "succeeded").await;
    assert_eq!(done["approvals"][0]["comment"], "go");
    assert!(recorder.calls_of("deploy").len() >= 3);
}

#[tokio::test]
async fn blue_green_restores_traffic_before_undoing_the_idle_group() {
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
traffic = {{ plugin = "router" }}
steps = [10, 50, 100]
bake_per_step = "5m"
checks = [{{ plugin = "health", params = {{ mode = "remote", url = "{origin}/verdict" }} }}]
"#
        ),
    )
    .await;
    put_environment(&d, "shop", "prod", 4, &["blue", "green"]).await;
    // The idle group passes, then the 10% step bakes fine, then 50% fails.
    recorder.verdicts(
        "switch",
        &["pass", "pass", "pass", "fail p99 900 ms at 50%"],
    );
    let id = start_release(&d, "shop", "prod", "2.0.0", "switch").await;
    // The step's first check must have ruled before the clock moves, or
    // the step would bake out unchecked and take one check, not two.
    let at_ten = wait_for(&d, &id, "the 10% step's bake", |r| {
        r["weights"][1]["percent"] == 10 && !r["next_check_ms"].is_null()
    })
    .await;
    assert_eq!(
        at_ten["weights"][0],
        json!({"group": "blue", "percent": 90})
    );
    advance(&d, 5 * MINUTE).await;
    let done = wait_status(&d, &id, "rolled-back").await;

    let deploys = recorder.calls_of("deploy");
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert_eq!(deploys[0].targets, ["web-1", "web-3"], "the idle group");
    assert_eq!(recorder.calls_of("rollback")[0].targets, ["web-1", "web-3"]);
    assert_eq!(
        done["weights"],
        json!([{"group": "blue", "percent": 100}, {"group": "green", "percent": 0}])
    );
    let events = journal(&d, &id).await;
    let shifts = events.iter().filter(|e| *e == "traffic-shifted").count();
    assert_eq!(shifts, 2, "10% then 50%: {events:?}");
    let shifts = events.iter().filter(|e| *e == "traffic-shifted").count();
    assert_eq!(shifts, 2, "10% then 50%: {events:?}");
    let restored = events.iter().position(|e| e == "traffic-restored");
    let undone = events.iter().position(|e| e == "rolled-back-batch");
    assert!(
        restored.is_some() && restored < undone,
        "traffic is restored first: {events:?}"
    );
    assert!(done["outcome"].as_str().unwrap().contains("p99 900 ms"));
}

#[tokio::test]
async fn a_queueing_flow_starts_the_next_release_when_the_environment_frees() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    let queued_flow = standard_flow(&recorder).replace(
        "name = \"standard\"\nversion = 1\n",
        "name = \"queued\"\nversion = 1\nwhen_busy = \"queue\"\n",
    );
    apply_flow(&d, &queued_flow).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let first = start_release(&d, "shop", "prod", "2.0.0", "queued").await;
    to_the_gate(&d, &first).await;

    let (status, second) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases").json(&json!({
                "application": "shop", "environment": "prod", "version": "2.1.0", "flow": "queued"
            })),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["status"], "queued");
    let second = second["id"].as_str().unwrap().to_string();
    let (status, body) = command(&d, &second, "pause", json!({})).await;
    assert_refused(status, &body, (409, "release.queued"), "has not started");
    let (_, listed) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/releases?status=queued"))
        .await;
    assert_eq!(listed[0]["id"], second.as_str());

    command(&d, &first, "approve", json!({})).await;
    wait_status(&d, &first, "succeeded").await;
    let next = wait_for(&d, &second, "the queued release to start", |r| {
        r["status"] != "queued"
    })
    .await;
    assert_eq!(
        next["previous_version"], "2.0.0",
        "it replaces what the first one shipped"
    );
}

#[tokio::test]
async fn a_rollback_policy_plugin_decides_instead_of_the_defaults() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    let flow = standard_flow(&recorder).replace(
        "batch = \"25%\"\n",
        "batch = \"25%\"\npolicy = { plugin = \"policy\" }\n",
    );
    apply_flow(&d, &flow).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    recorder.verdicts("rollout", &["pass fine", "error metrics backend down"]);
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    to_the_gate(&d, &id).await;
    command(&d, &id, "approve", json!({})).await;
    let paused = wait_status(&d, &id, "paused").await;
    let last = paused["decisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["by"], "policy@1.0.0", "{last:#}");
    assert_eq!(last["ruling"], "pause");
    // The fixture policy saw every observation so far and names the check.
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("health@1.0.0 errored at stage rollout, batch 1: metrics backend down"),
        "{last:#}"
    );
    assert!(last["observations"].as_u64().unwrap() >= 4, "{last:#}");
    assert_eq!(last["inputs"][0]["status"], "error");
}
