//! Uploads: validation with clear errors, immutable versions, grants, auth.

use serde_json::json;

use crate::support::{Daemon, assert_refused, fixture};

#[tokio::test]
async fn bad_uploads_get_clear_errors_and_lose_nothing() {
    let d = Daemon::start_with_config("[plugins]\nmax_upload_bytes = 1048576\n").await;
    d.upload_ok("probe", "fixture_check").await;

    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut truncated = fixture("fixture_check");
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "core",
            core_module,
            422,
            "plugin.core_module",
            "core WebAssembly module",
        ),
        (
            "random",
            random,
            422,
            "plugin.not_wasm",
            "not a WebAssembly binary",
        ),
        ("truncated", truncated, 422, "plugin.invalid", "invalid"),
        (
            "other",
            fixture("fixture_unknown_world"),
            422,
            "plugin.unknown_world",
            "fixture:other/thing@0.1.0",
        ),
        (
            "spy",
            fixture("fixture_unknown_import"),
            422,
            "plugin.unknown_import",
            "fixture:evil/spy@0.1.0",
        ),
    ];
    for (name, bytes, status, code, needle) in cases {
        let (got, body) = d.upload(name, "1.0.0", bytes).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{name}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{name}: `{message}` should mention `{needle}`"
        );
        let (missing, _) = d
            .send(d.request(reqwest::Method::GET, &format!("/api/v1/plugins/{name}")))
            .await;
        assert_eq!(missing, 404, "{name} was stored although refused");
    }

    let (status, body) = d
        .upload("Bad Name", "1.0.0", fixture("fixture_check"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("plugin.bad_name"))
    );
    let (status, body) = d.upload("probe", "latest", fixture("fixture_check")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("plugin.bad_version"))
    );
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/plugins?name=x")
                .body(vec![1]),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("request.bad_query")),
        "{body}"
    );

    // What was stored before is untouched and still runs.
    let (_, list) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(d.verify("probe", json!({})).await["status"], "ok");
    d.assert_healthy().await;
}

#[tokio::test]
async fn versions_are_immutable_and_identical_bytes_dedupe() {
    let d = Daemon::start().await;
    let first = d.upload_ok("probe", "fixture_check").await;
    let (status, again) = d.upload("probe", "1.0.0", fixture("fixture_check")).await;
    assert_eq!((status, &again["created"]), (200, &json!(false)));
    assert_eq!(again["plugin"]["digest"], first["plugin"]["digest"]);
    let (status, conflict) = d.upload("probe", "1.0.0", fixture("fixture_policy")).await;
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("plugin.version_exists"))
    );
    let (status, _) = d.upload("probe", "1.1.0", fixture("fixture_policy")).await;
    assert_eq!(status, 201);
    let (_, latest) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins/probe/latest"))
        .await;
    assert_eq!(
        (latest["version"].as_str(), latest["kind"].as_str()),
        (Some("1.1.0"), Some("rollback-policy"))
    );
}

#[tokio::test]
async fn grants_are_validated_field_by_field() {
    let d = Daemon::start().await;
    d.upload_ok("probe", "fixture_check").await;
    let put = |grant: serde_json::Value| {
        d.request(reqwest::Method::PUT, "/api/v1/plugins/probe/grant")
            .json(&grant)
    };
    let (status, body) = d.send(put(json!({"allowed_hosts": ["ftp://x"]}))).await;
    assert_refused(status, &body, (400, "grant.invalid"), "allowed_hosts[0]");
    let (status, body) = d
        .send(put(json!({"limits": {"memory_mib": 1_000_000}})))
        .await;
    assert_refused(status, &body, (422, "grant.invalid"), "limits.memory_mib");
    let (status, body) = d.send(put(json!({"limits": {"memory_mib": 0}}))).await;
    assert_refused(status, &body, (400, "grant.invalid"), "limits.memory_mib");
    let (status, body) = d.send(put(json!({"allowed_host": []}))).await;
    assert_refused(status, &body, (400, "request.bad_json"), "allowed_host");
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PUT, "/api/v1/plugins/nobody/grant")
                .json(&json!({})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let d = Daemon::start().await;
    let client = reqwest::Client::new();
    let r = client.get(d.url("/api/v1/plugins")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "auth.unauthorized");
    // The server refuses before reading the body, and reads it out before
    // answering; each request here gets a client of its own.
    let r = reqwest::Client::new()
        .post(d.url("/api/v1/plugins?name=x&version=1.0.0"))
        .bearer_auth("glt_not-a-real-token")
        .body(b"\0asm\x0d\0\x01\0".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = reqwest::Client::new()
        .get(d.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let token_file = d.data.join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the admin token is readable by others");
    }
}

/// An upload far above the limit is refused from its Content-Length alone,
/// before its body is read. (The request is written by hand: a client that
/// sends the whole body may find the connection closed before it reads the
/// answer.)
#[tokio::test]
async fn a_far_too_large_upload_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = Daemon::start_with_config("[plugins]\nmax_upload_bytes = 1048576\n").await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/plugins?name=big&version=1.0.0 HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        d.token,
        64 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"plugin.too_large""#), "{answer}");
    assert!(answer.contains("limit of 1048576 bytes"), "{answer}");
    d.assert_healthy().await;
}

/// A refusal that comes before the body is read still reaches a client in
/// the middle of sending a large one: a plugin author whose token expired
/// sees 401 with its code, not a cut connection.
#[tokio::test]
async fn a_large_upload_refused_before_its_body_is_read_still_gets_the_answer() {
    let d = Daemon::start().await;
    for _ in 0..3 {
        let r = reqwest::Client::new()
            .post(d.url("/api/v1/plugins?name=x&version=1.0.0"))
            .bearer_auth("glt_not-a-real-token")
            .body(vec![0u8; 16 << 20])
            .send()
            .await
            .expect("an answer, not a cut connection");
        assert_eq!(r.status().as_u16(), 401);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "auth.unauthorized");
    }
    // A body over a route's limit is read only up to that limit; the rest
    // is read out so that the sender gets the 413.
    let r = reqwest::Client::new()
        .post(d.url("/api/v1/flows"))
        .bearer_auth(&d.token)
        .header("content-type", "application/toml")
        .body(vec![b'#'; 8 << 20])
        .send()
        .await
        .expect("an answer, not a cut connection");
    assert_eq!(r.status().as_u16(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "request.too_large");
    d.assert_healthy().await;
}

/// `bytes` with a custom section that brings it to `size` bytes.
fn padded_to(mut bytes: Vec<u8>, size: usize) -> Vec<u8> {
    let name = b"padding";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(size - bytes.len() - 6, 0);
    bytes.push(0);
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    bytes
}

#[tokio::test]
async fn uploads_sent_at_once_take_turns_and_every_one_is_answered() {
    // One turn at a time: eight uploads near the limit are read and stored
    // one after another, and none is refused or lost for waiting.
    let d = Daemon::start_with_config(
        "[plugins]\nmax_upload_bytes = 4194304\nmax_concurrent_uploads = 1\n",
    )
    .await;
    let component = padded_to(fixture("fixture_no_std_check"), 4 * 1024 * 1024 - 4096);
    let mut sends = Vec::new();
    for i in 0..8 {
        let request = d
            .request(reqwest::Method::POST, "/api/v1/plugins")
            .query(&[("name", format!("big{i}")), ("version", "1.0.0".into())])
            .body(component.clone());
        sends.push(tokio::spawn(async move {
            let response = request.send().await.expect("upload");
            response.status().as_u16()
        }));
    }
    for send in sends {
        assert_eq!(send.await.unwrap(), 201);
    }
    let (status, list) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/plugins"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(8), "{list}");
}
