//! `canary-judge` against Datadog's metrics query API.
//!
//! Datadog cannot be reached from the tests, so an axum server plays it.
//! It answers `GET /api/v1/query` ("Query timeseries points", API v1) as
//! Datadog's API reference specifies: `from` and `to` in seconds since the
//! epoch, the keys in the `DD-API-KEY` and `DD-APPLICATION-KEY` headers
//! (anything else is refused with `403 {"errors": ["Forbidden"]}`, as
//! Datadog does), and an answer with `status: "ok"`, `res_type`,
//! `from_date` and `to_date` in milliseconds, and one entry of `series` per
//! group, whose `pointlist` holds `[milliseconds, value]` pairs with `null`
//! for an interval without data.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

use super::{
    CANARY_HOST, DEPLOYED_MS, NOW_MS, STEP_MS, Series, assert_near, daemon, evidence, in_window,
    invocation, judge, median, since_deploy,
};
use crate::bundled::{Journal, origin, serve};
use crate::support::{Daemon, verdict};

const API_KEY: &str = "dd-api-key-4b1f0c";
const APPLICATION_KEY: &str = "dd-app-key-93e7aa";

const METRIC: &str = "shop.request.latency";
const CANARY: &str =
    "avg:shop.request.latency{version:${version},host IN (${targets.ids})} by {host}";
const BASELINE: &str = "avg:shop.request.latency{version:${previous_version}} by {host}";

/// One group of an answer: its points inside `[from, to]`, with a `null`
/// in the interval after every tenth point, as Datadog marks a gap.
fn group(query: &str, s: &Series, from_ms: u64, to_ms: u64) -> Value {
    let mut pointlist = Vec::new();
    let inside = s
        .points
        .iter()
        .filter(|(t, _)| (from_ms..=to_ms).contains(t));
    for (i, (t, v)) in inside.enumerate() {
        pointlist.push(json!([*t as f64, v]));
        if i % 10 == 9 {
            pointlist.push(json!([(*t + STEP_MS / 2) as f64, null]));
        }
    }
    let first = pointlist
        .first()
        .map_or(from_ms as f64, |p| p[0].as_f64().unwrap());
    let last = pointlist
        .last()
        .map_or(to_ms as f64, |p| p[0].as_f64().unwrap());
    json!({
        "metric": METRIC,
        "display_name": METRIC,
        "expression": query,
        "scope": format!("host:{},version:{}", s.host, s.version),
        "tag_set": [format!("host:{}", s.host), format!("version:{}", s.version)],
        "aggr": "avg",
        "interval": STEP_MS / 1000,
        "length": pointlist.len(),
        "start": first,
        "end": last,
        "pointlist": pointlist,
        "query_index": 0,
        "unit": [{"family": "time", "name": "millisecond", "plural": "milliseconds",
                  "scale_factor": 0.001, "short_name": "ms", "id": 10}, null],
    })
}

/// The API's refusal, as Datadog words it.
fn refused(status: StatusCode, why: &str) -> (StatusCode, axum::Json<Value>) {
    (status, axum::Json(json!({"errors": [why]})))
}

/// A Datadog metrics query API: each query it knows answers with its
/// series, one group each, any other with no series; it records every
/// query as `from to query`.
async fn datadog(answers: Vec<(String, Vec<Series>)>, journal: Journal) -> SocketAddr {
    let answers: Arc<HashMap<String, Vec<Series>>> = Arc::new(answers.into_iter().collect());
    let handler = move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| {
        let answers = answers.clone();
        let journal = journal.clone();
        async move {
            let key = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            if key("DD-API-KEY") != Some(API_KEY)
                || key("DD-APPLICATION-KEY") != Some(APPLICATION_KEY)
            {
                return refused(StatusCode::FORBIDDEN, "Forbidden");
            }
            let seconds = |name: &str| q.get(name).and_then(|v| v.parse::<u64>().ok());
            let (Some(from), Some(to), Some(query)) =
                (seconds("from"), seconds("to"), q.get("query"))
            else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "The parameters 'from', 'to' and 'query' are required",
                );
            };
            journal.push(format!("{from} {to} {query}"));
            let (from_ms, to_ms) = (from * 1000, to * 1000);
            let series: Vec<Value> = answers
                .get(query)
                .into_iter()
                .flatten()
                .map(|s| group(query, s, from_ms, to_ms))
                .collect();
            let body = json!({
                "status": "ok",
                "res_type": "time_series",
                "resp_version": 1,
                "query": query,
                "from_date": from_ms,
                "to_date": to_ms,
                "group_by": ["host"],
                "message": "",
                "series": series,
            });
            (StatusCode::OK, axum::Json(body))
        }
    };
    serve(Router::new().route("/api/v1/query", get(handler))).await
}

/// The queries as the judge should send them for the release of `2.0.0`
/// and its batch `web-1`.
fn rendered() -> (String, String) {
    (
        format!("avg:{METRIC}{{version:2.0.0,host IN ({CANARY_HOST})}} by {{host}}"),
        format!("avg:{METRIC}{{version:1.0.0}} by {{host}}"),
    )
}

/// A Datadog answering the two queries with `canary` and the baseline, and
/// a daemon granting the judge its origin and these keys.
async fn api_and_daemon(
    canary: Vec<Series>,
    keys: (&str, &str),
    journal: Journal,
) -> (Value, Daemon) {
    let (canary_q, baseline_q) = rendered();
    let baseline = vec![
        since_deploy("1.0.0", "web-2", 30, 1.0, 11),
        since_deploy("1.0.0", "web-3", 30, 1.0, 12),
    ];
    let api = datadog(vec![(canary_q, canary), (baseline_q, baseline)], journal).await;
    let d = daemon().await;
    d.grant(
        "canary",
        json!({
            "allowed_hosts": [origin(api)],
            "secrets": {"dd-api": keys.0, "dd-app": keys.1},
        }),
    )
    .await;
    let params = json!({
        "provider": "datadog",
        "url": origin(api),
        "api_key_secret": "dd-api",
        "application_key_secret": "dd-app",
        "metrics": "latency",
        "latency.canary": CANARY,
        "latency.baseline": BASELINE,
        "latency.allowed": "10%",
    });
    (invocation("2.0.0", params), d)
}

/// Neither key appears anywhere in what the daemon answered.
fn assert_no_keys(answer: &Value) {
    let text = answer.to_string();
    assert!(
        !text.contains(API_KEY) && !text.contains(APPLICATION_KEY),
        "{text}"
    );
}

#[tokio::test]
async fn datadog_a_slower_canary_fails_with_its_evidence() {
    let journal = Journal::default();
    let canary = since_deploy("2.0.0", CANARY_HOST, 30, 1.3, 13);
    let c = in_window(&[&canary]);
    let (call, d) = api_and_daemon(vec![canary], (API_KEY, APPLICATION_KEY), journal.clone()).await;
    let answer = judge(&d, call, "fail").await;
    let v = verdict(&answer);
    let m = evidence(v, "latency");
    assert_near(&m["value"], median(&c));
    // The gaps Datadog marks with `null` are no samples.
    assert_eq!(
        (&m["samples"], &m["baseline_samples"]),
        (&json!(30), &json!(60))
    );
    let base = since_deploy("1.0.0", "web-2", 30, 1.0, 11);
    let base2 = since_deploy("1.0.0", "web-3", 30, 1.0, 12);
    assert_near(&m["baseline"], median(&in_window(&[&base, &base2])));
    assert!(
        m["detail"]
            .as_str()
            .unwrap()
            .ends_with("30 vs 60 samples: higher than allowed (+10%)"),
        "{m}"
    );
    // The window since the deploy, in seconds, and the templates filled in.
    let (canary_q, baseline_q) = rendered();
    let (from, to) = (DEPLOYED_MS / 1000, NOW_MS / 1000);
    assert_eq!(
        journal.entries(),
        [
            format!("{from} {to} {canary_q}"),
            format!("{from} {to} {baseline_q}")
        ]
    );
    assert_no_keys(&answer);
}

#[tokio::test]
async fn datadog_a_canary_like_its_baseline_passes() {
    let canary = since_deploy("2.0.0", CANARY_HOST, 30, 1.0, 14);
    let (call, d) =
        api_and_daemon(vec![canary], (API_KEY, APPLICATION_KEY), Journal::default()).await;
    let answer = judge(&d, call, "pass").await;
    let v = verdict(&answer);
    assert_eq!(evidence(v, "latency")["status"], "pass");
    assert_no_keys(&answer);
}

#[tokio::test]
async fn datadog_refusing_the_keys_is_an_error_that_names_the_secrets() {
    let canary = since_deploy("2.0.0", CANARY_HOST, 30, 1.0, 15);
    let journal = Journal::default();
    let (call, d) = api_and_daemon(
        vec![canary],
        (API_KEY, "revoked-app-key-0d2c"),
        journal.clone(),
    )
    .await;
    let answer = judge(&d, call, "error").await;
    let v = verdict(&answer);
    assert_eq!(
        v["summary"],
        "latency.canary: Datadog refused the keys of the grant's secrets `dd-api` and \
         `dd-app` (HTTP 403: Forbidden)"
    );
    assert!(journal.entries().is_empty(), "refused before any query");
    assert_no_keys(&answer);
    assert!(
        !answer.to_string().contains("revoked-app-key-0d2c"),
        "{answer}"
    );
}
