//! The command line: push and list against a daemon, connection options in
//! every position, and `plugin test` without one.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Daemon, binary};

fn fixture_path(name: &str) -> String {
    Path::new(env!("GREENLIGHT_PLUGINS_DIR"))
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

/// `plugin push FILE --name probe --version VERSION`.
fn push_probe<'a>(file: &'a str, version: &'a str) -> [&'a str; 7] {
    [
        "plugin",
        "push",
        file,
        "--name",
        "probe",
        "--version",
        version,
    ]
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn push_then_list_through_the_cli() {
    // The daemon is another process, so blocking this test's thread on the
    // CLI is fine.
    let d = Daemon::start().await;
    let env = signed_in(&d);
    let check = fixture_path("fixture_check");
    let (ok, out, err) = run(&push_probe(&check, "0.3.0"), &env);
    assert!(ok, "push failed: {err}");
    assert!(
        out.contains("Uploaded probe@0.3.0 (check plugin, sha256:"),
        "{out}"
    );

    let policy = fixture_path("fixture_policy");
    let (ok, _, err) = run(&push_probe(&policy, "0.3.0"), &env);
    assert!(!ok, "a conflicting push must fail");
    assert!(err.contains("plugin.version_exists (409)"), "{err}");

    let (ok, out, err) = run(&["plugin", "list"], &env);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("probe") && l.contains("0.3.0") && l.contains("check")),
        "{out}"
    );
}

#[tokio::test]
async fn connection_options_work_before_the_command_as_after_it() {
    let d = Daemon::start().await;
    let token_file = d.data.join("admin-token");
    let token_file = token_file.to_str().unwrap();
    // The environment names a daemon that is not there, so every command
    // that succeeds found the daemon through its `--url`.
    let nowhere = [("GREENLIGHT_URL", "http://127.0.0.1:9")];
    let leading = ["--url", d.base.as_str(), "--token", d.token.as_str()];

    let check = fixture_path("fixture_check");
    let push = [&leading[..], &push_probe(&check, "1.2.0")].concat();
    let (ok, out, err) = run(&push, &nowhere);
    assert!(ok, "push failed: {err}");
    assert!(out.contains("Uploaded probe@1.2.0"), "{out}");

    let listings = [
        [&leading[..], &["--json", "plugin", "list"]].concat(),
        [&["plugin"], &leading[..], &["--json", "list"]].concat(),
        [&["plugin", "list", "--json"], &leading[..]].concat(),
        vec![
            "--json",
            "--url",
            &d.base,
            "--token-file",
            token_file,
            "plugin",
            "list",
        ],
    ];
    for args in &listings {
        let (ok, out, err) = run(args, &nowhere);
        assert!(ok, "{args:?} failed: {err}");
        let listed: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{out}"));
        assert_eq!(listed[0]["name"], "probe", "{args:?}: {listed:#}");
        assert_eq!(listed[0]["version"], "1.2.0", "{args:?}: {listed:#}");
    }

    let (ok, out, err) = run(
        &[&leading[..], &["--json", "release", "list"]].concat(),
        &nowhere,
    );
    assert_no_releases(ok, &out, &err);

    // The token in the leading position is the one sent: a wrong one is
    // refused by the daemon, and nothing is printed on standard output.
    let (ok, out, err) = run(
        &[
            "--url",
            &d.base,
            "--token",
            "not-a-token",
            "--json",
            "release",
            "list",
        ],
        &[],
    );
    assert!(!ok, "a wrong token must be refused");
    assert_eq!(out, "");
    assert!(err.contains("(401)"), "{err}");

    // The environment still works on its own, with the options after the
    // command.
    let env = [
        ("GREENLIGHT_URL", d.base.as_str()),
        ("GREENLIGHT_TOKEN_FILE", token_file),
    ];
    let (ok, out, err) = run(&["release", "list", "--json"], &env);
    assert_no_releases(ok, &out, &err);

    // A token file passed on the command line wins over a stale token
    // exported in the environment.
    let env = [
        ("GREENLIGHT_URL", d.base.as_str()),
        ("GREENLIGHT_TOKEN", "stale-token"),
    ];
    let (ok, out, err) = run(
        &["--token-file", token_file, "release", "list", "--json"],
        &env,
    );
    assert_no_releases(ok, &out, &err);
}

#[test]
fn plugin_test_runs_a_component_locally_in_the_same_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        r#"{"context": {"application": "shop", "parameters": {"mode": "fail"}}, "targets": [{"id": "web-1"}]}"#,
    )
    .unwrap();
    let check = fixture_path("fixture_check");
    let (ok, out, err) = run(
        &["plugin", "test", &check, "--input", input.to_str().unwrap()],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("FAIL: fixture failure"), "{out}");
    assert!(out.contains("error_rate = 0.5"), "{out}");

    std::fs::write(&input, r#"{"context": {"parameters": {"mode": "panic"}}}"#).unwrap();
    let (ok, out, err) = run(
        &["plugin", "test", &check, "--input", input.to_str().unwrap()],
        &[],
    );
    assert!(!ok, "a trapping plugin must fail the command");
    assert!(out.contains("FAILED trap"), "{out}");
    assert!(err.contains("the plugin failed: trap"), "{err}");

    std::fs::write(&input, r#"{"contxt": {}}"#).unwrap();
    let (ok, _, err) = run(
        &["plugin", "test", &check, "--input", input.to_str().unwrap()],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("contxt"), "the unknown field is named: {err}");
}

#[test]
fn the_daemon_starts_on_a_relative_data_directory() {
    use std::io::{BufRead, BufReader};
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "greenlight-data",
        ])
        .current_dir(cwd.path())
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = BufReader::new(stdout).lines().next();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let line = first.and_then(Result::ok).unwrap_or_default();
    assert!(
        line.starts_with("listening on "),
        "the daemon did not start: {line}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(cwd.path().join("greenlight-data/admin-token").exists());
}

/// Checks that a `release list --json` succeeded and listed nothing.
fn assert_no_releases(ok: bool, out: &str, err: &str) {
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(out).unwrap(),
        json!([]),
        "{out}"
    );
}

#[tokio::test]
async fn freeze_windows_are_added_listed_and_removed_from_the_command_line() {
    let d = Daemon::start().await;
    let env = signed_in(&d);
    let (ok, out, err) = run(
        &[
            "freeze",
            "add",
            "holidays",
            "--from",
            "2026-12-24T00:00:00Z",
            "--until",
            "2026-12-27T08:00:00+08:00",
            "--env",
            "prod",
            "--reason",
            "year-end freeze",
        ],
        &env,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Added deny window `holidays` for */prod: 2026-12-24 00:00"),
        "{out}"
    );
    let (ok, _, err) = run(
        &[
            "freeze",
            "add",
            "weekends",
            "--cron",
            "0 18 * * 5",
            "--for",
            "62h",
            "--timezone",
            "Asia/Shanghai",
            "--app",
            "shop",
        ],
        &env,
    );
    assert!(ok, "{err}");

    // The table, and the daemon's own answer with --json.
    let (ok, out, err) = run(&["freeze", "list"], &env);
    assert!(ok, "{err}");
    assert!(out.contains("year-end freeze"), "{out}");
    assert!(out.contains("0 18 * * 5 (Asia/Shanghai) for 62h"), "{out}");
    let (ok, out, err) = run(&["freeze", "list", "--json"], &env);
    assert!(ok, "{err}");
    let windows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(windows[0]["name"], "holidays", "{windows}");
    // 2026-12-27T08:00:00+08:00 is midnight UTC.
    assert_eq!(windows[0]["end_ms"], 1_798_329_600_000u64, "{windows}");
    assert_eq!(windows[1]["name"], "weekends", "{windows}");
    assert_eq!(windows[1]["duration_ms"], 62 * 3_600_000, "{windows}");
    assert_eq!(windows[1]["application"], "shop", "{windows}");

    // Bad input is named, by the command line or by the daemon, and adds
    // nothing.
    let (ok, _, err) = run(
        &[
            "freeze",
            "add",
            "x",
            "--from",
            "soon",
            "--until",
            "2027-01-01T00:00:00Z",
        ],
        &env,
    );
    assert!(!ok);
    assert!(
        err.contains("--from: `soon` is not an RFC 3339 time"),
        "{err}"
    );
    let (ok, _, err) = run(
        &[
            "freeze",
            "add",
            "x",
            "--cron",
            "every friday",
            "--for",
            "2h",
        ],
        &env,
    );
    assert!(!ok);
    assert!(err.contains("freeze.invalid (422)"), "{err}");
    assert!(err.contains("cron"), "{err}");
    let (ok, _, err) = run(&["freeze", "add", "x", "--cron", "0 18 * * 5"], &env);
    assert!(!ok, "a recurring window needs --for");
    assert!(err.contains("--for"), "{err}");

    let (ok, out, err) = run(&["freeze", "rm", "holidays"], &env);
    assert!(ok, "{err}");
    assert!(out.contains("Removed freeze window `holidays`."), "{out}");
    let (ok, _, err) = run(&["freeze", "rm", "holidays"], &env);
    assert!(!ok);
    assert!(err.contains("(404)"), "{err}");
    let (ok, out, err) = run(&["freeze", "list", "--json"], &env);
    assert!(ok, "{err}");
    let names: Vec<Value> = serde_json::from_str::<Vec<Value>>(&out)
        .unwrap()
        .into_iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("weekends")]);
}

#[test]
fn plugin_test_advises_a_smaller_stack_only_to_a_plugin_that_needs_it() {
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/check-input.json");
    let big = fixture_path("fixture_big_stack");
    let (ok, out, err) = run(&["plugin", "test", &big, "--input", input], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("PASS: 2 targets"), "{out}");
    assert!(
        err.contains("hint: this component's stack is 1024 KiB")
            && err.contains("-zstack-size=65536"),
        "{err}"
    );
    // With --json the answer on standard output stays one document.
    let (ok, out, err) = run(&["plugin", "test", &big, "--input", input, "--json"], &[]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out).unwrap();
    assert!(err.contains("hint:"), "{err}");

    let small = fixture_path("fixture_check");
    let (ok, _, err) = run(&["plugin", "test", &small, "--input", input], &[]);
    assert!(ok, "{err}");
    assert!(!err.contains("hint:"), "{err}");
}

#[tokio::test]
async fn an_upload_records_the_stack_and_advises_on_one_too_big() {
    let d = Daemon::start().await;
    let env = signed_in(&d);
    let big = fixture_path("fixture_big_stack");
    let (ok, out, err) = run(
        &[
            "plugin",
            "push",
            &big,
            "--name",
            "big",
            "--version",
            "1.0.0",
        ],
        &env,
    );
    assert!(ok, "{err}");
    assert!(out.contains("Uploaded big@1.0.0"), "{out}");
    assert!(
        err.contains("hint: this component's stack is 1024 KiB"),
        "{err}"
    );
    let small = fixture_path("fixture_check");
    let (ok, _, err) = run(
        &[
            "plugin",
            "push",
            &small,
            "--name",
            "small",
            "--version",
            "1.0.0",
        ],
        &env,
    );
    assert!(ok, "{err}");
    assert!(!err.contains("hint:"), "{err}");

    // The size is kept with the version and shown with it.
    let (ok, out, err) = run(&["plugin", "show", "big"], &env);
    assert!(ok, "{err}");
    assert!(out.contains("stack 1024 KiB"), "{out}");
    let detail: Value = d
        .request(reqwest::Method::GET, "/api/v1/plugins/small")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["versions"][0]["stack_bytes"], 65536, "{detail}");
}

/// The environment that points the command line at a daemon, as its admin.
fn signed_in(d: &Daemon) -> [(&'static str, &str); 2] {
    [
        ("GREENLIGHT_URL", d.base.as_str()),
        ("GREENLIGHT_TOKEN", d.token.as_str()),
    ]
}
