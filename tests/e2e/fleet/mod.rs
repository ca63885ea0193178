//! Releases of the demo fleet under steady load: a real daemon running the
//! bundled plugins against real instances behind real nginx (or the
//! built-in router), with requests flowing through the router the whole
//! time and every one of them counted.

mod blue_green;
mod canary;
mod faulty;
mod restart;
mod rolling;

use std::path::PathBuf;
use std::time::Instant;

use greenlight::fleet::{Fleet, FleetOptions, Load, LoadOptions, LoadReport, Nginx};
use serde_json::json;

use crate::support::releases::apply_flow;
use crate::support::{Daemon, fixture};

/// Requests per second the load sends through the router.
const RATE_PER_S: u32 = 200;

/// The deploy stage's deployer, polling start-ups closely.
pub const DEPLOYER: &str = r#"{ plugin = "deployer", params = { health_interval_ms = "10", health_timeout_ms = "5000" } }"#;

/// The checks of every deploy stage: the instances' health, and their
/// error ratio since they took the version (hard breach past 5%).
pub const CHECKS: &str = r#"[
  { plugin = "health", params = { expect_body = "\"healthy\":true" } },
  { plugin = "metrics", params = { metrics = "error_ratio", "error_ratio.query" = "fleet_error_ratio", "error_ratio.soft" = "> 1%", "error_ratio.hard" = "> 5%" } },
]"#;

/// nginx from the `PATH` or where Debian puts it.
pub fn nginx_binary() -> PathBuf {
    greenlight::fleet::find_nginx()
        .expect("nginx is not installed: `apt-get install nginx` (`./dev setup test` does)")
}

/// A fleet of `n` instances on `version` in `groups`.
pub async fn fleet(n: usize, version: &str, groups: &[&str]) -> Fleet {
    Fleet::start(&FleetOptions {
        instances: n,
        version: version.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        startup_ms: 30,
        work_ms: 2,
    })
    .await
    .unwrap()
}

/// nginx in front of a fleet, steering it, all traffic on `live_group`.
pub async fn nginx(fleet: &Fleet, live_group: &str) -> Nginx {
    Nginx::start(&nginx_binary(), fleet, live_group)
        .await
        .unwrap()
}

/// Steady load through `addr`.
pub fn load(addr: std::net::SocketAddr) -> Load {
    Load::start(&LoadOptions {
        url: format!("http://{addr}/"),
        rate_per_s: RATE_PER_S,
        workers: 8,
        timeout_ms: 5_000,
    })
    .unwrap()
}

/// A daemon with the bundled plugins, granted the fleet (and `router`,
/// the origin of a router API), `flow` applied, and `shop/prod` made of
/// the fleet's instances with `live_group` live.
pub async fn daemon(fleet: &Fleet, router: Option<&str>, flow: &str, live_group: &str) -> Daemon {
    let d = Daemon::start().await;
    for (name, crate_name) in [
        ("deployer", "http_deployer"),
        ("health", "http_health"),
        ("metrics", "metrics_threshold"),
        ("policy", "threshold_policy"),
        ("traffic", "http_traffic"),
    ] {
        let (status, body) = d.upload(name, "1.0.0", fixture(crate_name)).await;
        assert_eq!(status, 201, "{body}");
    }
    let mut origins = fleet.origins();
    origins.extend(router.map(str::to_string));
    // A deployer makes at least five requests per target, plus its health
    // polls; the checks one per target.
    let grant = json!({
        "allowed_hosts": origins,
        "limits": {"deadline_ms": 20_000, "max_outbound_requests": 512}
    });
    for name in ["deployer", "health", "metrics", "traffic"] {
        d.grant(name, grant.clone()).await;
    }
    apply_flow(&d, flow).await;
    let mut env = json!({ "targets": fleet.targets() });
    if !live_group.is_empty() {
        env["live_group"] = json!(live_group);
    }
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PUT, "/api/v1/apps/shop/envs/prod")
                .json(&env),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    d
}

/// A flow named `name` of one deploy stage `strategy` with `extra` lines.
pub fn deploy_flow(name: &str, strategy: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "{strategy}"
deployer = {DEPLOYER}
checks = {CHECKS}
policy = {{ plugin = "policy" }}
{extra}
"#
    )
}

/// The versions the instances are on.
pub fn versions(fleet: &Fleet) -> Vec<String> {
    fleet.snapshots().into_iter().map(|s| s.version).collect()
}

/// Stops the load after forty more requests; returns what it saw and the
/// versions that answered those last requests: what the router serves now.
pub async fn settle(load: Load) -> (LoadReport, Vec<String>) {
    let before = load.report();
    let after = load.until(|r| r.served >= before.served + 40).await;
    let now = after
        .by_version
        .iter()
        .filter(|(v, n)| before.by_version.get(*v).copied().unwrap_or(0) < **n)
        .map(|(v, _)| v.clone())
        .collect();
    (load.stop().await, now)
}

/// A fleet of ten behind nginx, a daemon steering it with `flow` (made
/// knowing where nginx's router API is), and steady load through nginx.
pub struct UnderLoad {
    pub fleet: Fleet,
    pub nginx: Nginx,
    pub d: Daemon,
    pub load: Load,
}

impl UnderLoad {
    pub async fn start(
        groups: &[&str],
        live: &str,
        flow: impl FnOnce(&Nginx) -> String,
    ) -> UnderLoad {
        let fleet = fleet(10, "1.0.0", groups).await;
        let nginx = nginx(&fleet, live).await;
        let router = format!("http://{}", nginx.api_addr);
        let d = daemon(&fleet, Some(&router), &flow(&nginx), live).await;
        let load = load(nginx.addr);
        load.until(|r| r.served >= 20).await;
        UnderLoad {
            fleet,
            nginx,
            d,
            load,
        }
    }
}

/// Prints a release's figures: its duration, the part of it the fleet
/// kept Greenlight waiting, and what the load saw.
pub fn figures(label: &str, fleet: &Fleet, started: Instant, done: Instant, load: &LoadReport) {
    let total = done - started;
    let fleet_ms = fleet.busy_within(started, done);
    let own = total.saturating_sub(fleet_ms);
    println!(
        "fleet figures [{label}]: total {} ms, Greenlight {} ms ({:.0}%), waiting on the fleet {} ms; \
         requests served {}, failed {}",
        total.as_millis(),
        own.as_millis(),
        100.0 * own.as_secs_f64() / total.as_secs_f64().max(1e-9),
        fleet_ms.as_millis(),
        load.served,
        load.failed,
    );
}

/// Asserts that no request failed, showing the first failures otherwise.
pub fn assert_no_failures(report: &LoadReport) {
    assert_eq!(
        report.failed, 0,
        "requests failed during the release: {:?}",
        report.failures
    );
    assert!(report.served > 0, "no request was served");
}
