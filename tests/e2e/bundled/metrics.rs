//! `metrics-threshold` reads a Prometheus query API or `/metrics` pages.

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Journal, context, daemon_with, metric, origin, serve};
use crate::support::verdict;

/// A Prometheus query API answering each known query with one series, and
/// an empty vector otherwise; it records every query it gets.
async fn prometheus(answers: &[(&str, &str)], journal: Journal) -> std::net::SocketAddr {
    let answers: HashMap<String, String> = answers
        .iter()
        .map(|(q, v)| (q.to_string(), v.to_string()))
        .collect();
    let app = Router::new().route(
        "/api/v1/query",
        get(move |Query(q): Query<HashMap<String, String>>| {
            let query = q.get("query").cloned().unwrap_or_default();
            journal.push(query.clone());
            let result = match answers.get(&query) {
                Some(v) => json!([{"metric": {"job": "shop"}, "value": [1.0, v]}]),
                None => json!([]),
            };
            async move {
                axum::Json(
                    json!({"status": "success", "data": {"resultType": "vector", "result": result}}),
                )
            }
        }),
    );
    serve(app).await
}

const ERRORS: &str =
    r#"sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))"#;

fn params(prom: std::net::SocketAddr) -> Value {
    json!({
        "prometheus_url": origin(prom),
        "metrics": "error_rate,latency_p99_ms",
        "error_rate.query": ERRORS,
        "error_rate.soft": "> 1%",
        "error_rate.hard": "> 5%",
        "latency_p99_ms.query": "histogram_quantile(0.99, rate(latency_bucket[1m]))",
        "latency_p99_ms.hard": "> 500",
    })
}

#[tokio::test]
async fn prometheus_queries_are_judged_against_hard_and_soft_thresholds() {
    let journal = Journal::default();
    let hard = prometheus(
        &[
            (ERRORS, "0.072"),
            ("histogram_quantile(0.99, rate(latency_bucket[1m]))", "120"),
        ],
        journal.clone(),
    )
    .await;
    let d = daemon_with("metrics", "metrics_threshold").await;
    d.grant("metrics", json!({"allowed_hosts": [origin(hard)]}))
        .await;
    let answer = d
        .invoke("metrics", json!({"context": context(params(hard))}))
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "fail", "{answer}");
    assert_eq!(
        v["summary"],
        "hard breach: error_rate 0.072 > 0.05; latency_p99_ms 120 ok"
    );
    assert_eq!(metric(v, "error_rate"), Some(0.072));
    assert_eq!(metric(v, "latency_p99_ms"), Some(120.0));
    assert_eq!(metric(v, "hard_breaches"), Some(1.0));
    assert_eq!(
        journal.entries(),
        [ERRORS, "histogram_quantile(0.99, rate(latency_bucket[1m]))"],
        "the queries reached Prometheus intact"
    );

    let soft = prometheus(
        &[
            (ERRORS, "0.02"),
            ("histogram_quantile(0.99, rate(latency_bucket[1m]))", "80"),
        ],
        Journal::default(),
    )
    .await;
    let empty = prometheus(&[], Journal::default()).await;
    d.grant(
        "metrics",
        json!({"allowed_hosts": [origin(soft), origin(empty)]}),
    )
    .await;
    let answer = d
        .invoke("metrics", json!({"context": context(params(soft))}))
        .await;
    assert_eq!(verdict(&answer)["status"], "inconclusive", "{answer}");
    let answer = d
        .invoke("metrics", json!({"context": context(params(empty))}))
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "no-data", "{answer}");
    assert_eq!(
        v["summary"],
        "error_rate has no samples; latency_p99_ms has no samples"
    );
}

#[tokio::test]
async fn metrics_pages_of_every_target_are_read_and_the_worst_counts() {
    let page = |ratio: &'static str| async move {
        let text = format!(
            "# TYPE app_error_ratio gauge\napp_error_ratio{{route=\"/\"}} {ratio}\napp_error_ratio{{route=\"/admin\"}} 0.9\n"
        );
        serve(Router::new().route("/metrics", get(move || async move { text }))).await
    };
    let (a, b) = (page("0.001").await, page("0.03").await);
    let d = daemon_with("metrics", "metrics_threshold").await;
    d.grant("metrics", json!({"allowed_hosts": [origin(a), origin(b)]}))
        .await;
    let answer = d
        .invoke(
            "metrics",
            json!({
                "context": context(json!({
                    "metrics": "error_rate",
                    "error_rate.query": "app_error_ratio{route=\"/\"}",
                    "error_rate.soft": "> 1%",
                    "error_rate.hard": "> 5%",
                })),
                "targets": [{"id": "web-1", "address": a.to_string()}, {"id": "web-2", "address": b.to_string()}],
            }),
        )
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "inconclusive", "{answer}");
    assert_eq!(v["summary"], "soft breach: error_rate 0.03 > 0.01");
    assert_eq!(answer["http_requests"], 2);
}

#[tokio::test]
async fn an_unreadable_source_is_an_error_not_a_failure() {
    let broken = serve(Router::new().route(
        "/metrics",
        get(|| async {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "scrape failed",
            )
        }),
    ))
    .await;
    let d = daemon_with("metrics", "metrics_threshold").await;
    d.grant("metrics", json!({"allowed_hosts": [origin(broken)]}))
        .await;
    let url = format!("{}/metrics", origin(broken));
    let answer = d
        .invoke(
            "metrics",
            json!({"context": context(json!({"metrics_url": url, "metrics": "x", "x.hard": "1"}))}),
        )
        .await;
    let v = verdict(&answer);
    assert_eq!(v["status"], "error", "{answer}");
    assert_eq!(
        v["summary"],
        format!("{url}: answered HTTP 500: scrape failed")
    );
}

/// A query is a template: the release's version and the batch's targets
/// reach Prometheus filled in and escaped, the window since the batch was
/// deployed as a duration.
#[tokio::test]
async fn prometheus_queries_are_filled_in_for_the_release_and_its_batch() {
    let journal = Journal::default();
    let rendered = r#"rate(errors{version="2.0.0\"} or vector(1) #", instance=~"10\\.0\\.0\\.1:8080|10\\.0\\.0\\.2:8080"}[3600s])"#;
    let prom = prometheus(&[(rendered, "0.001")], journal.clone()).await;
    let d = daemon_with("metrics", "metrics_threshold").await;
    d.grant("metrics", json!({"allowed_hosts": [origin(prom)]}))
        .await;
    let mut ctx = context(json!({
        "prometheus_url": origin(prom),
        "metrics": "error_rate",
        "error_rate.query": r#"rate(errors{version="${version}", instance=~"${targets.addresses}"}[${window}])"#,
        "error_rate.hard": "> 5%",
    }));
    // A version that tries to end the string early stays inside it.
    ctx["version"] = json!("2.0.0\"} or vector(1) #");
    ctx["batch"] = json!(0);
    // Deployed long ago: the window is capped at `max_window_s`.
    ctx["deployed_at_ms"] = json!(1);
    let answer = d
        .invoke(
            "metrics",
            json!({"context": ctx, "targets": [
                {"id": "web-1", "address": "10.0.0.1:8080"},
                {"id": "web-2", "address": "10.0.0.2:8080"},
            ]}),
        )
        .await;
    assert_eq!(journal.entries(), [rendered], "{answer}");
    assert_eq!(verdict(&answer)["status"], "pass", "{answer}");
}
