//! A crash of the daemon in the middle of a rolling release under load:
//! the restarted daemon retries the batch in flight under its key, the
//! agents resume each instance after the last step they recorded, and no
//! instance is deployed twice or fails a request.

use std::time::Instant;

use super::{UnderLoad, assert_no_failures, deploy_flow, figures, versions};
use crate::support::releases::{start_release, wait_status};

#[tokio::test]
async fn a_daemon_killed_mid_batch_finishes_the_release_deploying_each_instance_once() {
    let UnderLoad { fleet, d, load, .. } = UnderLoad::start(&[], "", |_| {
        deploy_flow("rolling", "rolling", "batch = \"20%\"")
    })
    .await;

    let started = Instant::now();
    let id = start_release(&d, "shop", "prod", "2.0.0", "rolling").await;
    // The first batch takes six steps (two drains, deploys and enables);
    // the ninth is the first deploy of the second batch.
    fleet.until_steps(9).await;
    let d = d.crash_and_restart().await;
    let done = wait_status(&d, &id, "succeeded").await;
    let finished = Instant::now();
    let report = load.stop().await;

    figures(
        "rolling with a crash, 10 instances, nginx",
        &fleet,
        started,
        finished,
        &report,
    );
    assert_no_failures(&report);
    assert_eq!(versions(&fleet), ["2.0.0"; 10], "{done:#}");
    for s in fleet.snapshots() {
        assert_eq!(
            s.deploys_of("2.0.0"),
            1,
            "{} deployed again: {:?}",
            s.id,
            s.steps
        );
    }
    // The batch in flight was taken up again under the same key.
    let keys: Vec<String> = fleet.snapshots()[2..4]
        .iter()
        .flat_map(|s| s.steps.iter().map(|st| st.key.clone()))
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.split(':').next() == keys[0].split(':').next()),
        "{keys:?}"
    );
}
