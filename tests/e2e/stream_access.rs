//! A live event stream lasts only as long as what it was opened with: a
//! revoked token's stream and a signed-out session's stream end at once,
//! with an `ended` event, while other callers' streams go on.

use reqwest::Method;
use serde_json::json;

use crate::support::Daemon;
use crate::support::releases::{
    Recorder, apply_flow, put_environment, release_daemon, standard_flow, start_release,
};

/// Reads a stream until `marker` is seen; fails if it closes first.
async fn read_until(stream: &mut reqwest::Response, marker: &str) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = String::new();
    while !seen.contains(marker) {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream ended or stalled before `{marker}`: {other:?}; {seen}"),
        }
    }
    seen
}

/// Reads a stream to its end; fails if it does not end.
async fn read_to_end(stream: &mut reqwest::Response) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = String::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return seen,
            other => panic!("the stream did not end: {other:?}; {seen}"),
        }
    }
}

async fn open(request: reqwest::RequestBuilder) -> reqwest::Response {
    let response = request.send().await.expect("event stream");
    assert_eq!(response.status(), 200);
    response
}

#[tokio::test]
async fn revoking_a_token_or_signing_out_ends_its_streams_and_no_other() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let watcher = d.create_token("watcher", "viewer").await;
    let browser = d.create_token("browser", "viewer").await;

    let mut admin_stream = open(d.request(Method::GET, "/api/v1/events")).await;
    let mut watcher_stream = open(
        reqwest::Client::new()
            .get(d.url("/api/v1/events"))
            .bearer_auth(&watcher),
    )
    .await;

    let signed_in = reqwest::Client::new()
        .post(d.url("/api/v1/session"))
        .json(&json!({ "token": browser }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status().as_u16(), 201);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let session: serde_json::Value = signed_in.json().await.unwrap();
    let csrf = session["csrf"].as_str().unwrap().to_string();
    let mut session_stream = open(
        reqwest::Client::new()
            .get(d.url("/api/v1/events"))
            .header("cookie", &cookie),
    )
    .await;

    let revoked_at = std::time::Instant::now();
    let (status, body) = d
        .send(d.request(Method::DELETE, "/api/v1/tokens/watcher"))
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = read_to_end(&mut watcher_stream).await;
    assert!(seen.contains("event: ended"), "{seen}");
    eprintln!(
        "the revoked token's stream ended {:?} after the revocation was sent",
        revoked_at.elapsed()
    );

    let signed_out = reqwest::Client::new()
        .delete(d.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("sign out");
    assert_eq!(signed_out.status().as_u16(), 204);
    let seen = read_to_end(&mut session_stream).await;
    assert!(seen.contains("event: ended"), "{seen}");

    // The admin's stream saw both endings go by and still delivers.
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    let seen = read_until(&mut admin_stream, &format!("id: {id}:")).await;
    assert!(!seen.contains("event: ended"), "{seen}");

    // The ended ones cannot be opened again.
    let again = reqwest::Client::new()
        .get(d.url("/api/v1/events"))
        .bearer_auth(&watcher)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 401);
}

#[tokio::test]
async fn a_stream_needs_no_release_to_end() {
    let d = Daemon::start().await;
    let token = d.create_token("quiet", "viewer").await;
    let mut stream = open(
        reqwest::Client::new()
            .get(d.url("/api/v1/events"))
            .bearer_auth(&token),
    )
    .await;
    let (status, _) = d
        .send(d.request(Method::DELETE, "/api/v1/tokens/quiet"))
        .await;
    assert_eq!(status, 200);
    let seen = read_to_end(&mut stream).await;
    assert!(seen.contains("event: ended"), "{seen}");
}
