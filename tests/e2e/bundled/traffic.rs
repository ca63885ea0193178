//! `http-traffic` steers a router through its weights API.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Journal, context, daemon_with, origin, serve};
use crate::support::Daemon;

/// A router following the contract in `plugins/README.md`; `journal`
/// records every set of weights it is sent.
pub async fn router(journal: Journal) -> std::net::SocketAddr {
    let weights = Arc::new(Mutex::new(json!([{"group": "blue", "percent": 100}])));
    let app =
        Router::new()
            .route(
                "/router/weights",
                get(
                    |State((w, _)): State<(Arc<Mutex<Value>>, Journal)>| async move {
                        Json(json!({"weights": w.lock().unwrap().clone()}))
                    },
                )
                .put(
                    |State((w, j)): State<(Arc<Mutex<Value>>, Journal)>,
                     Json(body): Json<Value>| async move {
                        j.push(body["weights"].to_string());
                        *w.lock().unwrap() = body["weights"].clone();
                        Json(body)
                    },
                ),
            )
            .with_state((weights, journal));
    serve(app).await
}

/// The weights the plugin reads from the router.
async fn current(d: &Daemon, ctx: &Value) -> Value {
    let answer = d
        .invoke(
            "traffic",
            json!({"function": "current-weights", "context": ctx}),
        )
        .await;
    assert!(answer["output"]["weights"]["ok"].is_array(), "{answer}");
    answer["output"]["weights"]["ok"].clone()
}

#[tokio::test]
async fn weights_are_set_and_read_back_through_the_router() {
    let journal = Journal::default();
    let r = router(journal.clone()).await;
    let d = daemon_with("traffic", "http_traffic").await;
    d.grant("traffic", json!({"allowed_hosts": [origin(r)]}))
        .await;
    let ctx = context(json!({"router_url": format!("{}/router", origin(r))}));

    assert_eq!(
        current(&d, &ctx).await,
        json!([{"group": "blue", "percent": 100}])
    );

    let answer = d
        .invoke(
            "traffic",
            json!({"function": "set-weights", "context": ctx,
                   "weights": [{"group": "blue", "percent": 90}, {"group": "green", "percent": 10}]}),
        )
        .await;
    assert_eq!(answer["output"]["done"], json!({"ok": null}), "{answer}");
    assert_eq!(
        journal.entries(),
        [r#"[{"group":"blue","percent":90},{"group":"green","percent":10}]"#]
    );
    assert_eq!(
        current(&d, &ctx).await,
        json!([{"group": "blue", "percent": 90}, {"group": "green", "percent": 10}])
    );

    let answer = d
        .invoke(
            "traffic",
            json!({"function": "set-weights", "context": ctx,
                   "weights": [{"group": "blue", "percent": 50}, {"group": "green", "percent": 40}]}),
        )
        .await;
    assert_eq!(
        answer["output"]["done"]["fault"],
        json!({"message": "the weights add up to 90, not 100", "retryable": false})
    );
    assert_eq!(
        journal.entries().len(),
        1,
        "invalid weights reached the router"
    );
}
