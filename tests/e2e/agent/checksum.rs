//! A version whose artifact does not match its published checksum: the
//! agent refuses it before touching the running version, the batch fails,
//! and the rollback puts the host back on the previous version, on disk
//! and in nginx, without a failed request.

use std::time::Instant;

use super::{daemon, figures, flow, hosts, installs, load};
use crate::fleet::{assert_no_failures, settle};
use crate::support::releases::{start_release, wait_status};

#[tokio::test]
async fn a_bad_checksum_fails_the_batch_and_the_rollback_restores_the_previous_version() {
    let hosts = hosts(3).await;
    let d = daemon(&hosts, &flow(1)).await;
    // Greenlight learns the version to roll back to from the release that
    // put it on the hosts.
    let first = start_release(&d, "shop", "prod", "1.0.0", "agents").await;
    wait_status(&d, &first, "succeeded").await;
    hosts.store.publish_bad_checksum("2.0.0").unwrap();
    let load = load(&hosts).await;

    let started = Instant::now();
    let id = start_release(&d, "shop", "prod", "2.0.0", "agents").await;
    let done = wait_status(&d, &id, "rolled-back").await;
    let finished = Instant::now();
    let (report, now) = settle(load).await;

    figures(
        "bad checksum, rolled back, 3 agents",
        started,
        finished,
        &report,
    );
    assert_no_failures(&report);
    assert_eq!(now, ["1.0.0"]);
    let text = done.to_string();
    assert!(
        text.contains("checksum"),
        "the failure names no checksum: {done:#}"
    );
    for (i, host) in hosts.hosts.iter().enumerate() {
        assert_eq!(host.current().as_deref(), Some("1.0.0"), "{done:#}");
        assert!(
            host.in_rotation(),
            "{} left out of nginx: {done:#}",
            host.id
        );
        assert_eq!(installs(&hosts, i).await, ["1.0.0"], "{}", host.id);
        let status = hosts.status(i).await.unwrap();
        assert_eq!(status["running"], true, "{status:#}");
        assert_eq!(status["installed"], serde_json::json!(["1.0.0"]));
    }
    assert!(hosts.store.requests("2.0.0.tar.gz") >= 1);
}
