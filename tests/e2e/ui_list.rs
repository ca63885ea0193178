//! Read at a glance, in a real headless Chromium: in the releases list,
//! where each active release stands (stage, batch and step x of y, a bar
//! of the steps done), a gate's expiry counting down, and for a finished
//! release when it finished and how long it took; at a gate, the flow's
//! instructions and links, what expiry does, and the evidence condensed to
//! the latest round of each check, beside Approve on a laptop's screen.

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::releases::{
    Recorder, advance, apply_flow, command, put_environment, release, release_daemon,
    standard_flow, wait_for, wait_on, wait_status,
};
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
    browser.goto(&format!("{}/#/releases", d.base)).await;
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

#[tokio::test]
async fn a_gate_shows_its_instructions_and_condensed_evidence_beside_approve_on_a_laptop() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.client.set_window_size(1366, 768).await.unwrap();
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser.wait("#gate #latest").await;

    let instructions = browser.text("#gate-instructions").await;
    assert!(
        instructions.contains("Reject if checkout errors rose"),
        "{instructions}"
    );
    let link = browser.wait("#gate-links a").await;
    assert_eq!(link.text().await.unwrap(), "Shop dashboard");
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some("https://grafana.example.com/d/shop")
    );
    let expiry = browser.text("#gate-on-expiry").await;
    assert_eq!(expiry, "at expiry the release is rolled back");

    // One row per check with a square per round, however many rounds ran.
    let gate = release(&d, &id).await;
    let rounds = gate["verdicts"].as_array().unwrap().len();
    assert!(rounds >= 2, "{gate:#}");
    let row = browser.text("#latest tbody tr").await;
    assert!(row.contains(&format!("{rounds} rounds")), "{row}");
    let squares = browser
        .eval("return document.querySelectorAll('#latest .trend .round').length")
        .await;
    assert_eq!(squares, json!(rounds));
    let count = browser.text("#evidence-count").await;
    assert!(
        count.contains("1 check, latest round of each: all passing")
            && count.contains(&format!("Full history: {rounds} verdicts")),
        "{count}"
    );

    // Approve and the evidence in one 1366x768 screen, without scrolling.
    let seen = browser
        .eval(
            "const inside = (id) => { const b = document.getElementById(id).getBoundingClientRect(); \
             return b.top >= 0 && b.bottom <= window.innerHeight; }; \
             return [window.innerWidth, window.scrollY, inside('approve'), inside('latest')];",
        )
        .await;
    assert_eq!(
        seen,
        json!([1366, 0, true, true]),
        "width, scroll, approve, evidence"
    );
    browser.screenshot("gate-laptop").await;

    // Each batch names its targets; the legend says which version runs.
    let canary = gate["stages"][1]["steps"][0]["targets"][0]
        .as_str()
        .unwrap()
        .to_string();
    let named = browser.text("li[data-stage='canary'] .step-targets").await;
    assert_eq!(named, format!(": {canary}"));
    let deployed = browser.text("[data-legend='verified']").await;
    assert_eq!(deployed, "verified (2.0.0): 1");
    let pending = browser.text("[data-legend='pending']").await;
    assert_eq!(pending, "pending (no known version): 3");
    let version = browser
        .eval(&format!(
            "return document.querySelector(\"[data-target='{canary}']\").dataset.version"
        ))
        .await;
    assert_eq!(version, json!("2.0.0"));

    // The full history is one click away.
    browser.click("#full-history").await;
    let scrolled = browser
        .eval("return document.getElementById('verdicts').getBoundingClientRect().top < window.innerHeight")
        .await;
    assert_eq!(scrolled, json!(true));
    browser.close().await;
}

#[tokio::test]
async fn a_train_says_which_member_waits_for_a_person_and_where_each_stands() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    for app in ["db", "api"] {
        put_environment(&d, app, "prod", 2, &[]).await;
    }
    let (status, train) = d
        .send(d.request(reqwest::Method::POST, "/api/v1/trains").json(&json!({
            "name": "pair", "members": [
                {"application": "db", "environment": "prod", "version": "2.0.0", "flow": "standard"},
                {"application": "api", "environment": "prod", "version": "2.0.0", "flow": "standard",
                 "depends_on": ["db"]}
            ]})))
        .await;
    assert_eq!(status, 201, "{train}");
    let id = train["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/trains/{id}");
    let started = wait_on(&d, &path, None, "db's release", |t| {
        !t["members"][0]["release"].is_null()
    })
    .await;
    let db = started["members"][0]["release"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&d, &db, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 10 * 60_000).await;
    wait_status(&d, &db, "waiting-approval").await;

    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/trains", d.base)).await;
    let listed = browser
        .wait(&format!(
            "tr[data-train='{id}'] [data-attention='waiting-approval']"
        ))
        .await;
    assert_eq!(listed.text().await.unwrap(), "db waiting for approval");
    browser.goto(&format!("{}/#/trains/{id}", d.base)).await;
    browser
        .wait("#train g.node[data-app='db'] text.place")
        .await;
    let mark = browser
        .text("#train [data-attention='waiting-approval']")
        .await;
    assert_eq!(mark, "db waiting for approval");
    let node = browser.text("g.node[data-app='db'] text.place").await;
    assert_eq!(node, "stage 3/4: go-ahead");
    let waiting = browser.text("g.node[data-app='api'] text.place").await;
    assert_eq!(waiting, "waits for db");
    browser.screenshot("train-waiting").await;
    browser.close().await;
}

/// Takes a release of `version` on the standard flow to its gate.
async fn to_the_gate(d: &crate::support::Daemon, version: &str) -> String {
    let id = crate::support::releases::start_release(d, "shop", "prod", version, "standard").await;
    wait_for(d, &id, "the canary bake", |r| !r["next_check_ms"].is_null()).await;
    advance(d, 10 * 60_000).await;
    wait_status(d, &id, "waiting-approval").await;
    id
}

#[tokio::test]
async fn the_version_board_shows_what_runs_where_since_when_and_what_comes() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    put_environment(&d, "shop", "beta", 2, &[]).await;
    let first = to_the_gate(&d, "1.0.0").await;
    command(&d, &first, "approve", json!({})).await;
    let shipped = wait_status(&d, &first, "succeeded").await;
    let second = to_the_gate(&d, "2.0.0").await;

    let viewer = d.create_token("vera", "viewer").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &viewer).await;
    browser.click("[data-nav='versions']").await;
    let prod = "[data-app='shop'] tr[data-env='prod']";
    browser.wait(&format!("{prod} td.running .version")).await;
    assert_eq!(browser.text(&format!("{prod} td.running")).await, "1.0.0");
    let since = browser.text(&format!("{prod} td.since")).await;
    let at = shipped["finished_ms"].as_u64().unwrap();
    assert!(
        since.contains(&stamp_of(at)) && since.contains(&first),
        "{since}"
    );
    let coming = browser.text(&format!("{prod} td.on-its-way")).await;
    assert!(
        coming.contains("2.0.0")
            && coming.contains("waiting-approval")
            && coming.contains("stage 3 of 4: go-ahead"),
        "{coming}"
    );
    let last = browser.text(&format!("{prod} td.last")).await;
    assert!(
        last.contains("1.0.0") && last.contains("succeeded"),
        "{last}"
    );
    let beta = browser.text("[data-app='shop'] tr[data-env='beta']").await;
    assert!(beta.contains("nothing released yet"), "{beta}");
    browser.screenshot("version-board").await;

    // At 2.0.0's gate, each check's latest round sits beside the same
    // check's in the release that put 1.0.0 there.
    browser
        .goto(&format!("{}/#/releases/{second}", d.base))
        .await;
    let previous = browser.wait("#latest td.previous").await;
    let text = previous.text().await.unwrap();
    assert!(text.contains("pass") && text.contains(&first), "{text}");
    let head = browser.text("#latest thead").await;
    assert!(head.contains("Previous version (1.0.0)"), "{head}");
    browser.goto(&format!("{}/#/versions", d.base)).await;
    browser.wait(&format!("{prod} td.running")).await;

    // Live: the approval lands and the board follows.
    command(&d, &second, "approve", json!({})).await;
    wait_status(&d, &second, "succeeded").await;
    browser
        .wait(&format!("{prod} td.running[data-version='2.0.0']"))
        .await;
    let coming = browser.text(&format!("{prod} td.on-its-way")).await;
    assert_eq!(coming, "nothing");
    browser.close().await;
}

#[tokio::test]
async fn a_verdict_a_later_round_superseded_is_not_counted_against_the_gate() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    recorder.verdicts("canary", &["inconclusive only 3 requests sampled"]);
    let id = crate::support::releases::start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    wait_for(&d, &id, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 5 * 60_000).await;
    wait_status(&d, &id, "paused").await;
    command(&d, &id, "resume", json!({})).await;
    advance(&d, 10 * 60_000).await;
    let gate = wait_status(&d, &id, "waiting-approval").await;
    let statuses: Vec<&str> = gate["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"inconclusive"), "{gate:#}");
    assert_eq!(statuses.last(), Some(&"pass"), "{gate:#}");

    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser.wait("#gate #latest").await;
    let count = browser.text("#evidence-count").await;
    assert!(count.contains("all passing"), "{count}");
    // The trend keeps the superseded round, in its colour.
    assert!(browser.has("#latest .trend .round.s-inconclusive").await);
    browser.close().await;
}
