//! The daemon against its own OpenAPI document: schemathesis generates
//! requests from the document served at `/api/v1/openapi.json`, valid and
//! invalid, and checks that the daemon accepts what the document allows,
//! refuses what it forbids, never fails, and answers with the documented
//! statuses, content types and bodies.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Daemon;

/// Test cases per operation and phase: enough to reach every rule, few
/// enough for about a minute on two cores.
const MAX_EXAMPLES: &str = "25";

/// The checks that compare the daemon with its document.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,negative_data_rejection,positive_data_acceptance";

/// Operations left out, by operation id, each with why. Every other
/// operation is exercised.
const LEFT_OUT: &[&str] = &[
    // A stream of server-sent events that stays open: nothing to compare.
    "release_events",
    // The body is a flow file (TOML), whose rules the flow file format
    // states, not the document; tests/flows covers them.
    "apply_flow",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The pinned schemathesis that `./dev setup test` installs.
fn schemathesis() -> PathBuf {
    let path = root().join("target/conformance/venv/bin/schemathesis");
    assert!(
        path.exists(),
        "schemathesis is not installed at {}: run `./dev setup test`",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_daemon_does_what_its_document_says() {
    let tool = schemathesis();
    let d = Daemon::start().await;
    let mut command = Command::new(tool);
    command
        .arg("--config-file")
        .arg(root().join("tests/conformance/schemathesis.toml"))
        .arg("--no-color")
        .args(["run", &d.url("/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {}", d.token)])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "1"])
        // One worker: with two, Python 3.11's parser (which Hypothesis
        // calls to describe its strategies) is not safe across threads and
        // now and then fails the run with a `SystemError` (seen through a
        // `KeyError`) that says nothing about the daemon. One worker keeps
        // the run well under a minute.
        .args(["--workers", "1"])
        // Nothing remembered between runs: every run of a seed is the same.
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "20"])
        .arg("--no-shrink");
    for id in LEFT_OUT {
        command.args(["--exclude-operation-id", id]);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .filter(|l| l.contains("Schema-") || l.contains("failures") || l.contains("errors"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        output.status.success(),
        "schemathesis found mismatches:\n{summary}\n\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    d.assert_healthy().await;
}
