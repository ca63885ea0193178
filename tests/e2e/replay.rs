//! Replaying an analysis: releases judged by `canary-judge` against a
//! metrics store served by the test keep what the judge read, and
//! `POST /api/v1/analysis/replay` (and `greenlight analysis replay`) runs
//! the same or a changed flow over those recordings: never over the live
//! store, never changing a release or its journal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::bundled::{Journal, origin, serve};
use crate::support::releases::{
    Recorder, advance, apply_flow, put_environment, release_daemon, start_release, wait_status,
};
use crate::support::{Daemon, binary, fixture};

/// How the test's store answers: each version's latency as a multiple of
/// the baseline's, and padding to make every answer large.
#[derive(Default)]
struct Answers {
    scale: HashMap<String, f64>,
    padding: usize,
}

#[derive(Clone)]
struct Store {
    answers: Arc<Mutex<Answers>>,
    asked: Journal,
    url: String,
}

impl Store {
    fn set(&self, version: &str, scale: f64) {
        let mut answers = self.answers.lock().unwrap();
        answers.scale.insert(version.to_string(), scale);
    }

    fn pad(&self, bytes: usize) {
        self.answers.lock().unwrap().padding = bytes;
    }

    /// Makes every version it knows this much slower than the baseline.
    fn all(&self, scale: f64) {
        let mut answers = self.answers.lock().unwrap();
        for s in answers.scale.values_mut() {
            *s = scale;
        }
    }
}

/// Thirty samples around 120 ms times `scale`, with ±5% of noise fixed
/// by `seed`.
fn samples(scale: f64, seed: u64) -> Vec<Value> {
    let mut state = seed;
    (0..30u64)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            let v = 120.0 * scale * (1.0 + 0.05 * (2.0 * unit - 1.0));
            json!([1_800_000_000 + i * 10, format!("{:.2}", v)])
        })
        .collect()
}

/// A Prometheus `query_range` API: `latency{version="X"}` answers X's
/// samples, `latency{group="baseline"}` the baseline's.
async fn store() -> Store {
    let store = Store {
        answers: Arc::default(),
        asked: Journal::default(),
        url: String::new(),
    };
    let (answers, asked) = (store.answers.clone(), store.asked.clone());
    let handler = move |Query(q): Query<HashMap<String, String>>| {
        let (answers, asked) = (answers.clone(), asked.clone());
        async move {
            let query = q.get("query").cloned().unwrap_or_default();
            asked.push(query.clone());
            let answers = answers.lock().unwrap();
            let values = if query.contains("baseline") {
                samples(1.0, 7)
            } else {
                let version = query
                    .split("version=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default();
                answers
                    .scale
                    .get(version)
                    .map_or_else(Vec::new, |s| samples(*s, 11))
            };
            axum::Json(json!({
                "status": "success",
                "padding": "x".repeat(answers.padding),
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
            }))
        }
    };
    let addr = serve(Router::new().route("/api/v1/query_range", get(handler))).await;
    Store {
        url: origin(addr),
        ..store
    }
}

/// A canary judged on latency, `allowed` slower than the baseline at
/// most, then the rest of the fleet.
fn flow(recorder: &Recorder, store: &Store, version: u32, allowed: &str) -> String {
    format!(
        r#"
name = "judged"
version = {version}

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
count = 1

[[stages.checks]]
plugin = "judge"

[stages.checks.params]
url = "{url}"
metrics = "latency"
"latency.canary" = 'latency{{version="${{version}}"}}'
"latency.baseline" = 'latency{{group="baseline"}}'
"latency.allowed" = "{allowed}"

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
batch = "50%"
"#,
        origin = recorder.origin(),
        url = store.url,
    )
}

/// A daemon with `canary-judge` as `judge`, granted the store, the flow
/// allowing 10% applied, and `shop/prod` of four targets.
async fn judged_shop(recorder: &Recorder, store: &Store) -> Daemon {
    let d = release_daemon(recorder).await;
    let (status, body) = d.upload("judge", "1.0.0", fixture("canary_judge")).await;
    assert_eq!(status, 201, "{body}");
    d.grant("judge", json!({"allowed_hosts": [store.url]}))
        .await;
    apply_flow(&d, &flow(recorder, store, 1, "10%")).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    d
}

/// Releases `version` to `shop/prod` and waits for it to end as `status`.
async fn release(d: &Daemon, version: &str, status: &str) -> String {
    let id = start_release(d, "shop", "prod", version, "judged").await;
    wait_status(d, &id, status).await;
    // The next release starts a minute later, so that newest is last.
    advance(d, 60_000).await;
    id
}

async fn replay(d: &Daemon, body: Value) -> (u16, Value) {
    d.send(
        d.request(reqwest::Method::POST, "/api/v1/analysis/replay")
            .json(&body),
    )
    .await
}

/// Every release and its journal, as the API shows them.
async fn everything(d: &Daemon) -> Vec<Value> {
    let (status, list) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/releases"))
        .await;
    assert_eq!(status, 200, "{list}");
    let mut all = vec![list.clone()];
    for r in list.as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        for path in [
            format!("/api/v1/releases/{id}"),
            format!("/api/v1/releases/{id}/journal"),
        ] {
            let (status, body) = d.send(d.request(reqwest::Method::GET, &path)).await;
            assert_eq!(status, 200, "{body}");
            all.push(body);
        }
    }
    all
}

fn by_release<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

#[tokio::test]
async fn a_replay_reads_the_recordings_and_finds_what_a_changed_flow_would_decide() {
    let recorder = Recorder::start().await;
    let store = store().await;
    store.set("1.1.0", 1.0);
    store.set("1.2.0", 1.3);
    store.set("1.3.0", 1.05);
    let d = judged_shop(&recorder, &store).await;
    let like = release(&d, "1.1.0", "succeeded").await;
    let slower = release(&d, "1.2.0", "rolled-back").await;
    let close = release(&d, "1.3.0", "succeeded").await;

    // The store now answers otherwise: a replay that asked it would see
    // every canary twice as slow.
    store.all(2.0);
    let asked = store.asked.entries().len();
    let before = everything(&d).await;

    let (status, same) = replay(
        &d,
        json!({"flow": flow(&recorder, &store, 1, "10%"), "application": "shop",
               "environment": "prod", "last": 10}),
    )
    .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["replayed"], 3, "{same:#}");
    assert_eq!(same["differing"], 0, "{same:#}");
    for r in same["releases"].as_array().unwrap() {
        assert_eq!(r["rounds"], json!([]), "{r:#}");
        assert_eq!(r["actual"]["outcome"], r["replayed"]["outcome"], "{r:#}");
    }
    assert_eq!(
        by_release(&same, &slower)["actual"]["outcome"],
        "rolled-back"
    );
    assert_eq!(by_release(&same, &like)["actual"]["outcome"], "succeeded");

    let (status, looser) = replay(
        &d,
        json!({"flow": flow(&recorder, &store, 2, "50%"), "last": 10}),
    )
    .await;
    assert_eq!(status, 200, "{looser}");
    assert_eq!(looser["differing"], 1, "{looser:#}");
    let changed = by_release(&looser, &slower);
    assert_eq!(changed["differs"], true, "{changed:#}");
    assert_eq!(changed["actual"]["outcome"], "rolled-back");
    assert_eq!(changed["actual"]["stage"], "canary");
    assert_eq!(changed["replayed"]["outcome"], "succeeded", "{changed:#}");
    let round = &changed["rounds"][0];
    assert_eq!(round["actual"], "rollback", "{round:#}");
    assert_eq!(round["replayed"], "proceed", "{round:#}");
    let verdict = &round["verdicts"][0];
    assert_eq!(verdict["check"], "judge@1.0.0");
    assert!(
        verdict["actual"].as_str().unwrap().starts_with("fail:")
            && verdict["replayed"].as_str().unwrap().starts_with("pass:"),
        "{verdict:#}"
    );
    for id in [&like, &close] {
        assert_eq!(by_release(&looser, id)["differs"], false, "{looser:#}");
    }

    // The CLI prints the same, with the summary line.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), flow(&recorder, &store, 2, "50%")).unwrap();
    let out = cli(
        &d,
        &[
            "analysis",
            "replay",
            "--flow",
            file.path().to_str().unwrap(),
            "--app",
            "shop",
            "--env",
            "prod",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    println!("{printed}");
    assert!(
        printed.contains("1 of 3 releases would have been decided differently"),
        "{printed}"
    );
    let line = printed
        .lines()
        .find(|l| l.starts_with(slower.as_str()))
        .unwrap_or_else(|| panic!("no line for {slower}: {printed}"));
    assert!(
        line.contains("1.2.0")
            && line.contains("rolled-back at canary batch 1 round 1")
            && line.contains("*succeeded"),
        "{line}"
    );

    // Nothing asked the store, and nothing changed.
    assert_eq!(store.asked.entries().len(), asked);
    assert_eq!(everything(&d).await, before);
}

#[tokio::test]
async fn a_round_past_its_bound_is_kept_as_not_replayable_and_a_bad_flow_is_named() {
    let recorder = Recorder::start().await;
    let store = store().await;
    store.set("1.1.0", 1.0);
    store.set("1.2.0", 1.0);
    let d = judged_shop(&recorder, &store).await;
    let small = release(&d, "1.1.0", "succeeded").await;
    // Two answers of 600 KiB each pass the 1 MiB kept of one call.
    store.pad(600 * 1024);
    let large = release(&d, "1.2.0", "succeeded").await;

    let (status, report) = replay(
        &d,
        json!({"flow": flow(&recorder, &store, 1, "10%"), "last": 10}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["replayed"], 1, "{report:#}");
    let skipped = by_release(&report, &large);
    let why = skipped["skipped"].as_str().unwrap_or_default();
    assert!(
        why.contains("not whole") && why.contains("1024 KiB"),
        "{skipped:#}"
    );
    assert_eq!(skipped["replayed"], Value::Null);
    assert_eq!(by_release(&report, &small)["differs"], false);

    // A flow that breaks a rule is refused with the field named.
    let bad = flow(&recorder, &store, 3, "10%").replace("batch = \"50%\"", "batch = \"60%\"");
    let (status, refused) = replay(&d, json!({"flow": bad})).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "flow.invalid", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("stages[1].batch"),
        "{refused}"
    );
    // So is a request without a flow, and one asking for too many releases.
    let (status, refused) = replay(&d, json!({"last": 5})).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("flow"),
        "{refused}"
    );
    let (status, refused) = replay(&d, json!({"flow_name": "judged", "last": 0})).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("last"),
        "{refused}"
    );
    // An applied flow is replayed by name.
    let (status, named) = replay(&d, json!({"flow_name": "judged", "flow_version": 1})).await;
    assert_eq!(status, 200, "{named}");
    assert_eq!(named["flow"], "judged");
    assert_eq!(named["replayed"], 1, "{named:#}");
}

async fn cli(d: &Daemon, args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(binary())
            .args(args)
            .env("GREENLIGHT_URL", &d.base)
            .env("GREENLIGHT_TOKEN", &d.token)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("`greenlight analysis replay` finished")
    .unwrap()
}
