//! Checks written in Python and JavaScript (`examples/`), built with
//! componentize-py and jco from the same `wit/` package: run locally with
//! `greenlight plugin test`, uploaded to a real daemon, denied a host they
//! were not granted, invoked under their grant, and used in releases.

use std::time::Instant;

use serde_json::{Value, json};

use crate::support::polyglot::{
    Component, Language, Stats, build_source, component, daemon, params, plugin_test,
};
use crate::support::releases::{
    CLOCK_START_MS, Recorder, advance, apply_flow, canary_and_rolling_flow, put_environment,
    release_past_the_bake, start_release, verdicts_of, wait_for, wait_status,
};
use crate::support::{Daemon, error_code, verdict};

const MINUTE: u64 = 60_000;

/// A metric of a verdict by name, whether the verdict lists its metrics
/// (`[{name, value}]`, as an invocation answers) or maps them (as a release
/// records them).
fn metric(verdict: &Value, name: &str) -> Option<f64> {
    match &verdict["metrics"] {
        Value::Array(list) => list.iter().find(|m| m["name"] == name)?["value"].as_f64(),
        map => map[name].as_f64(),
    }
}

/// Uploads a component, timing the upload (the daemon compiles it then,
/// or loads the artifact an earlier test kept).
async fn upload(d: &Daemon, name: &str, c: &Component) {
    let started = Instant::now();
    let (status, body) = d.upload(name, "1.0.0", c.bytes.clone()).await;
    assert_eq!(status, 201, "upload of {name}: {body}");
    println!(
        "{name}: uploaded in {:.1} s (compiled, unless an earlier run kept the artifact)",
        started.elapsed().as_secs_f64()
    );
}

/// Takes one example check through what a plugin author does: test it
/// locally, upload it, run it without and then with its grant, and see it
/// fail a service that breaks its error budget.
async fn author_flow(language: Language) {
    let c = component(language).await;
    let stats = Stats::start(1000, 12).await;

    let context = json!({"application": "shop", "environment": "beta", "version": "2.0.0",
                         "stage": "canary", "parameters": params(&stats)});
    let local = plugin_test(
        &c.path,
        json!({"context": context, "targets": [{"id": "web-1", "address": "10.0.0.1:8080"}]}),
        json!({"allowed_hosts": [stats.origin]}),
    )
    .await;
    let v = verdict(&local);
    assert_eq!(v["status"], "pass", "{local:#}");
    assert_eq!(metric(v, "error_rate"), Some(0.012), "{local:#}");
    assert_eq!(local["logs"][0]["message"], "measured the error rate");

    let d = daemon("").await;
    upload(&d, "budget", c).await;

    // Without a grant the request never leaves the sandbox, and the call
    // ends naming the origin it tried.
    let denied = d.verify("budget", params(&stats)).await;
    assert_eq!(error_code(&denied), "host_denied", "{denied:#}");
    let message = denied["error"]["message"].as_str().unwrap();
    assert!(message.contains(&stats.origin), "{message}");
    d.assert_healthy().await;

    d.grant("budget", json!({"allowed_hosts": [stats.origin]}))
        .await;
    let passed = d.verify("budget", params(&stats)).await;
    let v = verdict(&passed);
    assert_eq!(v["status"], "pass", "{passed:#}");
    assert_eq!(
        v["summary"], "error_rate 1.20% <= 5.00% over 1000 requests",
        "{passed:#}"
    );
    assert_eq!(metric(v, "requests"), Some(1000.0));
    assert_eq!(metric(v, "errors"), Some(12.0));
    assert_eq!(passed["http_requests"], 1);
    let log = &passed["logs"][0];
    assert_eq!(
        (&log["level"], &log["message"]),
        (&json!("info"), &json!("measured the error rate")),
        "{passed:#}"
    );
    assert_eq!(log["fields"]["error_rate"], "0.0120", "{passed:#}");

    stats.set(200, 30);
    let failed = d.verify("budget", params(&stats)).await;
    let v = verdict(&failed);
    assert_eq!(v["status"], "fail", "{failed:#}");
    assert_eq!(
        v["summary"], "error_rate 15.00% > 5.00% over 200 requests",
        "{failed:#}"
    );

    stats.set(0, 0);
    let idle = d.verify("budget", params(&stats)).await;
    assert_eq!(verdict(&idle)["status"], "no-data", "{idle:#}");

    // A threshold that is not a number is the check's own error, not a pass.
    let bad = d
        .verify(
            "budget",
            json!({"url": stats.url(), "max_error_rate": "lots"}),
        )
        .await;
    assert_eq!(verdict(&bad)["status"], "error", "{bad:#}");
    d.assert_healthy().await;
}

#[tokio::test]
async fn a_python_check_is_tested_uploaded_granted_and_invoked() {
    author_flow(Language::Python).await;
}

#[tokio::test]
async fn a_javascript_check_is_tested_uploaded_granted_and_invoked() {
    author_flow(Language::JavaScript).await;
}

/// A large component uploaded to a daemon that has never compiled it is
/// compiled quickly and answers at once, while its optimised code is
/// compiled in the background; a call made meanwhile gives the same verdict
/// the optimised code gives (the other tests, on shared artifacts).
async fn answers_right_after_upload(language: Language) {
    let c = component(language).await;
    let stats = Stats::start(1000, 12).await;
    // Its own data directory: nothing compiled before.
    let d = Daemon::start().await;
    upload(&d, "budget", c).await;
    let (_, runtime) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/runtime"))
        .await;
    assert_eq!(runtime["quick_compiles"], 1, "{runtime}");
    assert_eq!(
        runtime["optimising"].as_u64().unwrap() + runtime["optimised"].as_u64().unwrap(),
        1,
        "{runtime}"
    );
    d.grant("budget", json!({"allowed_hosts": [stats.origin]}))
        .await;
    let passed = d.verify("budget", params(&stats)).await;
    let v = verdict(&passed);
    assert_eq!(
        v["summary"], "error_rate 1.20% <= 5.00% over 1000 requests",
        "{passed:#}"
    );
    d.assert_healthy().await;
}

#[tokio::test]
async fn a_python_check_answers_right_after_its_upload() {
    answers_right_after_upload(Language::Python).await;
}

#[tokio::test]
async fn a_javascript_check_answers_right_after_its_upload() {
    answers_right_after_upload(Language::JavaScript).await;
}

/// An example reading `/stats` on every target at once: three of five
/// targets accept the request and never answer. Each is given 1.5 s under
/// a 4 s deadline, so read one after the other they would use the deadline
/// up (`deadline_exceeded`); read at once, the verdict stands on the two
/// that answered and names the three as no data. The grant allows the
/// release's targets, as the inventory lists them.
async fn every_target_at_once(language: Language) {
    let c = component(language).await;
    let (one, two) = (Stats::start(1000, 10).await, Stats::start(1000, 30).await);
    let silent = || {
        crate::bundled::serve(axum::Router::new().route(
            "/stats",
            axum::routing::get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        ))
    };
    let mut addresses: Vec<String> = [&one, &two]
        .iter()
        .map(|s| s.origin.trim_start_matches("http://").to_string())
        .collect();
    for _ in 0..3 {
        addresses.push(silent().await.to_string());
    }
    let targets: Vec<Value> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"id": format!("web-{}", i + 1), "address": a}))
        .collect();
    let d = daemon("").await;
    upload(&d, "budget", c).await;
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PUT, "/api/v1/apps/shop/envs/beta")
                .json(&json!({ "targets": targets })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    d.grant(
        "budget",
        json!({"allow_release_targets": true, "limits": {"deadline_ms": 4000}}),
    )
    .await;
    let answer = d
        .invoke(
            "budget",
            json!({
                "context": {"application": "shop", "environment": "beta", "version": "2.0.0",
                            "parameters": {"path": "/stats", "timeout_ms": 1500}},
                "targets": targets,
            }),
        )
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "pass", "{answer:#}");
    assert_eq!(
        v["summary"],
        "error_rate 2.00% <= 5.00% over 2000 requests; no data from web-3, web-4, web-5 \
         (no answer within 1500 ms)",
        "{answer:#}"
    );
    assert_eq!(metric(v, "silent_targets"), Some(3.0), "{answer:#}");
    assert_eq!(answer["http_requests"], 5, "{answer:#}");
}

#[tokio::test]
async fn a_python_check_reads_every_target_at_once_and_reports_the_silent_ones_as_no_data() {
    every_target_at_once(Language::Python).await;
}

#[tokio::test]
async fn a_javascript_check_reads_every_target_at_once_and_reports_the_silent_ones_as_no_data() {
    every_target_at_once(Language::JavaScript).await;
}

/// A check whose exception escapes `verify`, two calls deep, in each
/// language: the error leads with the exception's own line and where it
/// was raised, and its backtrace is the language's traceback, then the
/// wasm frames.
async fn an_escaped_exception(language: Language, file: &str, source: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    std::fs::write(&path, source).unwrap();
    let bytes = build_source(language, &path).await;
    let d = daemon("").await;
    let (status, body) = d.upload("raiser", "1.0.0", bytes).await;
    assert_eq!(status, 201, "{body}");
    let answer = d.verify("raiser", json!({})).await;
    assert_eq!(error_code(&answer), "trap", "{answer:#}");
    answer["error"].clone()
}

#[tokio::test]
async fn an_uncaught_python_exception_reads_as_its_traceback_last_line_first() {
    let source = "from wit_world import exports\n\n\nclass Check(exports.Check):\n    \
                  def verify(self, ctx, targets):\n        return helper(dict(ctx.parameters))\n\n\n\
                  def helper(params):\n    return float(params[\"max_p99_ms\"])\n";
    let error = an_escaped_exception(Language::Python, "raiser.py", source).await;
    assert_eq!(
        error["message"],
        "the plugin raised KeyError: 'max_p99_ms' (raiser.py, line 10, in helper)",
        "{error:#}"
    );
    let backtrace = error["backtrace"].as_str().unwrap();
    assert!(
        backtrace.starts_with(
            "Traceback (most recent call last):\n  File \"raiser.py\", line 6, in verify\n  \
             File \"raiser.py\", line 10, in helper\nKeyError: 'max_p99_ms'\n\nerror while executing at wasm backtrace:"
        ),
        "{backtrace}"
    );
}

#[tokio::test]
async fn an_uncaught_javascript_exception_reads_as_its_stack_last_line_first() {
    let source = "export const check = {\n  async verify(ctx, targets) {\n    \
                  return helper(Object.fromEntries(ctx.parameters));\n  },\n};\n\n\
                  function helper(params) {\n  return params.max_p99_ms.trim();\n}\n";
    let error = an_escaped_exception(Language::JavaScript, "raiser.js", source).await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("the plugin raised ") && message.ends_with("(helper at raiser.js:8:3)"),
        "{error:#}"
    );
    assert!(message.contains("max_p99_ms is undefined"), "{error:#}");
    let backtrace = error["backtrace"].as_str().unwrap();
    assert!(
        backtrace.contains("Stack:\n  helper at raiser.js:8:3\n  verify at raiser.js:3:12\n\nerror while executing at wasm backtrace:"),
        "{backtrace}"
    );
    assert!(!backtrace.contains("initializer.js"), "{backtrace}");
}

/// A flow whose canary is verified by the Python check and whose rolling
/// batches are verified by the JavaScript one.
fn polyglot_flow(recorder: &Recorder, stats: &Stats) -> String {
    let checks = |plugin: &str| {
        format!(
            r#"checks = [{{ plugin = "{plugin}", params = {{ url = "{}", max_error_rate = "0.05" }} }}]"#,
            stats.url()
        )
    };
    canary_and_rolling_flow(
        "polyglot",
        recorder,
        &checks("py-budget"),
        &checks("js-budget"),
    )
}

/// A daemon on a manual clock with the fixture deployer, both example
/// checks (the JavaScript one granted the stats endpoint, the Python one too
/// when `grant_python`), the polyglot flow and `shop/prod` of five targets.
async fn polyglot_daemon(recorder: &Recorder, stats: &Stats, grant_python: bool) -> Daemon {
    let (python, js) = (
        component(Language::Python).await,
        component(Language::JavaScript).await,
    );
    let d = daemon(&format!("manual_clock_ms = {CLOCK_START_MS}")).await;
    d.upload_ok("agent", "fixture_deployer").await;
    d.grant("agent", json!({"allowed_hosts": [recorder.origin()]}))
        .await;
    upload(&d, "py-budget", python).await;
    upload(&d, "js-budget", js).await;
    d.grant("js-budget", json!({"allowed_hosts": [stats.origin]}))
        .await;
    if grant_python {
        d.grant("py-budget", json!({"allowed_hosts": [stats.origin]}))
            .await;
    }
    apply_flow(&d, &polyglot_flow(recorder, stats)).await;
    put_environment(&d, "shop", "prod", 5, &[]).await;
    d
}

#[tokio::test]
async fn python_and_javascript_checks_gate_a_release() {
    let recorder = Recorder::start().await;
    let stats = Stats::start(1000, 12).await;
    let d = polyglot_daemon(&recorder, &stats, true).await;

    // A healthy service: the Python check passes the canary's bake and the
    // JavaScript check passes every batch.
    let done = release_past_the_bake(&d, "2.0.0", "polyglot").await;
    let (canary, rollout) = (verdicts_of(&done, "canary"), verdicts_of(&done, "rollout"));
    assert!(
        canary.len() >= 2 && canary.iter().all(|v| v["check"] == "py-budget@1.0.0"),
        "{done:#}"
    );
    assert!(
        rollout.len() == 2 && rollout.iter().all(|v| v["check"] == "js-budget@1.0.0"),
        "{done:#}"
    );
    for v in canary.iter().chain(&rollout) {
        assert_eq!(v["status"], "pass", "{v}");
        assert_eq!(metric(v, "error_rate"), Some(0.012), "{v}");
        // The error rate's evidence, as each language's check gave it: the
        // requests it stands on and the highest rate that passes.
        let evidence = &v["evidence"][0];
        assert_eq!(evidence["name"], "error_rate", "{v}");
        assert_eq!(evidence["samples"], 1000, "{v}");
        assert_eq!(evidence["allowed_high"], 0.05, "{v}");
        assert!(evidence.get("baseline").is_none(), "{v}");
    }
    assert_eq!(
        recorder.calls_of("deploy").len(),
        3,
        "canary and two batches"
    );
    assert!(
        done["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "verified"),
        "{done:#}"
    );

    // The next version breaks the error budget: the Python check fails the
    // canary, and the release rolls itself back.
    stats.set(200, 30);
    let id = start_release(&d, "shop", "prod", "3.0.0", "polyglot").await;
    let undone = wait_status(&d, &id, "rolled-back").await;
    let failed = &undone["verdicts"][0];
    assert_eq!(
        (&failed["check"], &failed["status"]),
        (&json!("py-budget@1.0.0"), &json!("fail")),
        "{undone:#}"
    );
    let reason = undone["decisions"].as_array().unwrap().last().unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("error_rate 15.00% > 5.00%"), "{reason}");
    assert_eq!(
        recorder.calls_of("rollback").len(),
        1,
        "{:?}",
        recorder.calls()
    );
    d.assert_healthy().await;
}

#[tokio::test]
async fn a_check_denied_its_host_errs_in_a_release_until_it_is_granted() {
    let recorder = Recorder::start().await;
    let stats = Stats::start(1000, 12).await;
    let d = polyglot_daemon(&recorder, &stats, false).await;

    // The Python check has no grant: its request is refused, the round is
    // an error naming the origin, and the release waits to try again.
    let id = start_release(&d, "shop", "prod", "2.0.0", "polyglot").await;
    let errored = wait_for(&d, &id, "the first check round", |r| {
        r["verdicts"].as_array().is_some_and(|v| !v.is_empty())
    })
    .await;
    let first = &errored["verdicts"][0];
    assert_eq!(
        (&first["check"], &first["status"]),
        (&json!("py-budget@1.0.0"), &json!("error")),
        "{errored:#}"
    );
    let summary = first["summary"].as_str().unwrap();
    assert!(summary.contains(&stats.origin), "{summary}");
    assert_eq!(errored["status"], "running", "{errored:#}");
    d.assert_healthy().await;

    // Granted the host, the next round measures and the release goes on.
    d.grant("py-budget", json!({"allowed_hosts": [stats.origin]}))
        .await;
    advance(&d, 10 * MINUTE).await;
    let done = wait_status(&d, &id, "succeeded").await;
    let passed = done["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == "py-budget@1.0.0" && v["status"] == "pass")
        .count();
    assert!(passed >= 1, "{done:#}");
}
