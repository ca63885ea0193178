//! Releases through `greenlight agent`: real agent processes, each running
//! the sample service as a process of its own from versions it downloads
//! and checks, taking its host out of a real nginx and back, with steady
//! load through nginx the whole time and every request counted.

mod api;
mod checksum;
mod crash;
mod rolling;
mod systemd;
mod walkthrough;

use std::time::Instant;

use greenlight::fleet::{Hosts, HostsOptions, Load, LoadReport, Target};
use serde_json::json;

use crate::fleet::nginx_binary;
use crate::support::releases::apply_flow;
use crate::support::{Daemon, binary, fixture};

/// `count` hosts on 1.0.0 behind nginx.
pub async fn hosts(count: usize) -> Hosts {
    Hosts::start(&HostsOptions {
        hosts: count,
        version: "1.0.0".into(),
        greenlight: binary().into(),
        nginx: nginx_binary(),
        work_ms: 2,
    })
    .await
    .unwrap()
}

/// A rolling flow through the agents, `batch` hosts at a time, each batch
/// checked by the agents' health.
pub fn flow(batch: usize) -> String {
    format!(
        r#"name = "agents"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
batch = {batch}
deployer = {{ plugin = "deployer", params = {{ timeout_ms = "20000", health_timeout_ms = "20000", health_interval_ms = "20" }} }}
checks = [{{ plugin = "health", params = {{ path = "/agent/health", expect_body = "\"healthy\":true" }} }}]
policy = {{ plugin = "policy" }}
"#
    )
}

/// A daemon with the bundled deployer, health check and policy, the
/// deployer granted the agents and their token, `flow` applied, and
/// `shop/prod` made of the hosts.
pub async fn daemon(hosts: &Hosts, flow: &str) -> Daemon {
    daemon_for(&hosts.origins(), hosts.token(), &hosts.targets(), flow).await
}

/// [`daemon`] for agents given by their origins, token and targets.
pub async fn daemon_for(origins: &[String], token: &str, targets: &[Target], flow: &str) -> Daemon {
    let d = Daemon::start().await;
    for (name, crate_name) in [
        ("deployer", "http_deployer"),
        ("health", "http_health"),
        ("policy", "threshold_policy"),
    ] {
        let (status, body) = d.upload(name, "1.0.0", fixture(crate_name)).await;
        assert_eq!(status, 201, "{body}");
    }
    let limits = json!({"deadline_ms": 60_000, "max_outbound_requests": 1024});
    d.grant(
        "deployer",
        json!({
            "allowed_hosts": origins,
            "secrets": {"agent_token": token},
            "limits": limits,
        }),
    )
    .await;
    d.grant(
        "health",
        json!({"allowed_hosts": origins, "limits": limits}),
    )
    .await;
    apply_flow(&d, flow).await;
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PUT, "/api/v1/apps/shop/envs/prod")
                .json(&json!({ "targets": targets })),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    d
}

/// Steady load through nginx, once it serves.
pub async fn load(hosts: &Hosts) -> Load {
    let load = crate::fleet::load(hosts.addr);
    load.until(|r| r.served >= 20).await;
    load
}

/// The versions each host's agent installed, in order, from its status.
pub async fn installs(hosts: &Hosts, i: usize) -> Vec<String> {
    let status = hosts.status(i).await.unwrap();
    status["installs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_str().unwrap().to_string())
        .collect()
}

/// Prints a release's figures.
pub fn figures(label: &str, started: Instant, done: Instant, load: &LoadReport) {
    println!(
        "agent figures [{label}]: total {} ms; requests served {}, failed {}, by version {:?}",
        (done - started).as_millis(),
        load.served,
        load.failed,
        load.by_version,
    );
}
