//! The OpenAPI document: served without a token, it describes exactly the
//! routes the daemon serves, which token each needs, and the error body of
//! every refusal.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::Daemon;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Every operation of the document: method (upper case), path, operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let method = method.to_uppercase();
            if METHODS.contains(&method.as_str()) {
                found.push((method, path.clone(), op.clone()));
            }
        }
    }
    found
}

/// A path with every parameter filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_describes_every_route_the_daemon_serves() {
    let d = Daemon::start().await;
    let response = reqwest::get(d.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "Greenlight");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let routes: BTreeSet<(String, String)> = greenlight::api::routes()
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> =
        ops.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty(), "not documented: {undocumented:?}");
    assert!(unrouted.is_empty(), "documented, not routed: {unrouted:?}");

    // Every refusal is documented with the one error body.
    assert_eq!(
        doc["components"]["schemas"]["ErrorBody"]["required"],
        json!(["code", "message"])
    );
    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    let mut refusals = 0;
    for (method, path, op) in &ops {
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') {
                refusals += 1;
                assert_eq!(
                    response["content"]["application/json"]["schema"], error_body,
                    "{method} {path} {status}"
                );
            }
        }
    }
    assert!(refusals > 0);

    // The daemon serves every documented operation, and no other method on
    // the same paths; without a token, exactly the operations documented as
    // needing one answer 401.
    let http = reqwest::Client::new();
    let paths: BTreeSet<&str> = routes.iter().map(|(_, p)| p.as_str()).collect();
    for path in paths {
        for method in METHODS {
            let response = http
                .request(method.parse().unwrap(), d.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let op = ops
                .iter()
                .find(|(m, p, _)| m == method && p == path)
                .map(|(_, _, op)| op);
            let Some(op) = op else {
                assert_eq!(status, 405, "{method} {path} is served but not documented");
                continue;
            };
            let body: Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
            if op.get("security").is_some() {
                assert_eq!(status, 401, "{method} {path} without a token: {body}");
                assert_eq!(
                    op["responses"]["401"]["content"]["application/json"]["schema"], error_body,
                    "{method} {path} does not document its 401"
                );
                assert_eq!(body["code"], "auth.unauthorized");
            } else if method == "POST" && path == "/api/v1/session" {
                // Signing in takes its token in the body; with no body it
                // is refused for that, not for a missing header.
                assert_eq!(status, 415, "{method} {path} without a body: {body}");
            } else {
                assert_eq!(status, 200, "{method} {path} without a token: {body}");
            }
        }
    }
}
