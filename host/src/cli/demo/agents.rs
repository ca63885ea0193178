//! `greenlight demo --agents`: a service released on six hosts through real
//! `greenlight agent` processes. Each host is an agent with its own state
//! directory running the sample service as a process of its own, behind one
//! real nginx whose upstream the agents steer; versions come from an
//! artifact store on loopback with their checksums. Under steady traffic
//! through nginx, 2.0.0 rolls out two hosts at a time, then 3.0.0, whose
//! published checksum does not match its artifact, is refused by the first
//! host's agent and rolled back.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{Api, scratch_daemon, tour::BUNDLED, watch_release};
use crate::fleet::{Hosts, HostsOptions, Load, LoadOptions, find_nginx};

/// The flow: rolling batches of two hosts, each checked by its agents'
/// health.
const FLOW: &str = r#"name = "agents"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
batch = 2
deployer = { plugin = "deployer", params = { timeout_ms = "30000", health_timeout_ms = "30000", health_interval_ms = "20" } }
checks = [{ plugin = "health", params = { path = "/agent/health", expect_body = "\"healthy\":true" } }]
policy = { plugin = "policy" }
"#;

pub async fn demo(keep: bool) -> anyhow::Result<()> {
    let nginx = find_nginx().context(
        "nginx is not installed: `apt-get install nginx` (`./dev setup test` does), \
         then run the demo again",
    )?;
    println!(
        "Starting six hosts: each a `greenlight agent` process running the sample service, \
         behind nginx ({}), versions fetched from an artifact store on loopback …",
        nginx.display()
    );
    let started = Instant::now();
    let hosts = Hosts::start(&HostsOptions {
        hosts: 6,
        version: "1.0.0".into(),
        greenlight: std::env::current_exe()?,
        nginx,
        work_ms: 2,
    })
    .await?;
    println!(
        "… every host on 1.0.0 and in nginx after {:.1} s; nginx serves on http://{}, files in {}",
        started.elapsed().as_secs_f64(),
        hosts.addr,
        hosts.dir().display()
    );
    for host in &hosts.hosts {
        println!(
            "  {:<6} agent http://{}  service http://{}",
            host.id, host.agent_addr, host.service_addr
        );
    }

    let (daemon, _scratch, api) = scratch_daemon().await?;
    let base = api.base.clone();
    set_up(&api, &hosts).await?;

    let load = Load::start(&LoadOptions {
        url: format!("http://{}/", hosts.addr),
        rate_per_s: 200,
        workers: 8,
        timeout_ms: 5_000,
    })?;
    println!("Sending 200 requests a second through nginx for as long as the releases run.");
    hosts.store.publish("2.0.0")?;
    hosts.store.publish_bad_checksum("3.0.0")?;
    println!("Published 2.0.0, and 3.0.0 with a checksum that is not its artifact's.");
    let mut outcomes = Vec::new();
    for version in ["2.0.0", "3.0.0"] {
        let started = Instant::now();
        let status = watch_release(&api, version, "agents").await?;
        println!(
            "  {version} {status} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        outcomes.push(status);
    }
    let report = load.stop().await;
    println!(
        "\nTraffic through nginx meanwhile: {} requests served, {} failed; by version {:?}",
        report.served, report.failed, report.by_version
    );
    println!("\nWhat the agents say (GET /agent/status):");
    println!(
        "  {:<6} {:<8} {:<9} {:<8} INSTALLED",
        "HOST", "CURRENT", "IN NGINX", "RUNNING"
    );
    for (i, host) in hosts.hosts.iter().enumerate() {
        let status = hosts.status(i).await?;
        let installs: Vec<&str> = status["installs"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["version"].as_str()).collect())
            .unwrap_or_default();
        println!(
            "  {:<6} {:<8} {:<9} {:<8} {}",
            host.id,
            status["current"].as_str().unwrap_or("-"),
            if host.in_rotation() { "yes" } else { "no" },
            if status["running"] == true {
                "yes"
            } else {
                "no"
            },
            installs.join(" then ")
        );
    }
    if outcomes != ["succeeded", "rolled-back"] || report.failed > 0 {
        anyhow::bail!(
            "the demo releases did not end as expected: {outcomes:?}, {} requests failed",
            report.failed
        );
    }
    if keep {
        println!(
            "Daemon and hosts left running; open the web UI at {base}/ and sign in with the \
             admin token {} (Ctrl-C to stop)",
            api.token
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    drop(hosts);
    daemon.stop().await
}

/// Uploads the bundled deployer, health check and policy, grants the
/// deployer the agents and their token, applies the flow and makes
/// `shop/prod` of the hosts.
async fn set_up(api: &Api, hosts: &Hosts) -> anyhow::Result<()> {
    for (name, bytes) in BUNDLED {
        if ["deployer", "health", "policy"].contains(&name) {
            api.upload(name, bytes).await?;
        }
    }
    let limits = json!({"deadline_ms": 60_000, "max_outbound_requests": 1024});
    let grants = [
        (
            "deployer",
            json!({"allowed_hosts": hosts.origins(), "secrets": {"agent_token": hosts.token()}, "limits": limits}),
        ),
        (
            "health",
            json!({"allowed_hosts": hosts.origins(), "limits": limits}),
        ),
    ];
    for (name, grant) in grants {
        api.send(
            api.http
                .put(format!("{}/api/v1/plugins/{name}/grant", api.base))
                .json(&grant),
        )
        .await?;
    }
    println!(
        "Uploaded http-deployer, http-health and threshold-policy; granted the deployer the \
         agents' origins and their token as the secret `agent_token`."
    );
    api.send(
        api.http
            .put(format!("{}/api/v1/apps/shop/envs/prod", api.base))
            .json(&json!({ "targets": hosts.targets() })),
    )
    .await?;
    api.send(
        api.http
            .post(format!("{}/api/v1/flows", api.base))
            .header("content-type", "application/toml")
            .body(FLOW),
    )
    .await?;
    println!(
        "shop/prod is the six hosts, each addressed by its agent; flow `agents` applied: \
         rolling batches of two, http-health on /agent/health after each."
    );
    Ok(())
}
