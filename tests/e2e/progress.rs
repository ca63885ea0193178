//! Long-running work (interface 0.2.0): a deployer answers that its rollout
//! is in progress, and the engine journals the progress, asks again with the
//! same idempotency key on the release clock, across a crash, until the
//! work is done or the stage's progress deadline passes.

use serde_json::{Value, json};

use crate::support::Daemon;
use crate::support::releases::{
    CLOCK_START_MS, advance, apply_flow, journal_details, release, set_clock, start_release,
    wait_for, wait_status,
};

/// A rolling flow of two batches whose deployer takes `steps` questions
/// per batch and `rollback_steps` per rolled-back batch.
fn flow(steps: u32, rollback_steps: u32, deadline: &str) -> String {
    format!(
        r#"
name = "rollout"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "kube", params = {{ steps = "{steps}", rollback_steps = "{rollback_steps}" }} }}
batch = "50%"
progress_deadline = "{deadline}"
"#
    )
}

/// A daemon on a manual clock with the 0.2.0 fixture deployer as `kube`, an
/// environment of four workloads with attributes, and `flow` applied.
async fn daemon(flow: &str) -> Daemon {
    let d = Daemon::start_with_config(&format!("manual_clock_ms = {CLOCK_START_MS}\n")).await;
    d.upload_ok("kube", "fixture_deployer_v2").await;
    apply_flow(&d, flow).await;
    let targets: Vec<Value> = (0..4)
        .map(|i| {
            json!({
                "id": format!("shop-{i}"),
                "address": format!("shop-{i}.prod"),
                "attributes": {
                    "cluster": "https://127.0.0.1:6443",
                    "namespace": "prod",
                    "kind": "Deployment",
                    "name": format!("shop-{i}"),
                }
            })
        })
        .collect();
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PUT, "/api/v1/apps/shop/envs/prod")
                .json(&json!({ "targets": targets })),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    d
}

/// Waits until the release reports the progress note `note`.
async fn wait_note(d: &Daemon, id: &str, note: &str) -> Value {
    wait_for(d, id, &format!("progress `{note}`"), |r| {
        r["progress"]["note"] == note
    })
    .await
}

#[tokio::test]
async fn a_rollout_in_progress_is_asked_again_with_its_key_until_done() {
    let d = daemon(&flow(2, 0, "10m")).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "rollout").await;
    let first = wait_note(&d, &id, "1 of 3 steps done").await;
    let progress = &first["progress"];
    assert_eq!(progress["of"]["work"], "deploy", "{first}");
    assert_eq!(
        progress["deadline_ms"].as_u64().unwrap() - progress["since_ms"].as_u64().unwrap(),
        600_000,
        "{first}"
    );
    // Nothing is asked before the time the plugin named.
    advance(&d, 100).await;
    wait_note(&d, &id, "2 of 3 steps done").await;
    advance(&d, 100).await;
    // The second batch starts over with a key of its own.
    wait_note(&d, &id, "1 of 3 steps done").await;
    advance(&d, 100).await;
    wait_note(&d, &id, "2 of 3 steps done").await;
    advance(&d, 100).await;
    let done = wait_status(&d, &id, "succeeded").await;
    assert!(done["progress"].is_null(), "{done}");

    let journal = journal_details(&d, &id).await;
    let kinds: Vec<&str> = journal.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "started",
            "deploy-started",
            "progressed",
            "progressed",
            "deployed",
            "verified",
            "decided",
            "deploy-started",
            "progressed",
            "progressed",
            "deployed",
            "verified",
            "decided",
            "finished"
        ]
    );
    for (kind, detail) in &journal {
        if kind == "deployed" {
            // Three questions about one key: had the key changed between
            // them, the fixture would have started counting again.
            for result in detail["results"].as_array().unwrap() {
                assert_eq!(
                    result["message"], "deployed 2.0.0 after 3 questions (4 attributes)",
                    "{detail}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_rollout_in_progress_carries_on_after_a_crash_with_the_same_key() {
    let d = daemon(&flow(3, 0, "10m")).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "rollout").await;
    wait_note(&d, &id, "1 of 4 steps done").await;
    let now = advance(&d, 100).await;
    wait_note(&d, &id, "2 of 4 steps done").await;

    let d = d.crash_and_restart().await;
    set_clock(&d, now).await;
    // The work is asked about when the journal says, with the key
    // journaled before the crash: the count goes on where it stood.
    advance(&d, 100).await;
    wait_note(&d, &id, "3 of 4 steps done").await;
    advance(&d, 100).await;
    wait_note(&d, &id, "1 of 4 steps done").await;
    for note in ["2 of 4 steps done", "3 of 4 steps done"] {
        advance(&d, 100).await;
        wait_note(&d, &id, note).await;
    }
    advance(&d, 100).await;
    wait_status(&d, &id, "succeeded").await;
    let journal = journal_details(&d, &id).await;
    let starts = journal
        .iter()
        .filter(|(k, _)| k == "deploy-started")
        .count();
    assert_eq!(starts, 2, "one deploy per batch: {journal:?}");
    let deployed: Vec<&Value> = journal
        .iter()
        .filter(|(k, _)| k == "deployed")
        .map(|(_, d)| &d["results"][0]["message"])
        .collect();
    assert_eq!(
        deployed,
        [
            "deployed 2.0.0 after 4 questions (4 attributes)",
            "deployed 2.0.0 after 4 questions (4 attributes)"
        ]
    );
}

#[tokio::test]
async fn work_still_in_progress_at_the_deadline_fails_and_is_rolled_back() {
    let d = daemon(&flow(1_000, 1, "2s")).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "rollout").await;
    wait_note(&d, &id, "1 of 1001 steps done").await;
    // The deadline counts from the first answer in progress.
    advance(&d, 1_000).await;
    wait_note(&d, &id, "2 of 1001 steps done").await;
    advance(&d, 1_000).await;
    // The rollback's own work takes a question in progress too.
    let rolling_back = wait_note(&d, &id, "1 of 2 steps done").await;
    assert_eq!(rolling_back["progress"]["of"]["work"], "rollback");
    advance(&d, 100).await;
    let ended = wait_status(&d, &id, "rolled-back").await;
    let outcome = ended["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("progress deadline of 2s passed (2 of 1001 steps done)"),
        "{outcome}"
    );
    let journal = journal_details(&d, &id).await;
    let failed = journal
        .iter()
        .find(|(k, _)| k == "deploy-failed")
        .expect("the deploy failed");
    assert_eq!(failed.1["retryable"], false, "{failed:?}");
    let r = release(&d, &id).await;
    assert!(r["progress"].is_null(), "{r}");
}

#[tokio::test]
async fn the_release_page_and_release_watch_show_the_progress_as_it_changes() {
    let d = daemon(&flow(2, 0, "10m")).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "rollout").await;
    wait_note(&d, &id, "1 of 3 steps done").await;
    let (ok, shown, err) = crate::support::cli(&d, &["release", "show", &id]);
    assert!(ok, "{err}");
    assert!(
        shown.contains("In progress since 2027-01-15 08:00:00 UTC: 1 of 3 steps done"),
        "{shown}"
    );
    let browser = crate::support::browser::Browser::start().await;
    browser.sign_in(&d.base, &d.token).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser
        .wait("#progress[data-work='deploy'] [data-note='1 of 3 steps done']")
        .await;
    let card = browser.text("#progress").await;
    assert!(
        card.contains("Deploying 2.0.0 at rollout, batch 1: in progress"),
        "{card}"
    );
    assert!(card.contains("progress deadline 10m 00s left"), "{card}");
    advance(&d, 100).await;
    // The page follows the event stream: the new note arrives unasked.
    browser
        .wait("#progress [data-note='2 of 3 steps done']")
        .await;
    browser.close().await;

    // `release watch` prints each note as it was journaled.
    advance(&d, 100).await;
    wait_note(&d, &id, "1 of 3 steps done").await;
    advance(&d, 100).await;
    wait_note(&d, &id, "2 of 3 steps done").await;
    advance(&d, 100).await;
    wait_status(&d, &id, "succeeded").await;
    let (ok, out, err) = crate::support::cli(&d, &["release", "watch", &id]);
    assert!(ok, "{err}");
    let notes: Vec<&str> = out.lines().filter(|l| l.contains("progressed")).collect();
    assert_eq!(notes.len(), 4, "{out}");
    assert!(
        notes[0].ends_with("rollout batch 1 deploy: 1 of 3 steps done"),
        "{out}"
    );
}
