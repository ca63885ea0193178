//! An agent killed with SIGKILL in the middle of a deploy: restarted, it
//! finishes the deploy it journaled, the deployer's retried batch finds the
//! version running, and the host takes it exactly once.

use std::time::{Duration, Instant};

use super::{daemon, figures, flow, hosts, installs, load};
use crate::fleet::{assert_no_failures, settle};
use crate::support::releases::{start_release, wait_status};

#[tokio::test]
async fn an_agent_killed_mid_deploy_resumes_and_deploys_once() {
    let mut hosts = hosts(3).await;
    hosts.store.publish("2.0.0").unwrap();
    let d = daemon(&hosts, &flow(1)).await;
    let load = load(&hosts).await;

    hosts.store.hold("2.0.0");
    let started = Instant::now();
    let id = start_release(&d, "shop", "prod", "2.0.0", "agents").await;
    tokio::time::timeout(Duration::from_secs(60), hosts.store.held_downloads(1))
        .await
        .expect("no agent began downloading 2.0.0");
    let victim = (0..hosts.hosts.len())
        .find(|&i| hosts.hosts[i].pending().as_deref() == Some("2.0.0"))
        .expect("the downloading agent journaled no pending deploy");
    hosts.kill_agent(victim).await;
    hosts.store.release();
    hosts.start_agent(victim).await.unwrap();

    let done = wait_status(&d, &id, "succeeded").await;
    let finished = Instant::now();
    let (report, now) = settle(load).await;

    figures(
        "rolling with an agent killed, 3 agents",
        started,
        finished,
        &report,
    );
    assert_no_failures(&report);
    assert_eq!(now, ["2.0.0"]);
    for (i, host) in hosts.hosts.iter().enumerate() {
        assert_eq!(host.current().as_deref(), Some("2.0.0"), "{done:#}");
        assert!(host.in_rotation(), "{} left out of nginx", host.id);
        assert_eq!(host.pending(), None);
        assert_eq!(installs(&hosts, i).await, ["1.0.0", "2.0.0"], "{}", host.id);
    }
    // The killed download was asked for again; every other host once.
    assert_eq!(hosts.store.requests("2.0.0.tar.gz"), 4);
}
