//! The README's run command: `greenlight demo` shows the sandbox, then
//! releases the demo fleet under traffic with the bundled plugins: one
//! release ships past its approval gate, a faulty one rolls itself back, and
//! no request fails but the faulty version's own.

use std::process::Command;

use crate::support::binary;

#[test]
fn the_demo_ships_one_release_and_rolls_a_faulty_one_back() {
    let output = Command::new(binary())
        .arg("demo")
        .output()
        .expect("running greenlight demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "host_denied",
        "deadline_exceeded",
        "memory_exhausted",
        "precheck-done          sql@1.0.0 pass",
        "approve it in the web UI at http://127.0.0.1:",
        "approved               by admin: no one approved in time",
        "finished               succeeded",
        "1.5.0 succeeded in",
        "decided                rollback: hard breach: metrics@1.0.0 failed at stage canary",
        "1.5.0 succeeded; 1.6.0-faulty rolled-back. The fleet serves 1.5.0, 1.5.0, 1.5.0, 1.5.0, 1.5.0, 1.5.0, 1.5.0, 1.5.0.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let shipped = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1.5.0 succeeded in"))
        .unwrap_or_default();
    assert!(
        shipped.ends_with("requests served, 0 failed"),
        "requests failed during the release that shipped: {shipped}"
    );
}
