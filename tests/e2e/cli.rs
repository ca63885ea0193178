//! The command line: push and list against a daemon, and `plugin test`
//! without one.

use std::path::Path;
use std::process::Command;

use crate::support::{Daemon, binary};

fn fixture_path(name: &str) -> String {
    Path::new(env!("GREENLIGHT_PLUGINS_DIR"))
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
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
    let env = [
        ("GREENLIGHT_URL", d.base.as_str()),
        ("GREENLIGHT_TOKEN", d.token.as_str()),
    ];
    let check = fixture_path("fixture_check");
    let (ok, out, err) = run(
        &[
            "plugin",
            "push",
            &check,
            "--name",
            "probe",
            "--version",
            "0.3.0",
        ],
        &env,
    );
    assert!(ok, "push failed: {err}");
    assert!(
        out.contains("Uploaded probe@0.3.0 (check plugin, sha256:"),
        "{out}"
    );

    let policy = fixture_path("fixture_policy");
    let (ok, _, err) = run(
        &[
            "plugin",
            "push",
            &policy,
            "--name",
            "probe",
            "--version",
            "0.3.0",
        ],
        &env,
    );
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
