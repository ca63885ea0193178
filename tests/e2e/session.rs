//! Browser sessions over plain HTTP: signing in sets an HttpOnly,
//! SameSite=Strict cookie; a request that changes state through the cookie
//! needs the session's CSRF token and our own origin; revoking the token or
//! signing out ends the session; the audit log names who signed in and
//! never holds the token.

use serde_json::{Value, json};

use crate::support::{Daemon, assert_refused};

/// A client that sends only what it is told: no bearer token.
fn bare() -> reqwest::Client {
    reqwest::Client::new()
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    (status, body, headers)
}

/// Signs in; returns the cookie pair to send back and the CSRF token.
async fn sign_in(d: &Daemon, token: &str) -> (String, String) {
    let (status, body, headers) = send(
        bare()
            .post(d.url("/api/v1/session"))
            .json(&json!({"token": token})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let cookie = headers["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains(token),
        "the cookie carries the token itself"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    (pair, body["csrf"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_session_reads_freely_and_changes_state_only_with_its_csrf_token_from_our_origin() {
    let d = Daemon::start().await;
    let token = d.create_token("rita", "release-manager").await;
    let (cookie, csrf) = sign_in(&d, &token).await;

    let (status, me, _) = send(
        bare()
            .get(d.url("/api/v1/session"))
            .header("cookie", &cookie),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["name"], "rita");
    assert_eq!(me["role"], "release-manager");
    assert_eq!(me["csrf"], csrf.as_str());
    let (status, _, _) = send(
        bare()
            .get(d.url("/api/v1/releases"))
            .header("cookie", &cookie),
    )
    .await;
    assert_eq!(status, 200);

    // A state-changing request through the cookie: the release does not
    // exist, so a request that gets past authentication is a 404.
    let pause = |headers: &[(&str, &str)]| {
        let mut request = bare()
            .post(d.url("/api/v1/releases/r-none/pause"))
            .header("cookie", &cookie)
            .json(&json!({"comment": "x"}));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request
    };
    let (status, body, _) = send(pause(&[])).await;
    assert_refused(status, &body, (403, "auth.csrf"), "X-CSRF-Token");
    let (status, body, _) = send(pause(&[("x-csrf-token", "not-the-token")])).await;
    assert_refused(status, &body, (403, "auth.csrf"), "does not match");
    let evil = [
        ("x-csrf-token", csrf.as_str()),
        ("origin", "http://evil.example"),
    ];
    let (status, body, _) = send(pause(&evil)).await;
    assert_refused(status, &body, (403, "auth.csrf"), "another origin");
    let own = format!("http://{}", d.base.trim_start_matches("http://"));
    let (status, body, _) = send(pause(&[
        ("x-csrf-token", csrf.as_str()),
        ("origin", own.as_str()),
    ]))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    // A bearer token needs no CSRF token: it is not sent by browsers on
    // their own.
    let (status, _, _) = send(
        bare()
            .post(d.url("/api/v1/releases/r-none/pause"))
            .bearer_auth(&token)
            .json(&json!({"comment": "x"})),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn revoking_the_token_or_signing_out_ends_the_session_and_the_audit_names_the_signer() {
    let d = Daemon::start().await;
    let token = d.create_token("vera", "viewer").await;

    let (status, body, _) = send(
        bare()
            .post(d.url("/api/v1/session"))
            .json(&json!({"token": "gl_wrong"})),
    )
    .await;
    assert_refused(status, &body, (401, "auth.unauthorized"), "token");
    let (status, body, _) = send(
        bare()
            .post(d.url("/api/v1/session"))
            .json(&json!({"token": token, "remember": true})),
    )
    .await;
    assert_refused(status, &body, (400, "request.bad_json"), "remember");

    // Signing out ends the session even if the cookie is replayed.
    let (cookie, csrf) = sign_in(&d, &token).await;
    let (status, _, headers) = send(
        bare()
            .delete(d.url("/api/v1/session"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf),
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, body, _) = send(
        bare()
            .get(d.url("/api/v1/session"))
            .header("cookie", &cookie),
    )
    .await;
    assert_refused(status, &body, (401, "auth.unauthorized"), "session");

    // Revoking the token ends every session opened with it.
    let (cookie, _) = sign_in(&d, &token).await;
    let (status, _) = d
        .send(d.request(reqwest::Method::DELETE, "/api/v1/tokens/vera"))
        .await;
    assert_eq!(status, 200);
    let (status, body, _) = send(
        bare()
            .get(d.url("/api/v1/releases"))
            .header("cookie", &cookie),
    )
    .await;
    assert_refused(status, &body, (401, "auth.unauthorized"), "revoked");

    let (status, log) = d
        .send(
            d.request(reqwest::Method::GET, "/api/v1/audit")
                .query(&[("actor", "vera")]),
        )
        .await;
    assert_eq!(status, 200);
    let sign_ins: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "POST /api/v1/session")
        .collect();
    assert_eq!(sign_ins.len(), 2, "{log:#}");
    assert!(
        sign_ins
            .iter()
            .all(|e| e["outcome"] == "allowed" && e["role"] == "viewer")
    );
    let everything = serde_json::to_string(&log).unwrap();
    assert!(
        !everything.contains(&token),
        "the audit log holds the token"
    );
}

#[tokio::test]
async fn the_ui_is_served_from_the_binary_with_a_strict_policy() {
    let d = Daemon::start().await;
    let (status, _, headers) = send(bare().get(d.url("/"))).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    let tag = headers["etag"].to_str().unwrap().to_string();
    let (status, _, _) = send(bare().get(d.url("/")).header("if-none-match", &tag)).await;
    assert_eq!(status, 304);
    let response = bare().get(d.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("signIn"));
    let (status, body, _) = send(bare().get(d.url("/ui/nothing.js"))).await;
    assert_refused(status, &body, (404, "not_found"), "nothing.js");
}
