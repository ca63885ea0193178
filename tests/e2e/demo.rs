//! The README's run command: `greenlight demo` shows the sandbox, then
//! releases the demo fleet under traffic with the bundled plugins: one
//! release ships past its approval gate, a faulty one rolls itself back, and
//! no request fails but the faulty version's own.

use std::process::Command;

use crate::support::binary;

/// Runs `greenlight demo ARGS`, which must succeed; returns its output.
fn demo(args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(binary())
        .arg("demo")
        .args(args)
        .output()
        .expect("running greenlight demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_demo_ships_one_release_and_rolls_a_faulty_one_back() {
    let stdout = demo(&[]);
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

/// `greenlight demo --kubernetes`, run from the checkout: two test-bed
/// clusters, the environment imported from them, 1.5.0 rolled out canary
/// first then cluster by cluster, and a crash-looping version rolled back.
#[test]
fn the_kubernetes_demo_ships_to_two_clusters_and_rolls_a_crashing_version_back() {
    let testbed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/k8s");
    let stdout = demo(&[
        "--kubernetes".as_ref(),
        "--testbed".as_ref(),
        testbed.as_os_str(),
    ]);
    for expected in [
        "as `greenlight inventory import` does: shop-canary.east, shop.east, shop.west",
        "progressed             default/shop (127.0.0.1:",
        "verified               pass 10 of 10 desired pods of the current template ready (shop.west 10/10)",
        "1.5.0 succeeded in",
        "deployed               shop-canary.east failed",
        "CrashLoopBackOff",
        "crashloop-1.6.0 rolled-back in",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // Every workload ends on 1.5.0, each patched once by the release that
    // shipped (the canary also by the one rolled back, and its rollback).
    let table: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("registry.example/shop:"))
        .collect();
    assert_eq!(table.len(), 3, "{stdout}");
    for line in table {
        assert!(line.contains("registry.example/shop:1.5.0"), "{line}");
        let generation = line.split_whitespace().last().unwrap();
        let want = if line.contains("shop-canary") {
            "4"
        } else {
            "2"
        };
        assert_eq!(generation, want, "{line}");
    }
}

/// `greenlight demo --agents`: six agent processes behind real nginx; 2.0.0
/// ships two hosts at a time, 3.0.0's bad checksum is refused and rolled
/// back, and no request through nginx fails.
#[test]
fn the_agents_demo_ships_through_six_agents_and_rolls_a_bad_checksum_back() {
    let stdout = demo(&["--agents".as_ref()]);
    for expected in [
        "every host on 1.0.0 and in nginx after",
        "deployed               web-4, web-5",
        "2.0.0 succeeded in",
        "artifact.checksum_mismatch",
        "rolled-back-batch      web-0, web-1",
        "3.0.0 rolled-back in",
        "failed; by version",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let traffic = stdout
        .lines()
        .find(|l| l.starts_with("Traffic through nginx meanwhile"))
        .unwrap_or_default();
    assert!(traffic.contains(", 0 failed;"), "{traffic}");
    let table: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("web-"))
        .filter(|l| l.contains(" then "))
        .collect();
    assert_eq!(table.len(), 6, "{stdout}");
    for line in table {
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            columns[1..],
            ["2.0.0", "yes", "yes", "1.0.0", "then", "2.0.0"],
            "{line}"
        );
    }
}
