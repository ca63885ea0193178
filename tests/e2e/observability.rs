//! Readiness and metrics of a daemon that has run a release.

use serde_json::json;

use crate::support::releases::{
    Recorder, advance, apply_flow, command, put_environment, release_daemon, standard_flow,
    start_release, wait_for, wait_status,
};

#[tokio::test]
async fn metrics_count_invocations_stages_and_releases() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    let (status, ready) = d.send(d.request(reqwest::Method::GET, "/readyz")).await;
    assert_eq!(
        (status, ready),
        (200, json!({"store": "ok", "engine": "running"}))
    );

    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    wait_for(&d, &id, "the bake", |r| !r["next_check_ms"].is_null()).await;
    advance(&d, 600_000).await;
    wait_status(&d, &id, "waiting-approval").await;
    let scrape = || async {
        let response = d
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    };
    let text = scrape().await;
    assert!(text.contains("greenlight_approvals_waiting 1"), "{text}");
    command(&d, &id, "approve", json!({})).await;
    wait_status(&d, &id, "succeeded").await;

    let text = scrape().await;
    for needle in [
        "greenlight_plugin_invocations_total{plugin=\"agent\",outcome=\"ok\"} 4",
        "greenlight_plugin_invocations_total{plugin=\"lint\",outcome=\"ok\"} 1",
        "greenlight_plugin_invocation_seconds_count{plugin=\"health\"}",
        "greenlight_stage_seconds_count{kind=\"deploy\"} 2",
        "greenlight_stage_seconds_count{kind=\"approval\"} 1",
        "greenlight_releases{status=\"succeeded\"} 1",
        "greenlight_approvals_waiting 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let anonymous = reqwest::get(d.url("/metrics")).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}
