//! The fleet's contracts on loopback: the agent API's steps and refusals,
//! and the built-in router's weights and drains.

use serde_json::{Value, json};

use super::{Fleet, FleetOptions, GroupWeight, Router, validate};

async fn fleet(groups: &[&str]) -> Fleet {
    Fleet::start(&FleetOptions {
        instances: 2,
        version: "1.0.0".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        startup_ms: 0,
        work_ms: 0,
    })
    .await
    .unwrap()
}

async fn post(url: String, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(url: String) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_agent_drains_deploys_and_enables_and_remembers_each_step_by_key() {
    let fleet = fleet(&[]).await;
    let router = Router::start(&fleet, "").await.unwrap();
    let agent = format!("http://{}/agent", fleet.instances()[0].addr);
    let op = json!({"key": "k:web-0", "version": "2.0.0", "operation": "deploy"});

    let (status, body) = post(format!("{agent}/deploy"), op.clone()).await;
    assert_eq!((status, &body["code"]), (409, &json!("deploy.not_drained")));
    let (status, body) = post(format!("{agent}/drain"), json!({"key": 1})).await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("request.invalid_body"))
    );
    assert_eq!(get(format!("{agent}/operations/k:web-0")).await.0, 404);

    assert_eq!(post(format!("{agent}/drain"), op.clone()).await.0, 200);
    // Drained, the instance takes no traffic: the router sends it all to
    // the other one.
    for _ in 0..4 {
        let (status, body) = get(format!("http://{}/", router.addr)).await;
        assert_eq!((status, &body["instance"]), (200, &json!("web-1")));
    }
    assert_eq!(post(format!("{agent}/deploy"), op.clone()).await.0, 200);
    let (_, health) = get(format!("{agent}/health")).await;
    assert_eq!(health, json!({"healthy": true, "version": "2.0.0"}));
    let (_, step) = get(format!("{agent}/operations/k:web-0")).await;
    assert_eq!(
        step,
        json!({"step": "deployed", "done": false, "version": "2.0.0"})
    );
    assert_eq!(post(format!("{agent}/enable"), op).await.0, 200);
    let (_, step) = get(format!("{agent}/operations/k:web-0")).await;
    assert_eq!(step["done"], true);
    let snapshot = &fleet.snapshots()[0];
    assert_eq!(snapshot.deploys_of("2.0.0"), 1);
    assert!(!snapshot.drained);
}

#[tokio::test]
async fn the_router_takes_weights_that_name_its_groups_and_add_up_to_100() {
    let fleet = fleet(&["blue", "green"]).await;
    let router = Router::start(&fleet, "blue").await.unwrap();
    let url = format!("{}/weights", router.api_url());
    let client = reqwest::Client::new();
    let bad = client
        .put(&url)
        .json(&json!({"weights": [{"group": "blue", "percent": 60}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["code"], "weights.invalid", "{bad}");

    let all_green =
        json!({"weights": [{"group": "blue", "percent": 0}, {"group": "green", "percent": 100}]});
    let ok = client.put(&url).json(&all_green).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(get(url).await.1, all_green);
    let (_, body) = get(format!("http://{}/", router.addr)).await;
    assert_eq!(body["instance"], "web-1", "web-1 is green");
}

#[tokio::test]
async fn a_faulty_version_fails_one_request_in_ten_and_its_metrics_say_so() {
    let fleet = fleet(&[]).await;
    let agent = format!("http://{}/agent", fleet.instances()[0].addr);
    let op = json!({"key": "k", "version": "2.0.0-faulty"});
    post(format!("{agent}/drain"), op.clone()).await;
    post(format!("{agent}/deploy"), op.clone()).await;
    post(format!("{agent}/enable"), op).await;
    let mut failed = 0;
    for _ in 0..20 {
        if get(format!("http://{}/", fleet.instances()[0].addr))
            .await
            .0
            == 500
        {
            failed += 1;
        }
    }
    assert_eq!(failed, 2);
    let (_, metrics) = get(format!("http://{}/metrics", fleet.instances()[0].addr)).await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("fleet_error_ratio{instance=\"web-0\",version=\"2.0.0-faulty\"} 0.1"),
        "{text}"
    );
    assert!(text.contains("status=\"500\"} 2"), "{text}");
}

fn w(group: &str, percent: u32) -> GroupWeight {
    GroupWeight {
        group: group.into(),
        percent,
    }
}

#[test]
fn weights_must_name_known_groups_once_and_add_up_to_100() {
    let groups = vec!["blue".to_string(), "green".to_string()];
    assert_eq!(validate(&[w("blue", 90), w("green", 10)], &groups), Ok(()));
    assert_eq!(validate(&[w("green", 100)], &groups), Ok(()));
    let err = validate(&[w("blue", 90), w("green", 20)], &groups).unwrap_err();
    assert!(err.contains("add up to 110"), "{err}");
    let err = validate(&[w("red", 100)], &groups).unwrap_err();
    assert!(err.contains("weights[0].group"), "{err}");
    let err = validate(&[w("blue", 50), w("blue", 50)], &groups).unwrap_err();
    assert!(err.contains("named twice"), "{err}");
}
