//! Releases from the command line: start, show, approve at the gate, watch
//! to the end, list, and roll back, against the real daemon on a manual
//! clock.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::releases::{
    Recorder, advance, apply_flow, put_environment, release_daemon, standard_flow, start_release,
    wait_for, wait_status,
};
use crate::support::{Daemon, binary};

const MINUTE: u64 = 60_000;

/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn command(d: &Daemon, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("release")
        .args(args)
        .env("GREENLIGHT_URL", &d.base)
        .env("GREENLIGHT_TOKEN", &d.token)
        .kill_on_drop(true);
    command
}

/// Runs `greenlight release ARGS…` against the daemon.
async fn release_cli(d: &Daemon, args: &[&str]) -> Output {
    let out = tokio::time::timeout(COMMAND_TIMEOUT, command(d, args).output())
        .await
        .unwrap_or_else(|_| panic!("`greenlight release {}` did not finish", args.join(" ")))
        .unwrap();
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command that must succeed and returns what it printed.
async fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = release_cli(d, args).await;
    assert!(
        out.ok,
        "`greenlight release {}` failed: {}",
        args.join(" "),
        out.stderr
    );
    out.stdout
}

/// Runs a command with `--json` that must succeed and returns the one
/// JSON document it printed.
async fn json(d: &Daemon, args: &[&str]) -> Value {
    let args = [args, &["--json"]].concat();
    let out = ok(d, &args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "`greenlight release {}` printed no JSON document ({e}):\n{out}",
            args.join(" ")
        )
    })
}

/// The events `watch --json` printed, one JSON object a line.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect()
}

/// The line of a table or listing that mentions `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line mentions `{needle}` in:\n{text}"))
}

#[tokio::test]
async fn a_release_is_started_approved_watched_and_rolled_back_from_the_cli() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;

    let started = ok(
        &d,
        &[
            "start",
            "--app",
            "shop",
            "--env",
            "prod",
            "--version",
            "2.0.0",
            "--flow",
            "standard",
        ],
    )
    .await;
    let first = started.lines().next().unwrap_or_default();
    let id = first
        .strip_prefix("Started release ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no release id in:\n{started}"))
        .to_string();
    assert!(
        first.ends_with("shop/prod 2.0.0 with standard@1"),
        "{started}"
    );
    for (stage, plan) in [
        ("prechecks", "1 precheck"),
        ("canary", "1 batch of 1 target"),
        ("go-ahead", "approval gate"),
        ("rollout", "3 batches of 1 target"),
    ] {
        assert!(line_with(&started, stage).contains(plan), "{started}");
    }

    // Past the canary's bake to the gate, on the daemon's manual clock.
    wait_for(&d, &id, "the canary bake", |r| {
        !r["next_check_ms"].is_null()
    })
    .await;
    advance(&d, 10 * MINUTE).await;
    wait_status(&d, &id, "waiting-approval").await;

    let shown = ok(&d, &["show", &id]).await;
    assert!(
        line_with(&shown, "status:").contains("waiting-approval"),
        "{shown}"
    );
    assert!(shown.contains("Gate go-ahead"), "{shown}");
    assert!(
        shown.contains("0 of 1 approvals from release-manager"),
        "{shown}"
    );
    assert!(
        shown.contains("expires at 2027-01-15 09:10:00 UTC"),
        "{shown}"
    );
    assert!(
        line_with(&shown, "proceed").contains("canary batch 1"),
        "{shown}"
    );
    assert!(
        shown.contains("Targets (4): 1 verified, 3 pending"),
        "{shown}"
    );

    // A rejection must say why, before anything is sent.
    let refused = release_cli(&d, &["reject", &id]).await;
    assert!(!refused.ok, "a rejection without a comment must fail");
    assert!(refused.stderr.contains("--comment"), "{}", refused.stderr);
    let refused = release_cli(&d, &["reject", &id, "--comment", " "]).await;
    assert!(!refused.ok);
    assert!(
        refused
            .stderr
            .contains("a rejection needs --comment saying why"),
        "{}",
        refused.stderr
    );

    // Watch from the gate on: what happened so far comes from the journal,
    // and once that is printed the rest arrives through the event stream.
    let mut watch = command(&d, &["watch", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    while !stdout.contains("gate-opened") {
        let line = tokio::time::timeout(COMMAND_TIMEOUT, lines.next_line())
            .await
            .expect("watch printed no history")
            .unwrap()
            .unwrap_or_else(|| panic!("watch ended early:\n{stdout}"));
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let approved = ok(&d, &["approve", &id, "--comment", "canary is fine"]).await;
    assert_eq!(
        approved.trim(),
        format!("Approved release {id}; it is now running.")
    );
    while let Some(line) = tokio::time::timeout(COMMAND_TIMEOUT, lines.next_line())
        .await
        .expect("watch did not end with the release")
        .unwrap()
    {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let watched = watch.wait_with_output().await.unwrap();
    assert!(
        watched.status.success(),
        "watch must succeed with the release: {}\n{stdout}",
        String::from_utf8_lossy(&watched.stderr)
    );
    let kinds: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(kinds.first(), Some(&"started"), "{stdout}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "finished").count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "deployed").count(),
        4,
        "every batch once, in order: {stdout}"
    );
    assert!(
        line_with(&stdout, " approved ").contains("go-ahead by admin: canary is fine"),
        "{stdout}"
    );
    assert!(
        line_with(&stdout, " finished ").contains("succeeded"),
        "{stdout}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with(&format!("Release {id} succeeded: all 10 steps done")),
        "{stdout}"
    );

    let listed = ok(&d, &["list"]).await;
    let header: Vec<&str> = listed.lines().next().unwrap().split("  ").collect();
    assert_eq!(header[0].trim(), "ID", "{listed}");
    let row: Vec<&str> = line_with(&listed, &id).split_whitespace().collect();
    assert_eq!(
        row,
        [
            id.as_str(),
            "shop",
            "prod",
            "2.0.0",
            "succeeded",
            "admin",
            "10m"
        ],
        "{listed}"
    );
    let none = ok(&d, &["list", "--status", "running"]).await;
    assert!(!none.contains(&id), "{none}");

    // Errors from the API come out as the server's code and message.
    let refused = release_cli(&d, &["approve", &id]).await;
    assert!(!refused.ok);
    assert!(
        refused
            .stderr
            .contains("release.not_waiting (409): the release is succeeded"),
        "{}",
        refused.stderr
    );

    let rolled = ok(&d, &["rollback", &id, "--comment", "bad build"]).await;
    assert!(
        rolled.starts_with(&format!(
            "Rolling release {id} back (regular); it is now rolling-back."
        )),
        "{rolled}"
    );
    let watched = release_cli(&d, &["watch", &id]).await;
    assert!(!watched.ok, "a rolled-back release fails the watch");
    assert!(
        watched.stderr.contains(&format!(
            "release {id} ended rolled-back: admin rolled the release back: bad build"
        )),
        "{}",
        watched.stderr
    );
    assert!(
        watched.stdout.contains("rollback-started"),
        "{}",
        watched.stdout
    );
    // Every batch rolled back (a call that ran past its deadline on a busy
    // machine is asked again under the next attempt's key, so count the
    // keys without their attempt, not the calls).
    let batches: std::collections::BTreeSet<String> = recorder
        .calls_of("rollback")
        .into_iter()
        .map(|c| {
            c.key
                .rsplit_once('/')
                .map_or(c.key.clone(), |(k, _)| k.to_string())
        })
        .collect();
    assert_eq!(batches.len(), 4, "{batches:?}");
    let shown = ok(&d, &["show", &id]).await;
    assert!(
        shown.contains("Rollback (regular): admin rolled the release back: bad build"),
        "{shown}"
    );
    assert!(
        shown.contains("admin approved go-ahead at 2027-01-15 08:10:00 UTC: canary is fine"),
        "{shown}"
    );
    assert!(shown.contains("Targets (4): 4 rolled-back"), "{shown}");
}

#[tokio::test]
async fn scripts_read_releases_and_their_events_as_json() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 2, &[]).await;

    // An emergency release skips its bake and its gate, so it runs to the
    // end on its own while `watch` follows it.
    let started = json(
        &d,
        &[
            "start",
            "--app",
            "shop",
            "--env",
            "prod",
            "--version",
            "2.0.0",
            "--flow",
            "standard",
            "--emergency",
        ],
    )
    .await;
    let id = started["id"].as_str().expect("a release id").to_string();
    assert_eq!(started["emergency"], true, "{started:#}");
    assert_eq!(started["stages"][3]["name"], "rollout", "{started:#}");

    let watched = release_cli(&d, &["watch", &id, "--json"]).await;
    assert!(watched.ok, "watch failed: {}", watched.stderr);
    let events = json_lines(&watched.stdout);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..events.len() as u64).collect::<Vec<_>>(),
        "every event once, in order: {}",
        watched.stdout
    );
    assert!(events.iter().all(|e| e["release"] == id.as_str()));
    assert_eq!(events[0]["kind"], "started", "{}", watched.stdout);
    assert!(
        events.iter().any(|e| e["kind"] == "gate-skipped"),
        "{}",
        watched.stdout
    );
    let last = events.last().unwrap();
    assert_eq!(
        (&last["kind"], &last["detail"]["status"]),
        (&Value::from("finished"), &Value::from("succeeded")),
        "{}",
        watched.stdout
    );

    let listed = json(&d, &["list"]).await;
    let row = listed
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} is not listed: {listed:#}"));
    for (field, want) in [
        ("application", "shop"),
        ("environment", "prod"),
        ("version", "2.0.0"),
        ("status", "succeeded"),
        ("started_by", "admin"),
    ] {
        assert_eq!(row[field], want, "{field}: {row:#}");
    }
    let none = json(&d, &["list", "--status", "running"]).await;
    assert_eq!(none, Value::Array(Vec::new()));

    let shown = json(&d, &["show", &id]).await;
    assert_eq!(shown["status"], "succeeded", "{shown:#}");
    assert_eq!(shown["events"], events.len(), "{shown:#}");
    let steps: Vec<&Value> = shown["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|stage| stage["steps"].as_array().unwrap())
        .collect();
    assert!(
        !steps.is_empty() && steps.iter().all(|s| s["state"] == "done"),
        "{shown:#}"
    );
    let targets: Vec<&str> = shown["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["verified", "verified"], "{shown:#}");

    // Errors stay on stderr, as the daemon's code and message.
    let refused = release_cli(&d, &["approve", &id, "--json"]).await;
    assert!(!refused.ok);
    assert_eq!(refused.stdout, "");
    assert!(
        refused
            .stderr
            .contains("release.not_waiting (409): the release is succeeded"),
        "{}",
        refused.stderr
    );

    // A release that ends otherwise fails the watch in JSON too.
    let rolling = json(&d, &["rollback", &id, "--comment", "bad build"]).await;
    assert_eq!(rolling["status"], "rolling-back", "{rolling:#}");
    let watched = release_cli(&d, &["watch", &id, "--json"]).await;
    assert!(!watched.ok, "a rolled-back release fails the watch");
    let events = json_lines(&watched.stdout);
    let last = events.last().unwrap();
    assert_eq!(
        (&last["kind"], &last["detail"]["status"]),
        (&Value::from("finished"), &Value::from("rolled-back")),
        "{}",
        watched.stdout
    );
    assert!(
        watched.stderr.contains(&format!(
            "release {id} ended rolled-back: admin rolled the release back: bad build"
        )),
        "{}",
        watched.stderr
    );
}

#[tokio::test]
async fn pause_and_resume_from_the_cli_carry_their_comments_to_the_audit_log() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 2, &[]).await;
    recorder.hold_deploy(0);
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    recorder.next_call().await;

    let paused = ok(&d, &["pause", &id, "--comment", "hold on"]).await;
    assert!(paused.contains("it is now paused"), "{paused}");
    let resumed = ok(&d, &["resume", &id, "--comment", "dashboards are green"]).await;
    assert!(resumed.contains("it is now running"), "{resumed}");
    recorder.free();

    let (status, log) = d
        .send(d.request(reqwest::Method::GET, &format!("/api/v1/audit?release={id}")))
        .await;
    assert_eq!(status, 200, "{log}");
    let resume = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "POST /api/v1/releases/{id}/resume")
        .unwrap_or_else(|| panic!("no resume in {log:#}"));
    assert_eq!(resume["comment"], "dashboards are green", "{resume:#}");
}
