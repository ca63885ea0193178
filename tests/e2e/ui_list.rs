//! The releases list read at a glance, in a real headless Chromium: where
//! each active release stands (stage, batch and step x of y, a bar of the
//! steps done), a gate's expiry counting down, and for a finished release
//! when it finished and how long it took.

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::releases::{Recorder, command, release, wait_status};
use crate::ui::at_the_gate;

#[tokio::test]
async fn the_list_shows_where_each_release_stands_and_when_the_finished_ones_ended() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let manager = d.create_token("rita", "release-manager").await;

    // The API says it first.
    let (status, list) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/releases"))
        .await;
    assert_eq!(status, 200, "{list}");
    let p = &list[0]["progress"];
    assert_eq!(p["stage"], "go-ahead", "{p:#}");
    assert_eq!(p["stage_number"], 3, "{p:#}");
    assert_eq!(p["stages"], 4, "{p:#}");
    assert_eq!(p["step"], "approval", "{p:#}");
    let gate = release(&d, &id).await["gate"]["expires_at_ms"].clone();
    assert_eq!(p["gate_expires_ms"], gate, "{p:#}");

    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    let row = format!("tr[data-release='{id}']");
    browser.wait(&format!("{row} td.progress .bar")).await;
    let cell = browser.text(&format!("{row} td.progress")).await;
    assert!(
        cell.contains("stage 3 of 4: go-ahead") && cell.contains("approval"),
        "{cell}"
    );
    // The standard gate expires an hour after it opened.
    assert!(
        cell.contains("waiting at gate")
            && (cell.contains("expires in 59m") || cell.contains("expires in 1h")),
        "{cell}"
    );
    let width = browser
        .eval(&format!(
            "return document.querySelector(\"{row} .bar-done\").style.width"
        ))
        .await;
    let done = p["steps_done"].as_u64().unwrap();
    let total = p["steps_total"].as_u64().unwrap();
    assert_eq!(
        width,
        json!(format!("{}%", (100 * done + total / 2) / total)),
        "{p:#}"
    );
    browser.screenshot("list-progress").await;

    // Approved, it runs to its end, and the list says when it ended.
    command(&d, &id, "approve", json!({})).await;
    let finished = wait_status(&d, &id, "succeeded").await;
    browser
        .wait(&format!("{row} [data-status='succeeded']"))
        .await;
    let ended = browser.text(&format!("{row} td.finished")).await;
    assert!(ended.contains("took"), "{ended}");
    let at = finished["finished_ms"].as_u64().unwrap();
    let stamp = stamp_of(at);
    assert!(ended.contains(&stamp), "{ended} lacks {stamp}");
    let cell = browser.text(&format!("{row} td.progress")).await;
    assert!(
        cell.contains(&format!("{total} of {total} steps")),
        "{cell}"
    );
    browser.close().await;
}

/// `ms` as the UI writes times (`2027-01-15 08:10:00 UTC`), to the minute.
fn stamp_of(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .format("%Y-%m-%d %H:%M")
        .to_string()
}
