//! A blue-green release behind nginx under steady load: the idle group is
//! deployed while it takes no traffic, then traffic moves to it by steps,
//! and no request fails on the way.

use std::time::Instant;

use serde_json::Value;

use super::{UnderLoad, assert_no_failures, deploy_flow, figures, settle, versions};
use crate::support::releases::{start_release, wait_status};

#[tokio::test]
async fn a_blue_green_release_behind_nginx_moves_all_traffic_without_failing_a_request() {
    let UnderLoad {
        fleet,
        nginx,
        d,
        load,
    } = UnderLoad::start(&["blue", "green"], "blue", |nginx| {
        let extra = format!(
            "traffic = {{ plugin = \"traffic\", params = {{ router_url = \"{}\" }} }}\nsteps = [10, 50, 100]",
            nginx.api_url()
        );
        deploy_flow("switch", "blue-green", &extra)
    })
    .await;

    let started = Instant::now();
    let id = start_release(&d, "shop", "prod", "2.0.0", "switch").await;
    let done = wait_status(&d, &id, "succeeded").await;
    let finished = Instant::now();
    let (report, now) = settle(load).await;

    figures(
        "blue-green, 10 instances, nginx",
        &fleet,
        started,
        finished,
        &report,
    );
    assert_no_failures(&report);
    // Green (the odd instances) was idle and took 2.0.0; blue kept 1.0.0
    // and now takes no traffic.
    let expected: Vec<&str> = (0..10)
        .map(|i| if i % 2 == 1 { "2.0.0" } else { "1.0.0" })
        .collect();
    assert_eq!(versions(&fleet), expected, "{done:#}");
    assert_eq!(now, ["2.0.0"], "traffic still reaches blue");
    let weights: Value = reqwest::get(format!("{}/weights", nginx.api_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let green = weights["weights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["group"] == "green")
        .map(|w| w["percent"].clone());
    assert_eq!(green, Some(100.into()), "{weights}");
    assert!(report.by_version["1.0.0"] > 0 && report.by_version["2.0.0"] > 0);
}
