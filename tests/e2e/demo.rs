//! The README's run command: `greenlight demo` shows the sandbox, then ships
//! one release and rolls another back, and exits cleanly.

use std::process::Command;

use crate::support::binary;

#[test]
fn the_demo_ships_one_release_and_rolls_another_back() {
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
        "finished               succeeded",
        "rollback: probe@1.0.0 failed at stage rollout, batch 1",
        "1.5.0 succeeded; 1.6.0 rolled-back",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
}
