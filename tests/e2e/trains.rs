//! Trains end to end: three applications in dependency order, the middle
//! one failing, and bad trains refused with the field named.

use serde_json::{Value, json};

use crate::support::releases::{Recorder, apply_flow, put_environment, release_daemon, wait_on};
use crate::support::{Daemon, assert_refused};

pub(crate) fn quick_flow(recorder: &Recorder) -> String {
    let origin = recorder.origin();
    format!(
        r#"
name = "quick"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "agent", params = {{ record-url = "{origin}/calls" }} }}
batch = "50%"
checks = [{{ plugin = "health", params = {{ mode = "remote", url = "{origin}/verdict" }} }}]
"#
    )
}

fn member(app: &str, deps: &[&str]) -> Value {
    json!({"application": app, "environment": "prod", "version": "2.0.0",
           "flow": "quick", "depends_on": deps})
}

async fn start_train(d: &Daemon, members: Value) -> (u16, Value) {
    d.send(
        d.request(reqwest::Method::POST, "/api/v1/trains")
            .json(&json!({"name": "weekly", "members": members})),
    )
    .await
}

fn statuses(train: &Value) -> Vec<(String, String)> {
    train["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["application"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_train_stops_at_its_failing_member_and_unwinds_in_reverse() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &quick_flow(&recorder)).await;
    for app in ["db", "api", "web"] {
        put_environment(&d, app, "prod", 2, &[]).await;
    }
    // db's two batches pass; api's first batch fails.
    recorder.verdicts("rollout", &["pass", "pass", "fail api error rate 9%"]);
    // Planned first: dependency order, and each member's batches.
    let (status, plan) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/trains/plan")
                .json(&json!({
                    "members": [member("web", &["api"]), member("api", &["db"]), member("db", &[])]
                })),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let planned: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["application"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["db", "api", "web"]);
    assert_eq!(
        plan[0]["stages"][0]["batches"],
        json!([["web-0"], ["web-1"]])
    );
    assert!(recorder.calls().is_empty(), "planning runs nothing");

    // Listed out of order on purpose: the train orders them.
    let (status, train) = start_train(
        &d,
        json!([
            member("web", &["api"]),
            member("api", &["db"]),
            member("db", &[])
        ]),
    )
    .await;
    assert_eq!(status, 201, "{train}");
    assert_eq!(train["order"], json!(["db", "api", "web"]));
    let id = train["id"].as_str().unwrap().to_string();
    let done = wait_on(
        &d,
        &format!("/api/v1/trains/{id}"),
        None,
        "the train to end",
        |t| t["status"] == "rolled-back",
    )
    .await;
    assert_eq!(
        statuses(&done),
        [
            ("web".to_string(), "skipped".to_string()),
            ("api".to_string(), "rolled-back".to_string()),
            ("db".to_string(), "rolled-back".to_string()),
        ]
    );
    assert!(done["members"][0]["release"].is_null(), "web never started");

    // db was deployed first and undone last, after api.
    let calls = recorder.calls();
    let order: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.action, c.targets.join(",")))
        .collect();
    let deploys = recorder.calls_of("deploy");
    assert_eq!(deploys.len(), 3, "db twice, api once: {order:?}");
    let rollbacks = recorder.calls_of("rollback");
    assert_eq!(rollbacks.len(), 3, "{order:?}");
    // api's release holds the failed batch; it is undone before db's two.
    assert_eq!(
        rollbacks[0].key.split('/').next(),
        deploys[2].key.split('/').next()
    );
    assert_eq!(
        rollbacks[1].key.split('/').next(),
        deploys[0].key.split('/').next()
    );
}

#[tokio::test]
async fn bad_trains_are_refused_naming_the_field() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &quick_flow(&recorder)).await;
    for app in ["a", "b", "c"] {
        put_environment(&d, app, "prod", 2, &[]).await;
    }
    let (status, body) = start_train(
        &d,
        json!([
            member("a", &["c"]),
            member("b", &["a"]),
            member("c", &["b"])
        ]),
    )
    .await;
    assert_refused(
        status,
        &body,
        (422, "release.invalid"),
        "members[0].depends_on: the dependencies form a cycle: a → c → b → a",
    );
    let (status, body) = start_train(&d, json!([member("a", &["zed"])])).await;
    assert_refused(
        status,
        &body,
        (422, "release.invalid"),
        "members[0].depends_on[0]: `zed` is not a member",
    );
    let (status, body) = start_train(&d, json!([member("nowhere", &[])])).await;
    assert_refused(
        status,
        &body,
        (404, "release.invalid"),
        "members[0].environment",
    );
    let (status, body) = start_train(&d, json!([{"application": "a"}])).await;
    assert_refused(status, &body, (400, "request.bad_json"), "environment");
}
