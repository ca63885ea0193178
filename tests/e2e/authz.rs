//! The authorization matrix: every state-changing endpoint, called by every
//! role, without a token and with a revoked one, is allowed or denied as
//! the roles say.

use reqwest::Method;
use serde_json::json;

use crate::support::Daemon;

const ROLES: [&str; 5] = [
    "admin",
    "release-manager",
    "plugin-author",
    "scheduler",
    "viewer",
];

/// An endpoint, its body, and the roles allowed to call it.
struct Endpoint {
    method: Method,
    path: &'static str,
    body: Body,
    allowed: &'static [&'static str],
}

enum Body {
    None,
    Json(serde_json::Value),
    Text(&'static str, &'static str),
}

fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    let e = |method, path, body, allowed| Endpoint {
        method,
        path,
        body,
        allowed,
    };
    let managers: &[&str] = &["admin", "release-manager"];
    let starters: &[&str] = &["admin", "release-manager", "scheduler"];
    vec![
        e(
            M::POST,
            "/api/v1/plugins?name=probe&version=1.0.0",
            Body::Text("application/wasm", "not a component"),
            &["admin", "plugin-author"],
        ),
        e(
            M::PUT,
            "/api/v1/plugins/probe/grant",
            Body::Json(json!({})),
            &["admin"],
        ),
        e(
            M::POST,
            "/api/v1/plugins/probe/latest/invoke",
            Body::Json(json!({})),
            &["admin", "plugin-author", "release-manager"],
        ),
        e(
            M::POST,
            "/api/v1/flows",
            Body::Text("application/toml", "name = \"f\"\nversion = 1\n"),
            managers,
        ),
        e(
            M::PUT,
            "/api/v1/apps/shop/envs/prod",
            Body::Json(json!({"targets": [{"id": "web-1", "address": "10.0.0.1:80"}]})),
            &["admin"],
        ),
        e(
            M::DELETE,
            "/api/v1/apps/nope/envs/prod",
            Body::None,
            &["admin"],
        ),
        e(
            M::POST,
            "/api/v1/releases",
            Body::Json(
                json!({"application": "shop", "environment": "prod", "version": "1", "flow": "nope"}),
            ),
            starters,
        ),
        e(
            M::POST,
            "/api/v1/releases/nope/approve",
            Body::Json(json!({})),
            managers,
        ),
        e(
            M::POST,
            "/api/v1/releases/nope/reject",
            Body::Json(json!({"comment": "no"})),
            managers,
        ),
        e(
            M::POST,
            "/api/v1/releases/nope/pause",
            Body::Json(json!({})),
            managers,
        ),
        e(
            M::POST,
            "/api/v1/releases/nope/resume",
            Body::None,
            managers,
        ),
        e(
            M::POST,
            "/api/v1/releases/nope/rollback",
            Body::Json(json!({})),
            managers,
        ),
        e(
            M::POST,
            "/api/v1/trains",
            Body::Json(json!({"members": []})),
            starters,
        ),
        e(
            M::POST,
            "/api/v1/trains/nope/rollback",
            Body::None,
            managers,
        ),
        e(
            M::POST,
            "/api/v1/tokens",
            Body::Json(json!({"name": "made-in-matrix", "role": "viewer"})),
            &["admin"],
        ),
        e(M::DELETE, "/api/v1/tokens/nobody", Body::None, &["admin"]),
        e(
            M::POST,
            "/api/v1/clock",
            Body::Json(json!({"advance_ms": 1})),
            &["admin"],
        ),
        e(
            M::POST,
            "/api/v1/schedules",
            Body::Json(
                json!({"name": "matrix", "cron": "0 2 * * *", "application": "shop",
                "environment": "prod", "flow": "nope", "version": "1"}),
            ),
            &["admin", "scheduler"],
        ),
        e(
            M::POST,
            "/api/v1/schedules/nope/enable",
            Body::None,
            &["admin", "scheduler"],
        ),
        e(
            M::POST,
            "/api/v1/schedules/nope/disable",
            Body::None,
            &["admin", "scheduler"],
        ),
        e(
            M::DELETE,
            "/api/v1/schedules/nope",
            Body::None,
            &["admin", "scheduler"],
        ),
        e(
            M::POST,
            "/api/v1/freezes",
            Body::Json(json!({"name": "matrix", "start_ms": 0, "end_ms": 1})),
            managers,
        ),
        e(M::DELETE, "/api/v1/freezes/nope", Body::None, managers),
        e(M::GET, "/api/v1/tokens", Body::None, &["admin"]),
        e(M::GET, "/api/v1/audit", Body::None, managers),
    ]
}

async fn call(d: &Daemon, endpoint: &Endpoint, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().request(endpoint.method.clone(), d.url(endpoint.path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match &endpoint.body {
        Body::None => request,
        Body::Json(v) => request.json(v),
        Body::Text(content_type, text) => request
            .header("content-type", *content_type)
            .body(text.to_string()),
    };
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn every_state_changing_endpoint_allows_exactly_its_roles() {
    let d = Daemon::start_with_config("manual_clock_ms = 1800000000000\n").await;
    let mut tokens = Vec::new();
    for role in ROLES {
        let (status, created) = d
            .send(
                d.request(Method::POST, "/api/v1/tokens")
                    .json(&json!({"name": format!("matrix-{role}"), "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        tokens.push((role, created["token"].as_str().unwrap().to_string()));
    }
    let (_, revoked) = d
        .send(
            d.request(Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "matrix-revoked", "role": "admin"})),
        )
        .await;
    let revoked = revoked["token"].as_str().unwrap().to_string();
    let (status, _) = d
        .send(d.request(Method::DELETE, "/api/v1/tokens/matrix-revoked"))
        .await;
    assert_eq!(status, 200);

    let mut wrong = Vec::new();
    for endpoint in endpoints() {
        let what = format!("{} {}", endpoint.method, endpoint.path);
        for (role, token) in &tokens {
            let (status, body) = call(&d, &endpoint, Some(token)).await;
            let allowed = endpoint.allowed.contains(role);
            let ok = if allowed {
                status != 401 && status != 403 && status < 500
            } else {
                status == 403 && body["code"] == "auth.forbidden"
            };
            if !ok {
                wrong.push(format!("{what} as {role}: {status} {body}"));
            }
        }
        for (who, token) in [
            ("no token", None),
            ("a revoked token", Some(revoked.as_str())),
        ] {
            let (status, body) = call(&d, &endpoint, token).await;
            if status != 401 || body["code"] != "auth.unauthorized" {
                wrong.push(format!("{what} with {who}: {status} {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    d.assert_healthy().await;
}
