//! `http-health` probes every target's health endpoint.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{context, daemon_with, metric, origin, serve};
use crate::support::{error_code, verdict};

/// A target whose `/ready` answers `status`.
async fn target(status: StatusCode) -> std::net::SocketAddr {
    serve(Router::new().route("/ready", get(move || async move { (status, "ready") }))).await
}

fn call(targets: &[(&str, std::net::SocketAddr)]) -> Value {
    json!({
        "context": context(json!({"path": "/ready", "timeout_ms": "2000"})),
        "targets": targets.iter().map(|(id, addr)| json!({"id": id, "address": addr.to_string()})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn every_target_is_probed_and_an_unhealthy_one_fails_the_check() {
    let healthy = target(StatusCode::OK).await;
    let sick = target(StatusCode::SERVICE_UNAVAILABLE).await;
    let d = daemon_with("health", "http_health").await;
    d.grant(
        "health",
        json!({"allowed_hosts": [origin(healthy), origin(sick)]}),
    )
    .await;

    let answer = d
        .invoke("health", call(&[("web-1", healthy), ("web-2", healthy)]))
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "pass", "{answer}");
    assert_eq!(
        v["summary"].as_str().unwrap().get(..24),
        Some("2 of 2 targets healthy (")
    );
    assert_eq!(metric(v, "healthy"), Some(2.0));
    assert_eq!(metric(v, "web-2.status"), Some(200.0));
    assert!(
        metric(v, "web-1.latency_ms").is_some_and(|ms| ms > 0.0),
        "{v}"
    );
    assert_eq!(answer["http_requests"], 2);

    let answer = d
        .invoke("health", call(&[("web-1", healthy), ("web-2", sick)]))
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "fail", "{answer}");
    assert_eq!(
        v["summary"],
        "1 of 2 targets unhealthy: web-2 answered HTTP 503"
    );
    assert_eq!(metric(v, "web-2.status"), Some(503.0));
    assert_eq!(metric(v, "unhealthy"), Some(1.0));
}

#[tokio::test]
async fn a_target_that_does_not_answer_is_unhealthy_and_bad_parameters_are_an_error_verdict() {
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let d = daemon_with("health", "http_health").await;
    d.grant("health", json!({"allowed_hosts": [origin(closed)]}))
        .await;
    let v = d.invoke("health", call(&[("web-1", closed)])).await;
    let v = verdict(&v);
    assert_eq!(v["status"], "fail", "{v}");
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("1 of 1 targets unhealthy: web-1 request failed"),
        "{summary}"
    );
    assert_eq!(metric(v, "web-1.status"), Some(0.0));

    let mut bad = call(&[("web-1", closed)]);
    bad["context"]["parameters"]["timeout_ms"] = json!("soon");
    let answer = d.invoke("health", bad).await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "error");
    assert_eq!(
        v["summary"],
        "parameter `timeout_ms`: `soon` is not valid (invalid digit found in string)"
    );
}

#[tokio::test]
async fn without_the_grant_the_probe_is_denied_with_a_clear_error() {
    let healthy = target(StatusCode::OK).await;
    let d = daemon_with("health", "http_health").await;
    let answer = d.invoke("health", call(&[("web-1", healthy)])).await;
    assert_eq!(error_code(&answer), "host_denied", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&origin(healthy)),
        "{answer}"
    );
    d.assert_healthy().await;
}

#[tokio::test]
async fn a_call_cut_at_its_deadline_still_counts_the_requests_it_made() {
    // Accepts the request and never answers.
    let silent = serve(Router::new().route(
        "/ready",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    ))
    .await;
    let d = daemon_with("health", "http_health").await;
    d.grant(
        "health",
        json!({"allowed_hosts": [origin(silent)], "limits": {"deadline_ms": 500}}),
    )
    .await;
    let answer = d
        .invoke(
            "health",
            json!({
                "context": context(json!({"path": "/ready", "timeout_ms": "60000"})),
                "targets": [{"id": "web-1", "address": silent.to_string()}],
            }),
        )
        .await;
    assert_eq!(error_code(&answer), "deadline_exceeded", "{answer}");
    assert_eq!(answer["http_requests"], 1, "{answer}");
}

/// Three targets that accept the request and never answer, each bounded by
/// `timeout_ms = 1500`, under a 4 s deadline: probed one after the other
/// they would need 4.5 s and the call would fail with `deadline_exceeded`;
/// probed at once, the call ends after one timeout with a verdict naming
/// each silent target, and the one healthy target counted as healthy.
#[tokio::test]
async fn silent_targets_are_probed_at_once_and_each_named_within_the_deadline() {
    let silent = || {
        serve(Router::new().route(
            "/ready",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        ))
    };
    let quiet = [silent().await, silent().await, silent().await];
    let healthy = target(StatusCode::OK).await;
    let d = daemon_with("health", "http_health").await;
    let mut origins: Vec<String> = quiet.iter().map(|a| origin(*a)).collect();
    origins.push(origin(healthy));
    d.grant(
        "health",
        json!({"allowed_hosts": origins, "limits": {"deadline_ms": 4000}}),
    )
    .await;
    let mut targets: Vec<(&str, std::net::SocketAddr)> = vec![
        ("web-1", quiet[0]),
        ("web-2", quiet[1]),
        ("web-3", quiet[2]),
    ];
    targets.push(("web-4", healthy));
    let mut input = call(&targets);
    input["context"]["parameters"]["timeout_ms"] = json!("1500");
    let answer = d.invoke("health", input).await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "fail", "{answer}");
    let summary = v["summary"].as_str().unwrap();
    for id in ["web-1", "web-2", "web-3"] {
        assert!(
            summary.contains(&format!(
                "{id} request failed: timed out waiting for the answer"
            )),
            "{summary}"
        );
    }
    assert_eq!(metric(v, "healthy"), Some(1.0), "{v}");
    assert_eq!(metric(v, "web-4.status"), Some(200.0), "{v}");
    assert_eq!(answer["http_requests"], 4, "{answer}");
}
