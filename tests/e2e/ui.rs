//! The web UI in a real headless Chromium against the real daemon: a
//! release manager approves at a gate and watches the release move on
//! without reloading; a viewer is offered nothing to press and is refused
//! when forcing it; a rollback unwinds the stages on screen.

use serde_json::{Value, json};

use crate::support::Daemon;
use crate::support::browser::Browser;
use crate::support::releases::{
    CLOCK_START_MS, Recorder, advance, apply_flow, command, put_environment, release_daemon,
    standard_flow, start_release, wait_for, wait_on, wait_status,
};

const MINUTE: u64 = 60_000;

/// A release of `shop/prod` over `n` targets, waiting at the approval gate
/// after its canary baked.
pub(crate) async fn at_the_gate(recorder: &Recorder, n: usize) -> (Daemon, String) {
    let d = release_daemon(recorder).await;
    apply_flow(&d, &standard_flow(recorder)).await;
    put_environment(&d, "shop", "prod", n, &[]).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    wait_for(&d, &id, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 10 * MINUTE).await;
    wait_status(&d, &id, "waiting-approval").await;
    (d, id)
}

#[tokio::test]
async fn a_release_manager_approves_with_the_evidence_in_view_and_the_release_moves_on_live() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    assert_eq!(browser.text("#who-role").await, "release-manager");
    // Signed in, the version board comes first.
    browser.wait("#board[data-loaded] [data-app='shop']").await;
    browser.click("[data-nav='releases']").await;

    // The list shows the release waiting; its link opens the release.
    browser
        .wait(&format!(
            "tr[data-release='{id}'] [data-status='waiting-approval']"
        ))
        .await;
    browser.screenshot("releases").await;
    browser.click(&format!("tr[data-release='{id}'] a")).await;
    browser.wait("#gate #evidence").await;
    let evidence = browser.text("#gate #evidence").await;
    assert!(evidence.contains("latest round of each"), "{evidence}");
    assert!(
        evidence.contains("pass"),
        "the canary's verdicts: {evidence}"
    );
    let next = browser.text("#next-stage").await;
    assert!(
        next.contains("rollout") && next.contains("of 4 targets"),
        "what approving leads to: {next}"
    );
    assert!(
        browser
            .has("li[data-stage='canary'][data-state='done']")
            .await
    );
    browser.screenshot("gate").await;

    // Approve with a comment; the page must not reload to show what follows.
    browser.eval("window.stayed = true; return null").await;
    browser.click("#approve").await;
    browser
        .type_into("#confirm-comment", "canary looks clean")
        .await;
    browser.click("#confirm-ok").await;
    browser.wait("#approvals li.approved").await;
    let approvals = browser.text("#approvals").await;
    assert!(
        approvals.contains("rita approved go-ahead") && approvals.contains("canary looks clean"),
        "{approvals}"
    );
    assert!(!browser.has("#gate").await, "the gate is closed");
    browser.wait("#status [data-status='succeeded']").await;
    browser
        .wait("li[data-stage='rollout'][data-state='done']")
        .await;
    assert_eq!(
        browser.eval("return window.stayed === true").await,
        json!(true),
        "the page was reloaded"
    );
    let verified = browser
        .eval("return document.querySelectorAll(\"[data-target][data-state='verified']\").length")
        .await;
    assert_eq!(verified, json!(4), "every target shows verified");
    browser.screenshot("approved").await;
    browser.close().await;

    let done = wait_status(&d, &id, "succeeded").await;
    assert_eq!(done["approvals"][0]["by"], "rita");
    assert_eq!(done["approvals"][0]["comment"], "canary looks clean");
}

#[tokio::test]
async fn a_viewer_is_offered_no_approval_and_is_refused_when_forcing_one() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let viewer = d.create_token("vera", "viewer").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &viewer).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser.wait("#gate #evidence").await;
    assert!(browser.has("#not-approver").await);
    for button in ["#approve", "#reject", "#roll-back", "#pause"] {
        assert!(!browser.has(button).await, "a viewer is offered {button}");
    }
    browser.screenshot("viewer").await;

    // Forcing the request from the page: without the CSRF token it is
    // refused as a forgery; with it, as beyond the viewer's role.
    let forced = browser
        .eval_async(&format!(
            r#"
            const done = arguments[0];
            (async () => {{
                const post = (headers) => fetch("/api/v1/releases/{id}/approve", {{
                    method: "POST", credentials: "same-origin",
                    headers: Object.assign({{ "Content-Type": "application/json" }}, headers),
                    body: JSON.stringify({{ comment: "forced" }}),
                }}).then(async (r) => [r.status, (await r.json()).code]);
                const me = await (await fetch("/api/v1/session")).json();
                done([await post({{}}), await post({{ "X-CSRF-Token": me.csrf }})]);
            }})();
            "#
        ))
        .await;
    assert_eq!(
        forced,
        json!([[403, "auth.csrf"], [403, "auth.forbidden"]]),
        "forced approvals"
    );
    browser.close().await;
    let still = wait_status(&d, &id, "waiting-approval").await;
    assert_eq!(still["approvals"], json!([]));
}

#[tokio::test]
async fn a_rollback_from_the_browser_unwinds_the_stages_on_screen() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 4).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser
        .wait("li[data-stage='canary'][data-state='done']")
        .await;

    browser.click("#roll-back").await;
    // The confirmation says what will happen before anything does.
    let body = browser.text("#confirm-body").await;
    assert!(body.contains("1 of 4 targets"), "{body}");
    browser.type_into("#confirm-comment", "wrong build").await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='rolled-back']").await;
    browser
        .wait("li[data-stage='canary'][data-state='rolled-back']")
        .await;
    let rollback = browser.text("#rollback").await;
    assert!(
        rollback.contains("rita") && rollback.contains("wrong build"),
        "{rollback}"
    );
    assert!(browser.has("[data-target][data-state='rolled-back']").await);
    browser.screenshot("rolled-back").await;
    browser.close().await;
    let done: Value = wait_status(&d, &id, "rolled-back").await;
    assert_eq!(done["rollback"]["by"], "rita");
}

#[tokio::test]
async fn a_release_of_a_thousand_targets_shows_every_target_and_stays_usable() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 1000).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser.wait("#gate #evidence").await;
    let shown = browser
        .eval("return document.querySelectorAll('[data-target]').length")
        .await;
    assert_eq!(shown, json!(1000));
    assert!(
        browser
            .text("#next-stage")
            .await
            .contains("of 1000 targets")
    );
    // Interactive: the approve button opens its confirmation at once.
    browser.click("#approve").await;
    browser.wait("dialog#confirm[open]").await;
    browser.screenshot("thousand-targets").await;
    browser.click("#confirm-cancel").await;
    browser.close().await;
}

/// A train "weekly" of db ← api ← web on the quick flow, shipped: the
/// daemon, the train's id and its state at the end.
pub(crate) async fn shipped_train(recorder: &Recorder) -> (Daemon, String, Value) {
    let d = release_daemon(recorder).await;
    apply_flow(&d, &crate::trains::quick_flow(recorder)).await;
    for app in ["db", "api", "web"] {
        put_environment(&d, app, "prod", 2, &[]).await;
    }
    let member = |app: &str, deps: &[&str]| {
        json!({"application": app, "environment": "prod", "version": "2.0.0",
               "flow": "quick", "depends_on": deps})
    };
    let (status, train) = d
        .send(d.request(reqwest::Method::POST, "/api/v1/trains").json(
            &json!({"name": "weekly", "members": [
                member("web", &["api"]), member("api", &["db"]), member("db", &[])
            ]}),
        ))
        .await;
    assert_eq!(status, 201, "{train}");
    let id = train["id"].as_str().unwrap().to_string();
    let shipped = wait_on(
        &d,
        &format!("/api/v1/trains/{id}"),
        None,
        "the train to end",
        |t| t["status"] == "succeeded",
    )
    .await;
    (d, id, shipped)
}

#[tokio::test]
async fn the_train_plugin_and_audit_pages_show_the_graph_the_grants_and_the_log() {
    let recorder = Recorder::start().await;
    let (d, id, _) = shipped_train(&recorder).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/trains", d.base)).await;
    browser.click(&format!("tr[data-train='{id}'] a")).await;
    for app in ["db", "api", "web"] {
        browser
            .wait(&format!("svg.graph g.node.s-succeeded[data-app='{app}']"))
            .await;
    }
    let edges = browser
        .eval("return document.querySelectorAll('svg.graph line.edge').length")
        .await;
    assert_eq!(edges, json!(2), "db → api → web");
    browser.screenshot("train").await;

    browser.goto(&format!("{}/#/plugins", d.base)).await;
    let used = browser.wait("[data-plugin='agent'] .used-by").await;
    assert_eq!(used.text().await.unwrap(), "quick");
    let grant = browser.text("[data-plugin='health'] dl.grant").await;
    assert!(grant.contains(&recorder.origin()), "{grant}");
    browser.screenshot("plugins").await;

    browser.goto(&format!("{}/#/audit", d.base)).await;
    browser.type_into("#audit-actor", "rita").await;
    browser.click("#audit-filters button").await;
    browser
        .wait("#audit[data-query*='actor=rita'] td.action")
        .await;
    let log = browser.text("#audit").await;
    assert!(log.contains("signed in"), "rita's sign-in: {log}");
    assert!(!log.contains("started a train"), "filtered to rita: {log}");
    browser.screenshot("audit").await;
    browser.close().await;
}

#[tokio::test]
async fn the_schedules_page_shows_next_fires_the_last_outcome_and_the_freezes() {
    use crate::schedules::{add_schedule, fired, nightly, setup};
    let recorder = Recorder::start().await;
    let d = setup(&recorder).await;
    let (status, body) = add_schedule(&d, &d.token, nightly()).await;
    assert_eq!(status, 201, "{body}");
    advance(&d, 5_000).await;
    let id = fired(&d).await;
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/freezes")
                .json(&json!({
                    "name": "holidays", "start_ms": CLOCK_START_MS + 86_400_000,
                    "end_ms": CLOCK_START_MS + 3 * 86_400_000, "reason": "end of year"
                })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/freezes")
                .json(&json!({
                    "name": "incident", "start_ms": CLOCK_START_MS,
                    "end_ms": CLOCK_START_MS + 3_600_000, "reason": "checkout incident"
                })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let viewer = d.create_token("vera", "viewer").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &viewer).await;
    browser.goto(&format!("{}/#/schedules", d.base)).await;
    let row = "tr[data-schedule='nightly-beta']";
    browser.wait(&format!("{row} .next-fires li")).await;
    let fires = browser
        .eval(&format!(
            "return document.querySelectorAll(\"{row} .next-fires li\").length"
        ))
        .await;
    assert_eq!(fires, json!(3));
    // The next two fall in the freeze window and say so.
    let frozen = browser
        .eval(&format!(
            "return document.querySelectorAll(\"{row} .next-fires li.frozen\").length"
        ))
        .await;
    assert_eq!(frozen, json!(2));
    // Fire times read as the UI writes times, in the schedule's zone.
    let first = browser.text(&format!("{row} .next-fires li")).await;
    let shape = looks_local(&first);
    assert!(shape, "{first}");
    // The incident freeze is in force now; the holidays are to come.
    browser
        .wait("tr[data-freeze='incident'][data-open='yes'] .badge.open-now")
        .await;
    assert_eq!(
        browser.text("tr[data-freeze='incident'] .open-now").await,
        "in force now"
    );
    assert!(
        browser
            .has("tr[data-freeze='holidays'][data-open='no']")
            .await
    );
    let last = browser.text(&format!("{row} .last")).await;
    assert!(last.contains("started") && last.contains(&id), "{last}");
    browser.wait("tr[data-freeze='holidays']").await;
    assert!(browser.text("#freezes").await.contains("end of year"));
    browser.screenshot("schedules").await;
    // The release it started is a link away.
    browser.click(&format!("{row} .last a")).await;
    browser
        .wait(&format!("#release[data-release='{id}']"))
        .await;
    browser.close().await;
}

/// Whether `text` starts `YYYY-MM-DD HH:MM (` as the UI writes a local time.
fn looks_local(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b' ')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && text[16..].starts_with(" (")
}

#[tokio::test]
async fn a_page_following_events_goes_back_to_signing_in_when_its_token_is_revoked() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 2).await;
    let viewer = d.create_token("vic", "viewer").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &viewer).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    // The page follows the release's events.
    browser.wait("#live.is-live").await;
    let (status, body) = d
        .send(d.request(reqwest::Method::DELETE, "/api/v1/tokens/vic"))
        .await;
    assert_eq!(status, 200, "{body}");
    // The stream ends with the revocation, and the page asks for a token
    // instead of reconnecting.
    browser.wait("#sign-in").await;
    assert!(
        browser
            .text("#banner")
            .await
            .contains("Your session has ended"),
        "{}",
        browser.text("#banner").await
    );
    browser.close().await;
}

/// Waits (up to 20 s, on the page's own ticks) until `selector`'s text
/// matches `pattern` (a JavaScript regular expression); returns the text.
async fn text_matching(browser: &Browser, selector: &str, pattern: &str) -> String {
    let script = format!(
        "const done = arguments[0]; const until = Date.now() + 20000;
         (function look() {{
           const el = document.querySelector({selector:?});
           const text = el ? el.textContent : '';
           if (/{pattern}/.test(text) || Date.now() > until) done(text); else setTimeout(look, 50);
         }})();"
    );
    browser
        .eval_async(&script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_sign_in_page_has_no_navigation_and_the_gate_counts_down_on_the_release_clock() {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 2).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;

    // Signed out, there is nothing to navigate to.
    browser.goto(&format!("{}/", d.base)).await;
    browser.wait("#sign-in").await;
    let shown = browser
        .eval("return getComputedStyle(document.getElementById('nav')).display")
        .await;
    assert_eq!(shown, json!("none"), "navigation shown on the sign-in page");

    // The one-hour gate reads "expires in 59m …", once.
    browser.sign_in(&d.base, &manager).await;
    browser.goto(&format!("{}/#/releases/{id}", d.base)).await;
    browser.wait("#gate-expiry").await;
    let expiry = text_matching(&browser, "#gate-expiry", "^expires in (59m|1h)").await;
    assert!(expiry.starts_with("expires in "), "{expiry}");
    assert!(!expiry.contains("left"), "{expiry}");
    let gate = browser.text("#gate").await;
    assert_eq!(gate.matches("expires").count(), 1, "{gate}");

    // The release clock moves forward 20 minutes while the page is open:
    // the countdown follows it.
    advance(&d, 20 * MINUTE).await;
    let moved = text_matching(&browser, "#gate-expiry", "^expires in 39m").await;
    assert!(moved.starts_with("expires in 39m"), "{moved}");
    browser.screenshot("gate-expiry").await;
    browser.close().await;
}

#[tokio::test]
async fn dialogs_confirm_in_red_what_cannot_be_taken_back_send_their_comment_and_stay_on_their_page()
 {
    let recorder = Recorder::start().await;
    let (d, id) = at_the_gate(&recorder, 2).await;
    let manager = d.create_token("rita", "release-manager").await;
    let browser = Browser::start().await;
    browser.sign_in(&d.base, &manager).await;
    let page = format!("{}/#/releases/{id}", d.base);
    browser.goto(&page).await;
    browser.wait("#gate").await;
    let ok_class = "return document.getElementById('confirm-ok').className";
    let open = "return document.getElementById('confirm').open";

    // Reject confirms in red; Approve in green.
    browser.click("#reject").await;
    assert_eq!(browser.eval(ok_class).await, json!("danger"));
    // Blank is no comment.
    browser.type_into("#confirm-comment", "   ").await;
    browser.click("#confirm-ok").await;
    browser.wait("#confirm-error:not([hidden])").await;
    assert_eq!(
        browser.text("#confirm-error").await,
        "A comment is required."
    );
    // Leaving the page closes the dialog with its error.
    browser
        .eval("location.hash = '#/releases'; return null")
        .await;
    browser.wait(&format!("tr[data-release='{id}']")).await;
    assert_eq!(
        browser.eval(open).await,
        json!(false),
        "the dialog followed"
    );
    browser.goto(&page).await;
    browser.wait("#gate").await;
    browser.click("#approve").await;
    assert_eq!(browser.eval(ok_class).await, json!("primary"));
    browser.click("#confirm-cancel").await;
    browser.click("#roll-back").await;
    assert_eq!(browser.eval(ok_class).await, json!("danger"));
    browser.click("#confirm-cancel").await;

    // A gate offers no pause, which the server would refuse.
    assert!(!browser.has("#pause").await, "Pause offered at a gate");

    // Pause and resume the rollout, each with a comment: both reach the
    // audit log.
    recorder.hold_deploy(1);
    let (status, body) = command(&d, &id, "approve", json!({"comment": "go"})).await;
    assert_eq!(status, 200, "{body}");
    browser.wait("#status [data-status='running']").await;
    browser.click("#pause").await;
    browser.type_into("#confirm-comment", "hold on").await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='paused']").await;
    browser.click("#resume").await;
    browser.type_into("#confirm-comment", "carry on").await;
    browser.click("#confirm-ok").await;
    browser.wait("#status [data-status='running']").await;
    recorder.free();
    browser.wait("#status [data-status='succeeded']").await;
    browser.close().await;
    let (status, log) = d
        .send(d.request(reqwest::Method::GET, &format!("/api/v1/audit?release={id}")))
        .await;
    assert_eq!(status, 200, "{log}");
    let said: Vec<(String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "allowed" || e["code"].is_null())
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["comment"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(_, comment)| !comment.is_empty())
        .collect();
    assert!(
        said.contains(&(
            "POST /api/v1/releases/{id}/resume".to_string(),
            "carry on".to_string()
        )),
        "{said:?}"
    );
    assert!(said.iter().any(|(_, c)| c == "hold on"), "{said:?}");
}
