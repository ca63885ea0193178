//! `webhook-notifier` posts events in a shape chat tools accept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Journal, context, daemon_with, origin, serve};
use crate::support::error_code;

async fn receiver(status: StatusCode, journal: Journal) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/hooks/T000/B000",
            post(
                move |State(j): State<Journal>, Json(body): Json<Value>| async move {
                    j.push(body.to_string());
                    status
                },
            ),
        )
        .with_state(journal);
    serve(app).await
}

fn event(kind: &str) -> Value {
    json!({
        "context": context(json!({"username": "greenlight"})),
        "event": {"kind": kind, "message": "error_rate 0.07 > 0.05", "at_ms": 1_800_000_000_000u64},
    })
}

#[tokio::test]
async fn an_event_is_posted_with_a_chat_text_and_the_details() {
    let journal = Journal::default();
    let hook = receiver(StatusCode::OK, journal.clone()).await;
    let d = daemon_with("notify", "webhook_notifier").await;
    let url = format!("{}/hooks/T000/B000", origin(hook));

    let answer = d.invoke("notify", event("rolled-back")).await;
    assert_eq!(
        answer["output"]["done"]["fault"]["message"],
        "no webhook URL: grant the secret `webhook_url` or set the parameter `url`",
        "{answer}"
    );

    // The URL is a secret; without its origin in the grant nothing leaves.
    d.grant("notify", json!({"secrets": {"webhook_url": url}}))
        .await;
    let denied = d.invoke("notify", event("rolled-back")).await;
    assert_eq!(error_code(&denied), "host_denied", "{denied}");
    assert!(journal.entries().is_empty());

    d.grant(
        "notify",
        json!({"secrets": {"webhook_url": url}, "allowed_hosts": [origin(hook)]}),
    )
    .await;
    let answer = d.invoke("notify", event("rolled-back")).await;
    assert_eq!(answer["output"]["done"], json!({"ok": null}), "{answer}");
    let posted: Vec<Value> = journal
        .entries()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(posted.len(), 1);
    let body = &posted[0];
    assert_eq!(
        body["text"],
        "[shop/prod] 2.0.0 rolled-back: error_rate 0.07 > 0.05 (stage canary)"
    );
    assert_eq!(body["username"], "greenlight");
    assert_eq!(body["greenlight"]["release_id"], "rel-1");
    assert_eq!(body["greenlight"]["previous_version"], "1.0.0");
    assert_eq!(body["greenlight"]["event"]["kind"], "rolled-back");
    assert_eq!(body["greenlight"]["event"]["at_ms"], 1_800_000_000_000u64);
}

#[tokio::test]
async fn a_failing_webhook_is_a_retryable_fault() {
    let hook = receiver(StatusCode::SERVICE_UNAVAILABLE, Journal::default()).await;
    let d = daemon_with("notify", "webhook_notifier").await;
    d.grant(
        "notify",
        json!({"config": {"webhook_url": format!("{}/hooks/T000/B000", origin(hook))},
               "allowed_hosts": [origin(hook)]}),
    )
    .await;
    let answer = d.invoke("notify", event("succeeded")).await;
    assert_eq!(
        answer["output"]["done"]["fault"],
        json!({"message": "the webhook: answered HTTP 503", "retryable": true}),
        "{answer}"
    );
}
