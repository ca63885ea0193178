//! The authorization matrix: every state-changing endpoint, called by every
//! role, without a token and with a revoked one, is allowed or denied as
//! the roles say; and the same for browser sessions opened with each role.

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
            M::PATCH,
            "/api/v1/plugins/probe/grant",
            Body::Json(json!({"config": {"matrix": "yes"}})),
            &["admin"],
        ),
        e(
            M::POST,
            "/api/v1/plugins/probe/latest/invoke",
            Body::Json(json!({})),
            // A release manager releases with plugins but does not run them
            // at will with their live grant and key-value store.
            &["admin", "plugin-author"],
        ),
        e(
            M::PUT,
            "/api/v1/plugins/probe/owners",
            Body::Json(json!({"owners": ["matrix-plugin-author"]})),
            &["admin"],
        ),
        e(
            M::POST,
            "/api/v1/plugins/probe/1.0.0/approve",
            Body::Json(json!({})),
            &["admin"],
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
            "/api/v1/releases/nope/abandon",
            Body::Json(json!({"comment": "stuck for good"})),
            &["admin"],
        ),
        // A replay changes nothing, but runs plugins: release managers.
        e(
            M::POST,
            "/api/v1/analysis/replay",
            Body::Json(json!({"flow_name": "nope"})),
            managers,
        ),
        // Planning changes nothing: every signed-in role may plan.
        e(
            M::POST,
            "/api/v1/flows/nope/plan",
            Body::Json(json!({"application": "shop", "environment": "prod"})),
            &ROLES,
        ),
        e(
            M::POST,
            "/api/v1/trains/plan",
            Body::Json(json!({"members": []})),
            &ROLES,
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
            M::DELETE,
            "/api/v1/tokens?name=nobody",
            Body::None,
            &["admin"],
        ),
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
        // Signing out is for everyone signed in; it comes last, since it
        // ends the session it is called with.
        e(M::DELETE, "/api/v1/session", Body::None, &ROLES),
    ]
}

/// The route template a concrete path is served by: the one whose
/// segments match, preferring literal segments over parameters as the
/// router does.
fn route_of(method: &Method, path: &str) -> Option<(&'static str, &'static str)> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    greenlight::api::routes()
        .iter()
        .filter(|(m, _)| *m == method.as_str())
        .filter_map(|&(m, template)| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literals = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    continue;
                }
                if part != segment {
                    return None;
                }
                literals += 1;
            }
            Some((literals, (m, template)))
        })
        .max_by_key(|(literals, _)| *literals)
        .map(|(_, route)| route)
}

/// Every state-changing route the router serves is in the matrix, so a new
/// route cannot escape it. Signing in is the one route for callers without
/// a token; its own tests cover it.
#[test]
fn the_matrix_covers_every_state_changing_route() {
    let covered: std::collections::BTreeSet<_> = endpoints()
        .iter()
        .map(|e| {
            route_of(&e.method, e.path)
                .unwrap_or_else(|| panic!("{} {} is no route", e.method, e.path))
        })
        .collect();
    let missing: Vec<_> = greenlight::api::routes()
        .iter()
        .filter(|(method, _)| *method != "GET")
        .filter(|route| **route != ("POST", "/api/v1/session"))
        .filter(|route| !covered.contains(*route))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the matrix: {missing:?}"
    );
}

/// How a call says who it is.
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// A browser session: its cookie and its CSRF token.
    Session(&'a str, &'a str),
}

async fn call(d: &Daemon, endpoint: &Endpoint, auth: Auth<'_>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().request(endpoint.method.clone(), d.url(endpoint.path));
    request = match auth {
        Auth::None => request,
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::Session(cookie, csrf) => request
            .header("cookie", cookie)
            .header("x-csrf-token", csrf),
    };
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
    let tokens = role_tokens(&d).await;
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
            let (status, body) = call(&d, &endpoint, Auth::Bearer(token)).await;
            judge(&mut wrong, &endpoint, role, status, &body);
        }
        for (who, auth) in [
            ("no token", Auth::None),
            ("a revoked token", Auth::Bearer(revoked.as_str())),
        ] {
            let (status, body) = call(&d, &endpoint, auth).await;
            if status != 401 || body["code"] != "auth.unauthorized" {
                wrong.push(format!("{what} with {who}: {status} {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    d.assert_healthy().await;
}

/// A token of each role.
async fn role_tokens(d: &Daemon) -> Vec<(&'static str, String)> {
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
    tokens
}

/// Records a wrong answer of `endpoint` to a caller of `role`.
fn judge(
    wrong: &mut Vec<String>,
    endpoint: &Endpoint,
    role: &str,
    status: u16,
    body: &serde_json::Value,
) {
    let ok = if endpoint.allowed.contains(&role) {
        status != 401 && status != 403 && status < 500
    } else {
        status == 403 && body["code"] == "auth.forbidden"
    };
    if !ok {
        wrong.push(format!(
            "{} {} as {role}: {status} {body}",
            endpoint.method, endpoint.path
        ));
    }
}

#[tokio::test]
async fn a_browser_session_may_do_exactly_what_its_token_may() {
    let d = Daemon::start_with_config("manual_clock_ms = 1800000000000\n").await;
    let mut wrong = Vec::new();
    for (role, token) in role_tokens(&d).await {
        let response = reqwest::Client::new()
            .post(d.url("/api/v1/session"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("sign in");
        assert_eq!(response.status().as_u16(), 201);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let session: serde_json::Value = response.json().await.unwrap();
        let csrf = session["csrf"].as_str().unwrap();
        for endpoint in endpoints() {
            let (status, body) = call(&d, &endpoint, Auth::Session(&cookie, csrf)).await;
            judge(&mut wrong, &endpoint, role, status, &body);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    d.assert_healthy().await;
}
