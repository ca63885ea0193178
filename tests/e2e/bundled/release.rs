//! Releases run by the bundled plugins alone: `sql-precheck` before,
//! `http-deployer` taking test agents through each batch, `http-health`
//! verifying it, `threshold-policy` deciding, and a rollback through the
//! same agents when a version never becomes healthy.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::agent::{Shared, agent};
use super::traffic::router;
use super::{Journal, origin};
use crate::support::Daemon;
use crate::support::fixture;
use crate::support::releases::{CLOCK_START_MS, apply_flow, wait_status};

/// The deploy stage of strategy `STRATEGY` through the test agents; the
/// rest of the stage follows it.
const DEPLOY: &str = r#"
[[stages]]
name = "rollout"
kind = "deploy"
strategy = "STRATEGY"
deployer = { plugin = "deployer", params = { health_timeout_ms = "400", health_interval_ms = "50" } }
"#;

/// A flow named `name` whose last stage is a deploy stage with `rest`.
fn flow(name: &str, before: &str, strategy: &str, rest: &str) -> String {
    let deploy = DEPLOY
        .replace("STRATEGY", strategy)
        .replace("NAME", "rollout");
    format!("name = \"{name}\"\nversion = 1\n{before}{deploy}{rest}")
}

fn rolling() -> String {
    flow(
        "bundled",
        "[[stages]]\nname = \"prechecks\"\nkind = \"precheck\"\nplugins = [{ plugin = \"sql\" }]\n",
        "rolling",
        r#"batch = "50%"
checks = [{ plugin = "health", params = { path = "/agent/health", expect_body = "\"healthy\":true" } }]
policy = { plugin = "policy" }
"#,
    )
}

fn blue_green(router_url: &str) -> String {
    flow(
        "switch",
        "",
        "blue-green",
        &format!(
            r#"traffic = {{ plugin = "traffic", params = {{ router_url = "{router_url}" }} }}
steps = [10, 50, 100]
checks = [{{ plugin = "health", params = {{ path = "/agent/health" }} }}]
"#
        ),
    )
}

fn watched() -> String {
    flow(
        "watched",
        "",
        "rolling",
        r#"batch = "50%"
checks = [{ plugin = "metrics", params = { metrics = "error_ratio", "error_ratio.query" = "app_error_ratio", "error_ratio.soft" = "> 1%", "error_ratio.hard" = "> 5%", metrics_path = "/agent/metrics" } }]
policy = { plugin = "policy" }
"#,
    )
}

/// A daemon with the bundled plugins, the flow applied, and `shop/prod`
/// made of four agents (in `groups`, taken in turn, the first one live).
/// The deployer and the health check may call their releases' targets;
/// the metrics check is granted the four agents by origin.
async fn fleet(
    faulty: Option<&str>,
    groups: &[&str],
) -> (Daemon, Vec<(SocketAddr, Shared)>, Journal) {
    let journal = Journal::default();
    let mut agents = Vec::new();
    for id in ["web-0", "web-1", "web-2", "web-3"] {
        agents.push(agent(id, faulty, &journal).await);
    }
    let d = Daemon::start_with_config(&format!("manual_clock_ms = {CLOCK_START_MS}\n")).await;
    for (name, crate_name) in [
        ("sql", "sql_precheck"),
        ("deployer", "http_deployer"),
        ("health", "http_health"),
        ("policy", "threshold_policy"),
        ("traffic", "http_traffic"),
        ("metrics", "metrics_threshold"),
    ] {
        let (status, body) = d.upload(name, "1.0.0", fixture(crate_name)).await;
        assert_eq!(status, 201, "{body}");
    }
    let origins: Vec<String> = agents.iter().map(|(a, _)| origin(*a)).collect();
    for name in ["deployer", "health"] {
        d.grant(name, json!({"allow_release_targets": true})).await;
    }
    d.grant("metrics", json!({"allowed_hosts": origins})).await;
    apply_flow(&d, &rolling()).await;
    put_fleet(&d, &agents, groups).await;
    (d, agents, journal)
}

/// Makes `shop/prod` these agents, in `groups` taken in turn.
async fn put_fleet(d: &Daemon, agents: &[(SocketAddr, Shared)], groups: &[&str]) {
    let targets: Vec<Value> = agents
        .iter()
        .enumerate()
        .map(|(i, (a, _))| {
            let group = groups.get(i % groups.len().max(1)).copied().unwrap_or("");
            json!({"id": format!("web-{i}"), "address": a.to_string(), "group": group})
        })
        .collect();
    let mut env = json!({ "targets": targets });
    if let Some(live) = groups.first() {
        env["live_group"] = json!(live);
    }
    let (status, body) = d
        .send(
            d.request(reqwest::Method::PUT, "/api/v1/apps/shop/envs/prod")
                .json(&env),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
}

async fn ship(d: &Daemon, version: &str, migration: &str) -> String {
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases")
                .json(&json!({
                    "application": "shop", "environment": "prod", "version": version,
                    "flow": "bundled",
                    "artifacts": [{"kind": "sql-migration", "name": "V1.sql", "content": migration}],
                })),
        )
        .await;
    assert_eq!(status, 201, "release refused: {body}");
    body["id"].as_str().unwrap().to_string()
}

fn versions(agents: &[(SocketAddr, Shared)]) -> Vec<String> {
    agents
        .iter()
        .map(|(_, a)| a.lock().unwrap().version.clone())
        .collect()
}

/// The journal entries of one agent.
fn steps_of(journal: &Journal, id: &str) -> Vec<String> {
    journal
        .entries()
        .into_iter()
        .filter(|e| e.starts_with(&format!("{id} ")))
        .map(|e| {
            // `web-1 drain KEY`, `web-1 deploy 2.0.0`, `web-1 enable`.
            let words: Vec<&str> = e.split_whitespace().skip(1).collect();
            match words[..] {
                ["drain", ..] => "drain".to_string(),
                _ => words.join(" "),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_rolling_release_ships_to_every_agent_once() {
    let (d, agents, journal) = fleet(None, &[]).await;
    let id = ship(
        &d,
        "2.0.0",
        "ALTER TABLE users ADD COLUMN tier text DEFAULT 'free';",
    )
    .await;
    let done = wait_status(&d, &id, "succeeded").await;
    assert_eq!(done["forward_only"], false, "{done:#}");
    assert_eq!(versions(&agents), ["2.0.0"; 4]);
    for id in ["web-0", "web-1", "web-2", "web-3"] {
        assert_eq!(
            steps_of(&journal, id),
            ["drain", "deploy 2.0.0", "enable"],
            "{id}"
        );
    }
    let decisions = done["decisions"].as_array().unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d["reason"].as_str().unwrap().starts_with("no breach in")),
        "{done:#}"
    );
}

/// The deployer and the health check are granted their releases' targets,
/// not origins: an agent added to the inventory is released to and
/// verified by the next release, with no grant changed.
#[tokio::test]
async fn an_agent_added_to_the_inventory_is_reached_by_the_next_release() {
    let (d, mut agents, journal) = fleet(None, &[]).await;
    let first = ship(&d, "2.0.0", "SELECT 1;").await;
    wait_status(&d, &first, "succeeded").await;
    agents.push(agent("web-4", None, &journal).await);
    put_fleet(&d, &agents, &[]).await;
    let second = ship(&d, "3.0.0", "SELECT 1;").await;
    let done = wait_status(&d, &second, "succeeded").await;
    assert_eq!(versions(&agents), ["3.0.0"; 5], "{done:#}");
    assert_eq!(
        steps_of(&journal, "web-4"),
        ["drain", "deploy 3.0.0", "enable"]
    );
}

/// A fleet on 1.5.0, shipped by a first release, whose agents never get
/// healthy on 2.0.0.
async fn on_1_5_with_a_broken_2_0() -> (Daemon, Vec<(SocketAddr, Shared)>, Journal) {
    let (d, agents, journal) = fleet(Some("2.0.0"), &[]).await;
    let first = ship(&d, "1.5.0", "SELECT 1;").await;
    wait_status(&d, &first, "succeeded").await;
    assert_eq!(versions(&agents), ["1.5.0"; 4]);
    (d, agents, journal)
}

#[tokio::test]
async fn a_version_that_never_gets_healthy_is_rolled_back_through_the_agents() {
    let (d, agents, journal) = on_1_5_with_a_broken_2_0().await;

    let id = ship(
        &d,
        "2.0.0",
        "CREATE INDEX CONCURRENTLY idx ON users (email);",
    )
    .await;
    let done = wait_status(&d, &id, "rolled-back").await;
    assert_eq!(versions(&agents), ["1.5.0"; 4], "{done:#}");
    // The first batch went to 2.0.0, never became healthy, was never
    // enabled on it, and was put back; the last batch was never touched.
    let touched: Vec<&str> = ["web-0", "web-1", "web-2", "web-3"]
        .into_iter()
        .filter(|id| steps_of(&journal, id).len() > 3)
        .collect();
    assert!(
        !touched.is_empty() && touched.len() < 4,
        "{:?}",
        journal.entries()
    );
    for id in touched {
        assert_eq!(
            steps_of(&journal, id)[3..],
            ["drain", "deploy 2.0.0", "drain", "rollback 1.5.0", "enable"],
            "{id}"
        );
    }
    let reason = done["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not healthy on 2.0.0 within 400 ms"),
        "{done:#}"
    );
}

#[tokio::test]
async fn a_destructive_migration_stops_the_automatic_rollback_for_a_human() {
    let (d, agents, journal) = on_1_5_with_a_broken_2_0().await;

    let id = ship(&d, "2.0.0", "ALTER TABLE users DROP COLUMN email;").await;
    let blocked = wait_status(&d, &id, "blocked").await;
    assert_eq!(blocked["forward_only"], true);
    let outcome = blocked["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.contains("a precheck marked the release forward-only"),
        "{blocked:#}"
    );
    // The broken batch is left drained on 2.0.0 for a human to decide.
    let stuck: Vec<String> = agents
        .iter()
        .map(|(_, a)| a.lock().unwrap())
        .filter(|a| a.version == "2.0.0")
        .map(|a| {
            assert!(
                a.drained,
                "{} serves a version that never got healthy",
                a.id
            );
            a.id.to_string()
        })
        .collect();
    assert!(!stuck.is_empty(), "{:?}", journal.entries());
    assert!(
        !journal.entries().iter().any(|e| e.contains("rollback")),
        "{:?}",
        journal.entries()
    );
}

#[tokio::test]
async fn a_blue_green_release_deploys_the_idle_group_and_shifts_traffic_by_steps() {
    let (d, agents, journal) = fleet(None, &["blue", "green"]).await;
    let shifts = Journal::default();
    let r = router(shifts.clone()).await;
    d.grant("traffic", json!({"allowed_hosts": [origin(r)]}))
        .await;
    apply_flow(&d, &blue_green(&format!("{}/router", origin(r)))).await;
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases")
                .json(&json!({"application": "shop", "environment": "prod",
                              "version": "2.0.0", "flow": "switch"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let done = wait_status(&d, body["id"].as_str().unwrap(), "succeeded").await;

    // Green (web-1, web-3) was idle and got 2.0.0; blue was not touched.
    assert_eq!(versions(&agents), ["1.0.0", "2.0.0", "1.0.0", "2.0.0"]);
    assert!(steps_of(&journal, "web-0").is_empty());
    let percents: Vec<Value> = shifts
        .entries()
        .iter()
        .map(|w| {
            let w: Value = serde_json::from_str(w).unwrap();
            w.as_array()
                .unwrap()
                .iter()
                .find(|g| g["group"] == "green")
                .map(|g| g["percent"].clone())
                .unwrap_or(Value::Null)
        })
        .collect();
    assert_eq!(percents, [json!(10), json!(50), json!(100)], "{done:#}");
}

#[tokio::test]
async fn an_error_rate_past_the_hard_threshold_rolls_the_release_back() {
    let (d, agents, _journal) = on_1_5_with_a_broken_2_0().await;
    for (_, a) in &agents {
        let mut a = a.lock().unwrap();
        a.faulty = None;
        a.erroring = Some("2.0.0".into());
    }
    apply_flow(&d, &watched()).await;
    let (status, body) = d
        .send(
            d.request(reqwest::Method::POST, "/api/v1/releases")
                .json(&json!({"application": "shop", "environment": "prod",
                              "version": "2.0.0", "flow": "watched"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let done = wait_status(&d, body["id"].as_str().unwrap(), "rolled-back").await;
    assert_eq!(versions(&agents), ["1.5.0"; 4], "{done:#}");
    let reason = done["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("hard breach: metrics@1.0.0 failed at stage rollout batch 1"),
        "{done:#}"
    );
    let evidence = &done["decisions"][0]["inputs"][0];
    assert_eq!(
        evidence["summary"], "hard breach: error_ratio 0.2 > 0.05",
        "{done:#}"
    );
    assert_eq!(evidence["metrics"]["error_ratio"], 0.2);
}
