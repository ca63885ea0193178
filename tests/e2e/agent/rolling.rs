//! A rolling release through six agents behind nginx under steady load:
//! each host leaves nginx, drains, takes the new version from the artifact
//! store, starts it, proves healthy and rejoins, and no request fails.

use std::time::Instant;

use super::{daemon, figures, flow, hosts, installs, load};
use crate::fleet::{assert_no_failures, settle};
use crate::support::releases::{start_release, wait_status};

#[tokio::test]
async fn a_rolling_release_through_six_agents_under_load_fails_no_request() {
    let hosts = hosts(6).await;
    hosts.store.publish("2.0.0").unwrap();
    let d = daemon(&hosts, &flow(2)).await;
    let load = load(&hosts).await;

    let started = Instant::now();
    let id = start_release(&d, "shop", "prod", "2.0.0", "agents").await;
    let done = wait_status(&d, &id, "succeeded").await;
    let finished = Instant::now();
    let (report, now) = settle(load).await;

    figures("rolling, 6 agents, nginx", started, finished, &report);
    assert_no_failures(&report);
    assert_eq!(now, ["2.0.0"], "nginx still routes to the old version");
    assert!(report.by_version.get("1.0.0").copied().unwrap_or(0) > 0);
    for (i, host) in hosts.hosts.iter().enumerate() {
        assert_eq!(host.current().as_deref(), Some("2.0.0"), "{done:#}");
        assert!(host.in_rotation(), "{} left out of nginx", host.id);
        assert_eq!(installs(&hosts, i).await, ["1.0.0", "2.0.0"], "{}", host.id);
        let status = hosts.status(i).await.unwrap();
        assert_eq!(status["running"], true, "{status:#}");
        assert_eq!(status["installed"], serde_json::json!(["1.0.0", "2.0.0"]));
    }
    assert_eq!(hosts.store.requests("2.0.0.tar.gz"), 6);
}
