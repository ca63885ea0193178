//! Schedules with the real daemon on a manual clock: a fire starts a beta
//! release that runs to completion; a daemon killed right after a fire
//! comes back with the release existing exactly once; freeze windows stop
//! manual starts unless an admin overrides; bad expressions are named; and
//! the command line manages schedules.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::releases::{
    CLOCK_START_MS, Recorder, advance, apply_flow, put_environment, release_daemon, set_clock,
    wait_on, wait_status,
};
use crate::support::{Daemon, assert_refused, cli};

/// A rolling deploy to the beta fleet, a target at a time, reported to the
/// recorder.
fn beta_flow(recorder: &Recorder) -> String {
    format!(
        r#"
name = "beta"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{}/calls" }} }}
batch = 1
"#,
        recorder.origin()
    )
}

/// Five seconds after the clock's start, every day (seconds first).
const CRON: &str = "5 0 8 * * *";

pub(crate) async fn setup(recorder: &Recorder) -> Daemon {
    let d = release_daemon(recorder).await;
    apply_flow(&d, &beta_flow(recorder)).await;
    put_environment(&d, "shop", "beta", 2, &[]).await;
    d
}

pub(crate) async fn add_schedule(d: &Daemon, token: &str, body: Value) -> (u16, Value) {
    d.send(
        reqwest::Client::new()
            .post(d.url("/api/v1/schedules"))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

pub(crate) fn nightly() -> Value {
    json!({
        "name": "nightly-beta", "cron": CRON, "timezone": "UTC",
        "application": "shop", "environment": "beta", "flow": "beta", "version": "2.0.0"
    })
}

async fn get(d: &Daemon, path: &str) -> Value {
    let (status, body) = d.send(d.request(Method::GET, path)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits for the schedule to have started a release; returns its id.
pub(crate) async fn fired(d: &Daemon) -> String {
    let schedule = wait_on(d, "/api/v1/schedules/nightly-beta", None, "the fire", |s| {
        s["last_release"].is_string()
    })
    .await;
    schedule["last_release"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_schedule_fires_a_beta_release_that_runs_to_completion() {
    let recorder = Recorder::start().await;
    let d = setup(&recorder).await;
    let token = d.create_token("ci-scheduler", "scheduler").await;
    let (status, created) = add_schedule(&d, &token, nightly()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["next_fire_ms"], CLOCK_START_MS + 5_000);
    assert_eq!(created["created_by"], "ci-scheduler");
    let next = get(&d, "/api/v1/schedules/nightly-beta/next?count=2").await;
    assert_eq!(
        next["fires"][1]["at_ms"],
        CLOCK_START_MS + 5_000 + 86_400_000
    );

    advance(&d, 5_000).await;
    let id = fired(&d).await;
    let release = wait_status(&d, &id, "succeeded").await;
    assert_eq!(release["version"], "2.0.0");
    assert_eq!(release["started_by"], "schedule:nightly-beta");
    assert_eq!(
        recorder.calls_of("deploy").len(),
        2,
        "both targets, once each"
    );

    let schedule = get(&d, "/api/v1/schedules/nightly-beta").await;
    assert_eq!(schedule["last_fire"]["outcome"], "started");
    assert_eq!(schedule["last_fire"]["at_ms"], CLOCK_START_MS + 5_000);
    assert_eq!(
        schedule["next_fire_ms"],
        CLOCK_START_MS + 5_000 + 86_400_000
    );
    let audit = get(&d, &format!("/api/v1/audit?release={id}")).await["entries"].clone();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "FIRE schedule" && e["actor"] == "schedule:nightly-beta"),
        "{audit:#}"
    );
    let metrics = d
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("greenlight_schedule_fires_total{outcome=\"started\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_daemon_killed_right_after_a_fire_keeps_the_release_exactly_once() {
    let recorder = Recorder::start().await;
    recorder.hold_deploy(0);
    let d = setup(&recorder).await;
    let (status, created) = add_schedule(&d, &d.token.clone(), nightly()).await;
    assert_eq!(status, 201, "{created}");
    advance(&d, 5_000).await;
    // The release has started and its first deploy is in flight.
    assert_eq!(recorder.next_call().await.action, "deploy");
    let id = fired(&d).await;

    let d = d.crash_and_restart().await;
    // The clock starts over at its configured instant; move it past the
    // fire again, as the wall clock would have moved on.
    set_clock(&d, CLOCK_START_MS + 6_000).await;
    recorder.free();
    wait_status(&d, &id, "succeeded").await;
    let releases = get(&d, "/api/v1/releases?application=shop").await;
    let ids: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "the release exists exactly once");
    let fires = get(&d, "/api/v1/schedules/nightly-beta/fires").await;
    assert_eq!(fires.as_array().unwrap().len(), 1, "{fires:#}");
    assert_eq!(fires[0]["release"], id.as_str());
    assert_eq!(fires[0]["outcome"], "started");
}

#[tokio::test]
async fn freezes_stop_manual_starts_unless_an_admin_overrides_and_bad_input_is_named() {
    let recorder = Recorder::start().await;
    let d = setup(&recorder).await;
    let (status, body) = add_schedule(
        &d,
        &d.token,
        json!({"name": "bad", "cron": "0 25 * * *", "application": "shop",
               "environment": "beta", "flow": "beta", "version": "1"}),
    )
    .await;
    assert_refused(
        status,
        &body,
        (422, "schedule.invalid"),
        "cron: `0 25 * * *`",
    );
    let (status, body) = add_schedule(
        &d,
        &d.token,
        json!({"name": "bad", "cron": "0 2 * * *", "timezone": "Europe/Atlantis",
               "application": "shop", "environment": "beta", "flow": "beta", "version": "1"}),
    )
    .await;
    assert_refused(
        status,
        &body,
        (422, "schedule.invalid"),
        "timezone: `Europe/Atlantis`",
    );

    let (status, body) = d
        .send(d.request(Method::POST, "/api/v1/freezes").json(&json!({
            "name": "holidays", "start_ms": CLOCK_START_MS - 1, "end_ms": CLOCK_START_MS + 86_400_000,
            "application": "shop", "reason": "end of year"
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    let start =
        json!({"application": "shop", "environment": "beta", "version": "3.0.0", "flow": "beta"});
    let (status, body) = d
        .send(d.request(Method::POST, "/api/v1/releases").json(&start))
        .await;
    assert_refused(status, &body, (409, "release.frozen"), "end of year");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`override_freeze` in the API"),
        "{body}"
    );
    // The CLI names its own way out.
    let (ok, _, err) = cli(
        &d,
        &[
            "release",
            "start",
            "--app",
            "shop",
            "--env",
            "beta",
            "--version",
            "3.0.0",
            "--flow",
            "beta",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("release.frozen")
            && err.contains("with --override-freeze (and --comment WHY)"),
        "{err}"
    );
    assert!(!err.contains("override_freeze"), "{err}");
    let (status, created) = d
        .send(
            d.request(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "rita", "role": "release-manager"})),
        )
        .await;
    assert_eq!(status, 201);
    let mut overriding = start.clone();
    overriding["override_freeze"] = json!(true);
    overriding["comment"] = json!("security fix");
    let (status, body) = d
        .send(
            reqwest::Client::new()
                .post(d.url("/api/v1/releases"))
                .bearer_auth(created["token"].as_str().unwrap())
                .json(&overriding),
        )
        .await;
    assert_refused(status, &body, (403, "auth.forbidden"), "admin");
    let (status, body) = d
        .send(
            d.request(Method::POST, "/api/v1/releases")
                .json(&overriding),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    let audit = get(&d, &format!("/api/v1/audit?release={id}")).await["entries"].clone();
    assert_eq!(
        audit[0]["comment"], "freeze override: security fix",
        "{audit:#}"
    );

    // The command line: add, list, next, disable, enable, remove.
    let (ok, out, err) = cli(
        &d,
        &[
            "schedule",
            "add",
            "cli-nightly",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "--app",
            "shop",
            "--env",
            "beta",
            "--flow",
            "beta",
            "--version",
            "4.0.0",
            "--overlap",
            "queue",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("cli-nightly"), "{out}");
    let (ok, out, err) = cli(&d, &["schedule", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("cli-nightly") && out.contains("Europe/Berlin"),
        "{out}"
    );
    let (ok, out, err) = cli(
        &d,
        &["schedule", "next", "cli-nightly", "-n", "3", "--json"],
    );
    assert!(ok, "{err}");
    let next: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(next["fires"].as_array().unwrap().len(), 3);
    assert!(
        next["fires"][0]["local"]
            .as_str()
            .unwrap()
            .contains("T02:00:00+01:00"),
        "{next}"
    );
    let (ok, out, err) = cli(&d, &["schedule", "disable", "cli-nightly", "--json"]);
    assert!(ok, "{err}");
    let disabled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["next_fire_ms"], Value::Null);
    let (ok, _, err) = cli(&d, &["schedule", "enable", "cli-nightly"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&d, &["schedule", "rm", "cli-nightly"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&d, &["schedule", "rm", "cli-nightly"]);
    assert!(!ok && err.contains("not_found"), "{err}");
}
