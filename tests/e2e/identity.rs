//! Tokens and the audit log: admins create and revoke tokens whose secret
//! is shown once; every state-changing request, allowed or not, is audited
//! with who, what, from where, how it ended and the comment given.

use serde_json::{Value, json};

use crate::support::releases::{
    Recorder, advance, apply_flow, put_environment, release_daemon, standard_flow, start_release,
    wait_for, wait_status,
};
use crate::support::{Daemon, assert_refused, cli};

async fn create_token(d: &Daemon, name: &str, role: &str) -> (u16, Value) {
    d.send(
        d.request(reqwest::Method::POST, "/api/v1/tokens")
            .json(&json!({"name": name, "role": role})),
    )
    .await
}

fn with_token(
    d: &Daemon,
    token: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, d.url(path))
        .bearer_auth(token)
}

#[tokio::test]
async fn tokens_are_created_used_revoked_and_every_change_is_audited() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;

    let (status, alice) = create_token(&d, "alice", "release-manager").await;
    assert_eq!(status, 201, "{alice}");
    let alice = alice["token"].as_str().unwrap().to_string();
    assert!(alice.starts_with("glt_"));
    let (_, viewer) = create_token(&d, "vic", "viewer").await;
    let viewer = viewer["token"].as_str().unwrap().to_string();
    let (status, body) = create_token(&d, "alice", "viewer").await;
    assert_refused(
        status,
        &body,
        (409, "token.exists"),
        "`alice` already exists",
    );
    let (status, body) = create_token(&d, "bob", "superuser").await;
    assert_refused(status, &body, (400, "token.invalid"), "role: `superuser`");
    let (status, body) = d
        .send(
            with_token(&d, &viewer, reqwest::Method::POST, "/api/v1/tokens")
                .json(&json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_refused(status, &body, (403, "auth.forbidden"), "viewer");
    let (_, listed) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/tokens"))
        .await;
    assert!(
        !listed.to_string().contains("glt_"),
        "secrets never listed: {listed}"
    );
    assert_eq!(listed.as_array().unwrap().len(), 3);

    // Alice approves a gate; the viewer may not.
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    wait_for(&d, &id, "the bake", |r| !r["next_check_ms"].is_null()).await;
    advance(&d, 600_000).await;
    wait_status(&d, &id, "waiting-approval").await;
    let approve = |token: &str| {
        with_token(
            &d,
            token,
            reqwest::Method::POST,
            &format!("/api/v1/releases/{id}/approve"),
        )
        .json(&json!({"comment": "dashboards are green"}))
    };
    let (status, body) = d.send(approve(&viewer)).await;
    assert_refused(status, &body, (403, "auth.forbidden"), "viewer");
    let (status, body) = d.send(approve(&alice)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approvals"][0]["by"], "alice");

    // Revoked, alice's token no longer works; an admin cannot revoke itself.
    let (status, body) = d
        .send(d.request(reqwest::Method::DELETE, "/api/v1/tokens/alice"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked"], true);
    let (status, body) = d.send(approve(&alice)).await;
    assert_refused(status, &body, (401, "auth.unauthorized"), "revoked");
    let (status, body) = d
        .send(d.request(reqwest::Method::DELETE, "/api/v1/tokens/admin"))
        .await;
    assert_refused(status, &body, (409, "token.self_revoke"), "itself");

    let (status, log) = d
        .send(d.request(reqwest::Method::GET, &format!("/api/v1/audit?release={id}")))
        .await;
    assert_eq!(status, 200, "{log}");
    let log = log["entries"].clone();
    let entries: Vec<(String, String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let approve_action = "POST /api/v1/releases/{id}/{action}".to_string();
    assert_eq!(
        entries,
        [
            (
                "alice".to_string(),
                approve_action.clone(),
                "denied".to_string()
            ),
            (
                "alice".to_string(),
                approve_action.clone(),
                "allowed".to_string()
            ),
            ("vic".to_string(), approve_action, "denied".to_string()),
            (
                "admin".to_string(),
                "POST /api/v1/releases".to_string(),
                "allowed".to_string()
            ),
        ],
        "newest first: {log:#}"
    );
    assert_eq!(log[1]["comment"], "dashboards are green");
    assert_eq!(
        log[1]["from"].as_str().map(|f| f.starts_with("127.0.0.1:")),
        Some(true)
    );
    assert_eq!(log[0]["code"], "auth.unauthorized");
    let (_, by_vic) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/audit?actor=vic"))
        .await;
    assert_eq!(by_vic["entries"].as_array().unwrap().len(), 2, "{by_vic:#}");
    let (status, body) = d
        .send(with_token(
            &d,
            &viewer,
            reqwest::Method::GET,
            "/api/v1/audit",
        ))
        .await;
    assert_refused(status, &body, (403, "auth.forbidden"), "viewer");
}

#[tokio::test]
async fn tokens_and_the_audit_log_from_the_command_line() {
    let d = Daemon::start().await;
    let (ok, out, err) = cli(
        &d,
        &["token", "create", "--name", "ci", "--role", "scheduler"],
    );
    assert!(ok, "{out}{err}");
    let secret = out.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("glt_"), "{out}");
    let (status, _) = d
        .send(with_token(
            &d,
            &secret,
            reqwest::Method::GET,
            "/api/v1/releases",
        ))
        .await;
    assert_eq!(status, 200, "the new token works");
    let (ok, out, _) = cli(&d, &["token", "list"]);
    assert!(
        ok && out.contains("ci") && out.contains("scheduler") && !out.contains("glt_"),
        "{out}"
    );
    let (ok, _, err) = cli(&d, &["token", "create", "--name", "ci", "--role", "viewer"]);
    assert!(!ok && err.contains("token.exists"), "{err}");

    // Scripts read the same answers as JSON, the new secret included.
    let (ok, out, err) = cli(
        &d,
        &[
            "token", "create", "--name", "ops", "--role", "viewer", "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        (&created["name"], &created["role"]),
        (&json!("ops"), &json!("viewer"))
    );
    assert!(
        created["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("glt_")),
        "{created:#}"
    );
    let (ok, out, err) = cli(&d, &["token", "list", "--json"]);
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut tokens: Vec<(&str, &str, &Value, &Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["role"].as_str().unwrap(),
                &t["created_by"],
                &t["revoked"],
            )
        })
        .collect();
    tokens.sort_by_key(|t| t.0);
    assert_eq!(
        tokens,
        [
            ("admin", "admin", &Value::Null, &json!(false)),
            ("ci", "scheduler", &json!("admin"), &json!(false)),
            ("ops", "viewer", &json!("admin"), &json!(false)),
        ],
        "{listed:#}"
    );
    assert!(!out.contains("glt_"), "secrets never listed: {out}");
    let (ok, out, err) = cli(
        &d,
        &[
            "token", "create", "--name", "ci", "--role", "viewer", "--json",
        ],
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("token.exists (409)"), "{err}");
    let (ok, out, err) = cli(&d, &["token", "revoke", "ci"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(&d, &["audit", "--actor", "admin"]);
    assert!(ok, "{err}");
    // The CLI names the token in the query, which carries any stored name.
    assert!(out.contains("DELETE /api/v1/tokens "), "{out}");
    assert!(
        out.contains("409 refused") && out.contains("token.exists"),
        "{out}"
    );
    let (ok, out, err) = cli(&d, &["audit", "--actor", "admin", "--limit", "1", "--json"]);
    assert!(ok, "{err}");
    let newest: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        newest["entries"].as_array().map(Vec::len),
        Some(1),
        "{newest:#}"
    );
    assert!(newest["next_before"].is_u64(), "{newest:#}");
    assert_eq!(
        newest["entries"][0]["action"], "DELETE /api/v1/tokens",
        "{newest:#}"
    );
    assert_eq!(newest["entries"][0]["comment"], "token `ci`", "{newest:#}");
}

#[tokio::test]
async fn emergency_releases_are_for_admins_and_always_audited() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let (_, manager) = create_token(&d, "rita", "release-manager").await;
    let manager = manager["token"].as_str().unwrap().to_string();
    let body = json!({"application": "shop", "environment": "prod", "version": "2.0.1",
                      "flow": "standard", "emergency": true, "comment": "hotfix for the outage"});
    let (status, refused) = d
        .send(with_token(&d, &manager, reqwest::Method::POST, "/api/v1/releases").json(&body))
        .await;
    assert_refused(status, &refused, (403, "auth.forbidden"), "emergency");
    let (status, started) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases")
                .json(&body),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let (_, log) = d
        .send(d.request(reqwest::Method::GET, "/api/v1/audit?limit=2"))
        .await;
    let log = log["entries"].clone();
    assert_eq!(
        log[0]["comment"], "emergency release: hotfix for the outage",
        "{log:#}"
    );
    assert_eq!(log[0]["release"], started["id"]);
    assert_eq!(log[1]["actor"], "rita");
    assert_eq!(log[1]["outcome"], "denied");
}

/// Secrets at rest are the daemon's user's alone: the data directory and
/// everything in it when the daemon starts (the database, the admin token)
/// are closed to the group and to other users.
#[tokio::test]
async fn the_data_directory_is_closed_to_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start().await;
    let d = d.restart().await;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode(&d.data) & 0o777, 0o700, "{}", d.data.display());
    let mut files = 0;
    let mut stack = vec![d.data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} is open to others: {m:o}", path.display());
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
            }
        }
    }
    assert!(
        files >= 2,
        "the database and the admin token were looked at"
    );
}

/// Tokens named `.` or `..` could be made before names had a rule; a URL
/// path cannot carry those names, so the CLI names the token in the query.
#[tokio::test]
async fn a_token_with_a_name_a_path_cannot_carry_is_revoked_from_the_cli() {
    let d = Daemon::start().await;
    let (d, dots) = d
        .add_token_named("..", greenlight::store::Role::Viewer)
        .await;
    let (status, _) = d
        .send(with_token(
            &d,
            &dots,
            reqwest::Method::GET,
            "/api/v1/releases",
        ))
        .await;
    assert_eq!(status, 200);
    let (ok, out, err) = cli(&d, &["token", "revoke", ".."]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Revoked token `..`"), "{out}");
    let (status, _) = d
        .send(with_token(
            &d,
            &dots,
            reqwest::Method::GET,
            "/api/v1/releases",
        ))
        .await;
    assert_eq!(status, 401);
}
