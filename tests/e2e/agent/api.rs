//! The agent API as a client meets it, on a real agent process: the token
//! required (health aside), bodies bounded and checked field by field,
//! unknown keys said so, a step asked again under its key answered from the
//! journal without being done again, and a failed step kept under its key
//! with its reason.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{hosts, installs};

#[tokio::test]
async fn the_agent_api_guards_its_steps_and_does_each_once() {
    let hosts = hosts(1).await;
    hosts.store.publish("2.0.0").unwrap();
    let base = format!("http://{}/agent", hosts.hosts[0].agent_addr);
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let token = Some(hosts.token());
    let step =
        |key: &str, version: &str| json!({"key": key, "version": version, "operation": "deploy"});

    // Health is open; every other route wants the token.
    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(health["version"], "1.0.0", "{health}");
    let (status, body) = post("/deploy", None, step("k1", "2.0.0")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.missing_token"))
    );
    let (status, body) = post("/deploy", Some("not-the-agent-token"), step("k1", "2.0.0")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.bad_token"))
    );
    let status = http
        .get(format!("{base}/status"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bodies: bounded, and each field checked by name.
    let huge = json!({"key": "k".repeat(20_000), "version": "2.0.0", "operation": "deploy"});
    let (status, _) = post("/deploy", token, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    for (body, field) in [
        (step("k1", "../../etc"), "`version`"),
        (step("", "2.0.0"), "`key`"),
        (
            json!({"key": "k1", "version": "2.0.0", "operation": "reboot"}),
            "`operation`",
        ),
        (json!({"key": "k1"}), "version"),
    ] {
        let (status, answer) = post("/deploy", token, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], "request.invalid", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let unknown = http
        .get(format!("{base}/operations/never-seen"))
        .bearer_auth(hosts.token())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // A step asked twice under its key is done once.
    for _ in 0..2 {
        let (status, answer) = post("/deploy", token, step("k1", "2.0.0")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["step"], "deployed", "{answer}");
    }
    assert_eq!(installs(&hosts, 0).await, ["1.0.0", "2.0.0"]);
    assert_eq!(hosts.store.requests("2.0.0.tar.gz"), 1);
    hosts.await_healthy(0, "2.0.0").await.unwrap();
    let (status, answer) = post("/enable", token, step("k1", "2.0.0")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(hosts.hosts[0].in_rotation());

    // A failed step is kept under its key with its reason; the running
    // version is left alone.
    let (status, answer) = post("/deploy", token, step("k2", "3.0.0")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "artifact.no_checksum", "{answer}");
    let op: Value = http
        .get(format!("{base}/operations/k2"))
        .bearer_auth(hosts.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(op["step"], "drained", "{op}");
    assert_eq!(op["done"], false, "{op}");
    assert!(op["error"].as_str().unwrap().contains("3.0.0"), "{op}");
    assert_eq!(hosts.hosts[0].current().as_deref(), Some("2.0.0"));
    assert!(
        !hosts.hosts[0].in_rotation(),
        "a failed deploy leaves the host out"
    );
}
