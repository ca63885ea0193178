//! Restarts: plugins survive and load from their compiled artifacts.

use serde_json::json;

use crate::support::{Daemon, verdict};

#[tokio::test]
async fn plugins_survive_a_restart_and_run_without_recompiling() {
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    d.grant("probe", json!({"config": {"greeting": "again"}}))
        .await;
    let (_, before) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/runtime"))
        .await;
    assert_eq!(before["artifact_cache_misses"], 1, "{before}");

    let d = d.restart().await;
    let (_, list) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins"))
        .await;
    assert_eq!(list[0]["name"], "probe", "{list}");
    let answer = d.verify("probe", json!({})).await;
    assert_eq!(
        verdict(&answer)["summary"],
        "1 targets healthy, greeting=again"
    );
    let (_, after) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/runtime"))
        .await;
    assert_eq!(
        after["artifact_cache_misses"], 0,
        "the plugin was compiled again: {after}"
    );
    assert_eq!(after["artifact_cache_hits"], 1, "{after}");
}
