//! A rolling release of ten instances behind nginx under steady load: every
//! instance is drained before it is deployed, so no request fails.

use std::time::Instant;

use super::{UnderLoad, assert_no_failures, deploy_flow, figures, settle, versions};
use crate::support::releases::{start_release, wait_status};

#[tokio::test]
async fn a_rolling_release_behind_nginx_under_load_fails_no_request() {
    let UnderLoad {
        fleet,
        nginx,
        d,
        load,
    } = UnderLoad::start(&[], "", |_| {
        deploy_flow("rolling", "rolling", "batch = \"20%\"")
    })
    .await;

    let started = Instant::now();
    let id = start_release(&d, "shop", "prod", "2.0.0", "rolling").await;
    let done = wait_status(&d, &id, "succeeded").await;
    let finished = Instant::now();
    let (report, now) = settle(load).await;

    figures(
        "rolling, 10 instances, nginx",
        &fleet,
        started,
        finished,
        &report,
    );
    assert_no_failures(&report);
    assert_eq!(versions(&fleet), ["2.0.0"; 10], "{done:#}");
    assert_eq!(now, ["2.0.0"], "nginx still routes to the old version");
    assert!(report.by_version.get("1.0.0").copied().unwrap_or(0) > 0);
    for s in fleet.snapshots() {
        assert_eq!(s.deploys_of("2.0.0"), 1, "{}: {:?}", s.id, s.steps);
        assert_eq!(s.errors, 0, "{} answered errors", s.id);
    }
    // Two instances per batch, each drained and enabled by a reload.
    assert!(nginx.reloads() >= 20, "{} reloads", nginx.reloads());
}
