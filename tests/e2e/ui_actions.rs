//! Every way a release manager takes a release or a train back, in a real
//! headless Chromium against the real daemon, and pages that read as the
//! release stands: a blocked rollback explained with its ways out, the step
//! that failed reading failed and those after it skipped, no countdown on a
//! release that is not moving; an emergency rollback; a train rolled back
//! from its page with the comment typed in the dialog.

use serde_json::json;

use crate::support::Daemon;
use crate::support::browser::Browser;
use crate::support::releases::{Recorder, release, wait_for, wait_on, wait_status};
use crate::ui::{at_the_gate, shipped_train};
use crate::way_out::blocked_first_release;

/// A browser signed in as rita, a release manager, at `page`.
async fn as_rita(d: &Daemon, page: &str) -> Browser {
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/{page}", d.base)).await;
    browser
}

#[tokio::test]
async fn a_blocked_release_reads_as_stopped_where_it_failed_and_offers_its_ways_out() {
    let recorder = Recorder::start().await;
    let (d, id, _) = blocked_first_release(&recorder).await;
    let browser = as_rita(&d, &format!("#/releases/{id}")).await;
    browser.wait("#status [data-status='blocked']").await;

    let card = browser.text("#rollback h2").await;
    assert!(card.contains("Rollback blocked"), "{card}");
    let why = browser.text("#blocked-why").await;
    assert!(why.contains("no previous version"), "{why}");
    let ways = browser.text("#ways-out").await;
    for way in [
        "asked again",
        "Roll back with force",
        "Abandon",
        "Ask an admin",
    ] {
        assert!(ways.contains(way), "{way} missing from: {ways}");
    }
    // The canary ran and failed: it reads failed, not current or pending,
    // and what never ran reads skipped. Nothing counts down.
    browser
        .wait("li[data-stage='canary'][data-state='failed']")
        .await;
    let canary = browser.text("li[data-stage='canary']").await;
    assert!(
        canary.contains("verify") && canary.contains("failed"),
        "{canary}"
    );
    assert!(
        browser
            .has("li[data-stage='rollout'] .badge.st-skipped")
            .await
    );
    let timeline = browser.text("#timeline").await;
    assert!(
        !timeline.contains("left") && !timeline.contains("current"),
        "a blocked release shows no progress: {timeline}"
    );
    let api = release(&d, &id).await;
    let states: Vec<&str> = api["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"failed") && states.contains(&"skipped"),
        "{states:?}"
    );
    assert!(!states.contains(&"current"), "{states:?}");

    // Resume would be refused, an emergency rollback has nothing left to
    // hurry, and only an admin abandons.
    for absent in ["#resume", "#roll-back-emergency", "#abandon"] {
        assert!(!browser.has(absent).await, "{absent} is offered");
    }
    browser.click("#roll-back-force").await;
    let body = browser.text("#confirm-body").await;
    assert!(
        body.contains("passes steps that cannot be undone"),
        "{body}"
    );
    browser
        .type_into("#confirm-comment", "the deployer is back")
        .await;
    browser.click("#confirm-ok").await;
    browser.screenshot("blocked-ways-out").await;
    browser.close().await;
    let again = wait_for(&d, &id, "rita's rollback", |r| {
        r["rollback"]["by"] == "rita" && r["status"] == "blocked"
    })
    .await;
    assert_eq!(again["rollback"]["force"], true, "{again:#}");
    let reason = again["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(reason.ends_with("the deployer is back"), "{again:#}");
}

#[tokio::test]
async fn an_emergency_rollback_undoes_every_batch_at_once_and_says_so_first() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let browser = as_rita(&d, &format!("#/releases/{id}")).await;
    browser.click("#roll-back-emergency").await;
    let body = browser.text("#confirm-body").await;
    assert!(
        body.contains("at once") && body.contains("without verifying"),
        "{body}"
    );
    let colour = browser
        .eval("return document.getElementById('confirm-ok').className")
        .await;
    assert_eq!(colour, json!("danger"));
    browser
        .type_into("#confirm-comment", "checkout is down")
        .await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='rolled-back']").await;
    browser.close().await;
    let done = wait_status(&d, &id, "rolled-back").await;
    assert_eq!(done["rollback"]["mode"], "emergency", "{done:#}");
    let reason = done["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(reason.ends_with("checkout is down"), "{done:#}");
}

#[tokio::test]
async fn a_rollback_labels_the_verdicts_taken_while_verifying_it() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let browser = as_rita(&d, &format!("#/releases/{id}")).await;
    browser.click("#roll-back").await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='rolled-back']").await;
    let done = release(&d, &id).await;
    let during: Vec<_> = done["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["rollback"] == true)
        .collect();
    assert!(
        !during.is_empty(),
        "no verdict marked as the rollback's: {done:#}"
    );
    let labels = browser
        .eval("return document.querySelectorAll('#verdicts .badge.rollback-check').length")
        .await;
    assert_eq!(labels, json!(during.len()), "{done:#}");
    // The stage the release stood at when rita stopped it reads stopped.
    browser
        .wait("li[data-stage='go-ahead'][data-state='stopped']")
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_train_is_rolled_back_from_its_page_with_the_comment_typed() {
    let recorder = Recorder::start().await;
    let (d, id, shipped) = shipped_train(&recorder).await;
    let path = format!("/api/v1/trains/{id}");
    let page = format!("{}/#/trains/{id}", d.base);

    // A viewer follows the train and is offered nothing.
    let viewer = d.create_token("vic", "viewer").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &viewer).await;
    browser.goto(&page).await;
    browser.wait("svg.graph g.node[data-app='db']").await;
    assert!(!browser.has("#roll-back-train").await);
    // Nor a link to the audit log it may not read; the page itself says so.
    let hidden = browser
        .eval("return document.querySelector(\"[data-nav='audit']\").hidden")
        .await;
    assert_eq!(hidden, json!(true));
    browser.goto(&format!("{}/#/audit", d.base)).await;
    let refused = browser.text("#view").await;
    assert!(
        refused.contains("for release managers and admins") && !refused.contains("Loading"),
        "{refused}"
    );
    browser.close().await;

    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases", d.base)).await;
    // Each member links to its train, in the list and on its page.
    let db = shipped["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["application"] == "db")
        .unwrap()["release"]
        .as_str()
        .unwrap()
        .to_string();
    let chip = browser
        .wait(&format!("tr[data-release='{db}'] a.train-chip"))
        .await;
    let href = chip.attr("href").await.unwrap().unwrap_or_default();
    assert_eq!(href, format!("#/trains/{id}"));
    browser.goto(&format!("{}/#/releases/{db}", d.base)).await;
    browser.click("#train-link").await;
    browser.wait("#roll-back-train").await;
    browser.click("#roll-back-train").await;
    let body = browser.text("#confirm-body").await;
    assert!(body.contains("web → api → db"), "dependents first: {body}");
    browser
        .type_into("#confirm-comment", "the weekly train broke search")
        .await;
    browser.click("#confirm-ok").await;
    for app in ["db", "api", "web"] {
        browser
            .wait(&format!("svg.graph g.node.s-rolled-back[data-app='{app}']"))
            .await;
    }
    let problem = browser.text("#train-problem").await;
    assert!(
        problem.contains("rita rolled the train back: the weekly train broke search"),
        "{problem}"
    );
    assert!(
        !browser.has("#roll-back-train").await,
        "nothing left to roll back"
    );
    browser.screenshot("train-rolled-back").await;

    // The audit log says it in words, with the comment; the client's
    // port is left out.
    browser.goto(&format!("{}/#/audit", d.base)).await;
    let action = format!("rolled train {id} back");
    let entry = browser
        .wait("#audit tr:has(td.action[title^='POST /api/v1/trains/{id}/rollback'])")
        .await;
    let text = entry.text().await.unwrap();
    assert!(
        text.contains(&action) && text.contains("the weekly train broke search"),
        "{text}"
    );
    assert!(
        text.contains("127.0.0.1") && !text.contains("127.0.0.1:"),
        "{text}"
    );
    browser.close().await;

    let done = wait_on(&d, &path, None, "the train to unwind", |t| {
        t["status"] == "rolled-back"
    })
    .await;
    let web = done["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["application"] == "web")
        .unwrap()["release"]
        .as_str()
        .unwrap()
        .to_string();
    let member = release(&d, &web).await;
    let reason = member["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the weekly train broke search"),
        "{member:#}"
    );
    let (ok, out, err) = crate::support::cli(&d, &["audit", "--actor", "rita"]);
    assert!(
        ok && out.contains("the weekly train broke search"),
        "{out}{err}"
    );
}
