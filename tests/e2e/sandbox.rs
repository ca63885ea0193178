//! The sandbox against hostile plugins: every attack ends in its own clear
//! error while the daemon keeps serving.

use serde_json::json;

use crate::support::{CountingServer, Daemon, error_code, verdict};

/// A daemon with the check fixture uploaded as `hostile`, under a short
/// deadline and a small memory cap.
async fn hostile_daemon() -> Daemon {
    let d = Daemon::start().await;
    d.upload_ok("hostile", "fixture_check").await;
    d.grant(
        "hostile",
        json!({"limits": {"deadline_ms": 1000, "memory_mib": 32, "max_output_bytes": 65536}}),
    )
    .await;
    d
}

#[tokio::test]
async fn an_infinite_loop_hits_its_deadline() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "loop"})).await;
    assert_eq!(error_code(&answer), "deadline_exceeded");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000 ms")
    );
    d.assert_healthy().await;
}

#[tokio::test]
async fn a_blocking_host_call_hits_its_deadline_too() {
    let d = hostile_daemon().await;
    let answer = d
        .verify("hostile", json!({"mode": "sleep", "ms": "60000"}))
        .await;
    assert_eq!(error_code(&answer), "deadline_exceeded");
    assert!(
        answer["duration_ms"].as_f64().unwrap() < 30_000.0,
        "{answer}"
    );
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_its_cap() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "membomb"})).await;
    assert_eq!(error_code(&answer), "memory_exhausted");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("32 MiB"),
        "{answer}"
    );
    d.assert_healthy().await;
}

#[tokio::test]
async fn runaway_recursion_is_a_trap_with_a_backtrace() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "recursion"})).await;
    assert_eq!(error_code(&answer), "trap");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("call stack"), "{message}");
    assert!(
        answer["error"]["backtrace"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        "{answer}"
    );
}

#[tokio::test]
async fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "panic"})).await;
    assert_eq!(error_code(&answer), "trap");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fixture panic: the check blew up"),
        "{message}"
    );
    assert!(
        answer["error"]["backtrace"]
            .as_str()
            .unwrap()
            .contains("fixture_check"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_filesystem_is_not_there() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "file"})).await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "error", "{answer}");
    let summary = v["summary"].as_str().unwrap();
    assert!(summary.starts_with("file read failed"), "{summary}");
    if let Ok(hostname) = std::fs::read_to_string("/etc/hostname") {
        assert!(
            !summary.contains(hostname.trim()),
            "the file leaked: {summary}"
        );
    }
}

#[tokio::test]
async fn a_huge_output_is_refused() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "huge-output"})).await;
    assert_eq!(error_code(&answer), "output_too_large");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("65536")
    );
}

#[tokio::test]
async fn an_answer_over_four_mebibytes_arrives_whole() {
    let d = Daemon::start().await;
    d.upload_ok("big", "fixture_check").await;
    d.grant(
        "big",
        json!({"limits": {"max_output_bytes": 8 * 1024 * 1024}}),
    )
    .await;
    let answer = d.verify("big", json!({"mode": "huge-output"})).await;
    let summary = verdict(&answer)["summary"].as_str().unwrap_or_default();
    assert_eq!(summary.len(), 4 * 1024 * 1024, "the answer was cut");
    // The audit entry of the invocation is there all the same.
    let (_, log) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/audit?limit=1"))
        .await;
    let log = log["entries"].clone();
    assert_eq!(
        log[0]["action"], "POST /api/v1/plugins/{name}/{version}/invoke",
        "{log}"
    );
    assert_eq!(log[0]["status"], 200, "{log}");
}

#[tokio::test]
async fn a_plugins_key_value_store_stops_at_its_total_and_says_so() {
    let d = Daemon::start_with_config("[plugins]\nkv_quota_mib = 1\n").await;
    d.upload_ok("filler", "fixture_check").await;
    // Ten values of 200 KiB: the sixth would take it past 1 MiB.
    let answer = d
        .verify("filler", json!({"mode": "kv-fill", "count": "10"}))
        .await;
    // The check reports the refusal as its error verdict.
    assert_eq!(verdict(&answer)["status"], "error", "{answer}");
    let message = verdict(&answer)["summary"].as_str().unwrap_or_default();
    assert!(
        message.contains("key-value store is full") && message.contains("kv_quota_mib"),
        "{answer}"
    );
    let (status, plugin) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins/filler"))
        .await;
    assert_eq!(status, 200, "{plugin}");
    let used = plugin["kv_used_bytes"].as_u64().unwrap();
    assert_eq!(plugin["kv_quota_bytes"], 1024 * 1024, "{plugin}");
    assert!(
        used > 5 * 200 * 1024 && used <= 1024 * 1024,
        "{used} bytes kept"
    );
}

#[tokio::test]
async fn a_non_finite_metric_is_malformed_output() {
    let d = hostile_daemon().await;
    let answer = d.verify("hostile", json!({"mode": "nan"})).await;
    assert_eq!(error_code(&answer), "malformed_output");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`bad`")
    );
}

#[tokio::test]
async fn a_granted_host_is_reachable_and_the_same_plugin_without_the_grant_is_denied() {
    let server = CountingServer::start("hello from loopback").await;
    let d = Daemon::start().await;
    d.upload_ok("fetch", "fixture_check").await;
    let params = json!({"mode": "http-get", "url": format!("{}/status", server.origin())});

    let denied = d.verify("fetch", params.clone()).await;
    assert_eq!(error_code(&denied), "host_denied");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&server.origin()),
        "{denied}"
    );
    assert_eq!(server.hits(), 0, "a denied request reached the server");

    d.grant("fetch", json!({"allowed_hosts": [server.origin()]}))
        .await;
    let allowed = d.verify("fetch", params).await;
    let v = verdict(&allowed);
    assert_eq!(v["summary"], "hello from loopback", "{allowed}");
    assert_eq!(allowed["http_requests"], 1);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_host_header_cannot_smuggle_a_request_to_another_host() {
    let granted = CountingServer::start("granted").await;
    let other = CountingServer::start("other").await;
    let d = Daemon::start().await;
    d.upload_ok("sneaky", "fixture_check").await;
    d.grant("sneaky", json!({"allowed_hosts": [granted.origin()]}))
        .await;
    let answer = d
        .verify(
            "sneaky",
            json!({"mode": "host-header", "url": format!("{}/", other.origin()), "host": granted.addr.to_string()}),
        )
        .await;
    assert_eq!(error_code(&answer), "host_denied", "{answer}");
    assert_eq!(
        other.hits(),
        0,
        "the request reached the host that was not granted"
    );
    assert_eq!(granted.hits(), 0);
}

#[tokio::test]
async fn outbound_requests_are_capped_per_invocation() {
    let server = CountingServer::start("ok").await;
    let d = Daemon::start().await;
    d.upload_ok("chatty", "fixture_check").await;
    d.grant(
        "chatty",
        json!({"allowed_hosts": [server.origin()], "limits": {"max_outbound_requests": 3}}),
    )
    .await;
    let answer = d
        .verify(
            "chatty",
            json!({"mode": "many-requests", "count": "5", "url": format!("{}/", server.origin())}),
        )
        .await;
    assert_eq!(error_code(&answer), "host_denied");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 3"),
        "{answer}"
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn fifty_healthy_calls_succeed_while_a_hostile_plugin_spins() {
    let d = Daemon::start().await;
    d.upload_ok("spinner", "fixture_check").await;
    d.upload_ok("healthy", "fixture_check").await;
    d.grant("spinner", json!({"limits": {"deadline_ms": 8000}}))
        .await;
    let spin = async {
        let answer = d.verify("spinner", json!({"mode": "loop"})).await;
        (answer, std::time::Instant::now())
    };
    let healthy = async {
        let calls = (0..50).map(|_| d.verify("healthy", json!({})));
        let answers = futures::future::join_all(calls).await;
        (answers, std::time::Instant::now())
    };
    let ((spun, spin_done), (answers, healthy_done)) = tokio::join!(spin, healthy);
    for answer in &answers {
        assert_eq!(verdict(answer)["status"], "pass");
    }
    assert_eq!(error_code(&spun), "deadline_exceeded");
    assert!(
        healthy_done < spin_done,
        "the healthy calls finished only after the spinner was stopped"
    );
}
