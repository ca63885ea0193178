//! Every release has a way out. A first release whose deployer cannot undo
//! it (there is no previous version to put back) blocks its rollback; an
//! admin abandons it, which frees the environment for the next release and
//! records that what runs there is unknown.

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::releases::{
    Recorder, advance, apply_flow, put_environment, release, release_daemon, standard_flow,
    start_release, wait_for, wait_status,
};
use crate::support::{Daemon, assert_refused, cli};

/// The standard flow with a deployer that can only put a previous version
/// back, as the bundled `http-deployer` does.
fn flow(recorder: &Recorder) -> String {
    standard_flow(recorder).replace(
        "record-url = ",
        "rollback-needs-previous = \"true\", record-url = ",
    )
}

async fn post(
    d: &Daemon,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    d.send(
        reqwest::Client::new()
            .post(d.url(path))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

/// A first release of `shop/prod` whose canary fails: the policy rolls
/// back, and the deployer has nothing to roll back to.
pub(crate) async fn blocked_first_release(
    recorder: &Recorder,
) -> (Daemon, String, serde_json::Value) {
    let d = release_daemon(recorder).await;
    apply_flow(&d, &flow(recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    recorder.verdicts("canary", &["fail error rate 9%"]);
    let id = start_release(&d, "shop", "prod", "1.0.0", "standard").await;
    advance(&d, 5 * 60_000).await;
    let blocked = wait_status(&d, &id, "blocked").await;
    (d, id, blocked)
}

#[tokio::test]
async fn a_first_release_whose_rollback_blocks_is_abandoned_and_frees_its_environment() {
    let recorder = Recorder::start().await;
    let (d, id, blocked) = blocked_first_release(&recorder).await;
    let manager = d.create_token("rita", "release-manager").await;
    let outcome = blocked["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.contains("no previous version") && outcome.contains("abandon"),
        "the block names its cause and the way out: {outcome}"
    );

    // Held: no other release may start, and forcing the rollback blocks
    // the same way.
    let (status, busy) = d
        .send(d.request(reqwest::Method::POST, "/api/v1/releases").json(&json!({
            "application": "shop", "environment": "prod", "version": "1.0.1", "flow": "standard"
        })))
        .await;
    assert_refused(status, &busy, (409, "release.busy"), &id);
    let path = format!("/api/v1/releases/{id}/rollback");
    let (status, _) = post(&d, &d.token, &path, json!({"force": true})).await;
    assert_eq!(status, 200);
    wait_status(&d, &id, "blocked").await;

    // Only an admin abandons, and says why.
    let path = format!("/api/v1/releases/{id}/abandon");
    let (status, body) = post(&d, &manager, &path, json!({"comment": "stuck"})).await;
    assert_refused(status, &body, (403, "auth.forbidden"), "");
    let (status, body) = post(&d, &d.token, &path, json!({})).await;
    assert_refused(status, &body, (409, "release.comment_required"), "comment");
    let (ok, out, err) = cli(
        &d,
        &[
            "release",
            "abandon",
            &id,
            "--comment",
            "the deployer cannot undo a first release",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("it is now abandoned"), "{out}");

    let abandoned = release(&d, &id).await;
    assert_eq!(abandoned["status"], "abandoned", "{abandoned:#}");
    let (status, env) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/apps/shop/envs/prod"))
        .await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["current_version"], serde_json::Value::Null, "{env}");
    let unknown = env["version_unknown"].as_str().unwrap_or_default();
    assert!(
        unknown.contains(&id) && unknown.contains("abandoned"),
        "{env}"
    );
    let (status, body) = post(&d, &d.token, &path, json!({"comment": "again"})).await;
    assert_refused(status, &body, (409, "release.finished"), "abandoned");

    // The environment is free: the next release starts, and once it
    // succeeds the environment's version is known again.
    let next = start_release(&d, "shop", "prod", "1.0.1", "standard").await;
    let (ok, out, err) = cli(&d, &["audit", "--release", &id]);
    assert!(ok && out.contains("abandon"), "{out}{err}");
    wait_for(&d, &next, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 10 * 60_000).await;
    wait_status(&d, &next, "waiting-approval").await;
    let (status, _) = post(
        &d,
        &d.token,
        &format!("/api/v1/releases/{next}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    wait_status(&d, &next, "succeeded").await;
    let (_, env) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/apps/shop/envs/prod"))
        .await;
    assert_eq!(env["current_version"], "1.0.1", "{env}");
    assert_eq!(env.get("version_unknown"), None, "{env}");
}

#[tokio::test]
async fn the_release_page_offers_a_blocked_release_its_ways_out_and_only_an_admin_abandons() {
    let recorder = Recorder::start().await;
    let (d, id, _) = blocked_first_release(&recorder).await;
    let manager = d.create_token("rita", "release-manager").await;
    let page = format!("{}/#/releases/{id}", d.base);

    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&page).await;
    browser.wait("#status [data-status='blocked']").await;
    browser.wait("#roll-back-force").await;
    assert!(
        !browser.has("#resume").await,
        "a blocked release is not paused: Resume would be refused"
    );
    assert!(!browser.has("#abandon").await, "only an admin abandons");
    browser.close().await;

    let browser = Browser::start().await;
    browser.sign_in(&d.base, &d.token).await;
    browser.goto(&page).await;
    browser.click("#abandon").await;
    let body = browser.text("#confirm-body").await;
    assert!(
        body.contains("shop/prod is freed") && body.contains("unknown"),
        "{body}"
    );
    // Without a comment the dialog stays open and nothing is sent.
    browser.click("#confirm-ok").await;
    assert!(browser.has("dialog#confirm[open]").await);
    assert_eq!(release(&d, &id).await["status"], "blocked");
    browser
        .type_into(
            "#confirm-comment",
            "the deployer cannot undo a first release",
        )
        .await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='abandoned']").await;
    assert!(
        !browser.has("#abandon").await,
        "a finished release offers nothing"
    );
    browser.screenshot("abandoned").await;
    browser.close().await;
    let done = release(&d, &id).await;
    assert_eq!(done["status"], "abandoned", "{done:#}");
}

#[tokio::test]
async fn a_succeeded_release_is_offered_its_rollback_in_the_browser() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let id = start_release(&d, "shop", "prod", "1.0.0", "standard").await;
    wait_for(&d, &id, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 10 * 60_000).await;
    wait_status(&d, &id, "waiting-approval").await;
    let (status, _) = post(
        &d,
        &d.token,
        &format!("/api/v1/releases/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    wait_status(&d, &id, "succeeded").await;
    let manager = d.create_token("rita", "release-manager").await;

    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser.wait("#status [data-status='succeeded']").await;
    browser.click("#roll-back").await;
    let body = browser.text("#confirm-body").await;
    assert!(body.contains("first release"), "{body}");
    for absent in ["#pause", "#resume", "#abandon"] {
        assert!(
            !browser.has(absent).await,
            "{absent} offered on a succeeded release"
        );
    }
    browser.type_into("#confirm-comment", "wrong build").await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='rolled-back']").await;
    browser.close().await;
}
