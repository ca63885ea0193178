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

#[tokio::test]
async fn a_flow_tells_its_chat_of_the_events_a_person_acts_on() {
    use crate::support::releases::{
        Recorder, advance, apply_flow, command, put_environment, release_daemon, standard_flow,
        start_release, wait_for, wait_status,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = Router::new().route(
        "/hooks/T000/B000",
        post(move |Json(body): Json<Value>| async move {
            let _ = tx.send(body);
            StatusCode::OK
        }),
    );
    let hook = serve(app).await;
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    let (status, body) = d
        .upload("chat", "1.0.0", crate::support::fixture("webhook_notifier"))
        .await;
    assert_eq!(status, 201, "{body}");
    d.grant(
        "chat",
        json!({"secrets": {"webhook_url": format!("{}/hooks/T000/B000", origin(hook))},
               "allowed_hosts": [origin(hook)]}),
    )
    .await;
    // A notifier must be one: `health` is a check.
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/flows")
                .header("content-type", "application/toml")
                .body("name = \"x\"\nversion = 1\nnotify = [{ plugin = \"health\" }]\n\n[[stages]]\nname = \"gate\"\nkind = \"approval\"\n"),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("notify[0]"),
        "{body}"
    );
    // Top-level keys come before the first stage's table.
    let flow = format!(
        "notify = [{{ plugin = \"chat\" }}]\n{}",
        standard_flow(&recorder)
    );
    apply_flow(&d, &flow).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    wait_for(&d, &id, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 600_000).await;
    wait_status(&d, &id, "waiting-approval").await;
    let (status, body) = command(&d, &id, "approve", json!({"comment": "canary is clean"})).await;
    assert_eq!(status, 200, "{body}");
    wait_status(&d, &id, "succeeded").await;

    // Each notice is sent on its own, so they may arrive in any order.
    let mut texts = Vec::new();
    while texts.len() < 4 {
        let body = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only these notices came: {texts:#?}"))
            .unwrap();
        assert_eq!(body["greenlight"]["release_id"], id.as_str());
        texts.push(body["text"].as_str().unwrap().to_string());
    }
    texts.sort();
    assert_eq!(
        texts,
        [
            "[shop/prod] 2.0.0 approved: admin approved `go-ahead`: canary is clean",
            "[shop/prod] 2.0.0 finished: succeeded: all 10 steps done",
            "[shop/prod] 2.0.0 gate-opened: waiting for approval at `go-ahead`",
            "[shop/prod] 2.0.0 started: started by admin",
        ]
        .map(String::from),
        "the notable events, and no batch chatter"
    );
    assert!(rx.try_recv().is_err(), "no more than the notable events");
}
