//! A faulty version under steady load: the canary fails one request in ten,
//! `metrics-threshold` reads its error ratio, `threshold-policy` calls it a
//! hard breach, and the release rolls itself back before the rollout.

use greenlight::fleet::Router;
use serde_json::Value;

use super::{CHECKS, DEPLOYER, daemon, deploy_flow, fleet, load, versions};
use crate::support::Daemon;
use crate::support::releases::{apply_flow, start_release, wait_status};

/// A canary of one instance checked every 50 ms of real time for up to 20 s,
/// then a rolling rollout: the canary's checks are what must stop it.
fn watched() -> String {
    format!(
        r#"name = "watched"
version = 1

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
count = 1
bake = "20s"
check_interval = "50ms"
deployer = {DEPLOYER}
checks = {CHECKS}
policy = {{ plugin = "policy" }}

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
batch = "50%"
deployer = {DEPLOYER}
checks = {CHECKS}
policy = {{ plugin = "policy" }}
"#
    )
}

/// When the policy decided to roll the release back, by its journal: the
/// moment the rollback starts.
async fn rollback_started_ms(d: &Daemon, id: &str) -> u64 {
    let (status, journal) = d
        .send(d.request(
            reqwest::Method::GET,
            &format!("/api/v1/releases/{id}/journal"),
        ))
        .await;
    assert_eq!(status, 200, "{journal}");
    let started = journal
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "decided" && e["detail"]["decision"]["ruling"] == "rollback")
        .cloned()
        .unwrap_or(Value::Null);
    started["at_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no decision to roll back in {journal:#}"))
}

#[tokio::test]
async fn a_faulty_canary_is_rolled_back_by_the_policy_from_its_error_ratio() {
    let fleet = fleet(10, "1.0.0", &[]).await;
    let router = Router::start(&fleet, "").await.unwrap();
    let d = daemon(&fleet, None, &watched(), "").await;
    // Greenlight learns the version to roll back to from the release that
    // put it on the fleet.
    apply_flow(&d, &deploy_flow("rolling", "rolling", "batch = \"50%\"")).await;
    let first = start_release(&d, "shop", "prod", "1.0.0", "rolling").await;
    wait_status(&d, &first, "succeeded").await;
    let load = load(router.addr);
    load.until(|r| r.served >= 20).await;

    let id = start_release(&d, "shop", "prod", "2.0.0-faulty", "watched").await;
    let done = wait_status(&d, &id, "rolled-back").await;
    let report = load.stop().await;
    let rollback_ms = rollback_started_ms(&d, &id).await;

    let first_failure = report
        .first_failure_ms
        .expect("the faulty version failed no request");
    println!(
        "fleet figures [faulty canary, built-in router]: {} ms from the first failed request \
         to the rollback starting; requests failed {}, served {}",
        rollback_ms.saturating_sub(first_failure),
        report.failed,
        report.served
    );
    let reason = done["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("hard breach") && reason.contains("stage canary"),
        "{done:#}"
    );
    assert_eq!(versions(&fleet), ["1.0.0"; 10], "{done:#}");
    // Only the canary ever took the faulty version, and every failure was
    // its deliberate 500.
    let touched: Vec<String> = fleet
        .snapshots()
        .into_iter()
        .filter(|s| s.deploys_of("2.0.0-faulty") > 0)
        .map(|s| s.id)
        .collect();
    assert_eq!(touched, ["web-0"]);
    assert!(
        report.failures.iter().all(|f| f == "500 from 2.0.0-faulty"),
        "{:?}",
        report.failures
    );
}
