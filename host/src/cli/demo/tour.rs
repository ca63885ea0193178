//! The release part of the demo: the demo fleet behind the built-in router
//! under steady traffic, the bundled plugins uploaded and granted, and two
//! releases through a precheck, a baked canary, an approval gate and rolling
//! batches, every event printed as the daemon streams it.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::{Api, describe, truncate};
use crate::api::release_model::{EventDetailDto, EventDto};
use crate::fleet::{Fleet, FleetOptions, Load, LoadOptions, LoadReport, Router};

/// The bundled plugins the demo's flow uses, embedded in the binary, by the
/// name the flow gives them.
pub(super) const BUNDLED: [(&str, &[u8]); 5] = [
    (
        "sql",
        include_bytes!(concat!(
            env!("GREENLIGHT_PLUGINS_DIR"),
            "/sql_precheck.wasm"
        )),
    ),
    (
        "deployer",
        include_bytes!(concat!(
            env!("GREENLIGHT_PLUGINS_DIR"),
            "/http_deployer.wasm"
        )),
    ),
    (
        "health",
        include_bytes!(concat!(env!("GREENLIGHT_PLUGINS_DIR"), "/http_health.wasm")),
    ),
    (
        "metrics",
        include_bytes!(concat!(
            env!("GREENLIGHT_PLUGINS_DIR"),
            "/metrics_threshold.wasm"
        )),
    ),
    (
        "policy",
        include_bytes!(concat!(
            env!("GREENLIGHT_PLUGINS_DIR"),
            "/threshold_policy.wasm"
        )),
    ),
];

/// Requests the canary answers on the new version before its bake is
/// skipped: enough for its error ratio to mean something.
const CANARY_REQUESTS: u64 = 10;

/// The demo fleet, its router and the traffic through it.
pub struct DemoFleet {
    pub fleet: Fleet,
    pub router: Router,
    load: Load,
}

impl DemoFleet {
    /// Eight instances on 1.4.0 behind the built-in router, with a hundred
    /// requests a second flowing through it.
    pub async fn start() -> anyhow::Result<DemoFleet> {
        let fleet = Fleet::start(&FleetOptions {
            instances: 8,
            version: "1.4.0".into(),
            groups: Vec::new(),
            startup_ms: 200,
            work_ms: 2,
        })
        .await?;
        let router = Router::start(&fleet, "").await?;
        let load = Load::start(&LoadOptions {
            url: format!("http://{}/", router.addr),
            rate_per_s: 100,
            workers: 4,
            timeout_ms: 5_000,
        })?;
        Ok(DemoFleet {
            fleet,
            router,
            load,
        })
    }
}

/// The demo's flow: the SQL precheck, a canary of one instance baked ten
/// minutes and watched for its health and error ratio, an approval, then
/// rolling batches of a quarter of the fleet, each verified the same way.
fn demo_flow() -> String {
    let deployer = r#"{ plugin = "deployer", params = { health_interval_ms = "20" } }"#;
    let checks = r#"[
  { plugin = "health", params = { expect_body = "\"healthy\":true" } },
  { plugin = "metrics", params = { metrics = "error_ratio", "error_ratio.query" = "fleet_error_ratio", "error_ratio.soft" = "> 1%", "error_ratio.hard" = "> 5%" } },
]"#;
    format!(
        r#"name = "demo"
version = 1

[[stages]]
name = "prechecks"
kind = "precheck"
plugins = [{{ plugin = "sql" }}]

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {deployer}
count = 1
bake = "10m"
check_interval = "5m"
checks = {checks}
policy = {{ plugin = "policy" }}

[[stages]]
name = "go-ahead"
kind = "approval"
roles = ["release-manager"]
approvers = 1
starter_may_approve = true
expires_after = "1h"
on_expiry = "rollback"

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {deployer}
batch = "25%"
checks = {checks}
policy = {{ plugin = "policy" }}
"#
    )
}

/// Uploads and grants the bundled plugins, applies the flow and the
/// inventory.
async fn set_up(api: &Api, fleet: &DemoFleet) -> anyhow::Result<()> {
    for (name, bytes) in BUNDLED {
        api.upload(name, bytes).await?;
    }
    // A deployer makes at least five requests per target and one per
    // health poll; the checks one per target.
    let grant = json!({
        "allowed_hosts": fleet.fleet.origins(),
        "limits": {"deadline_ms": 30_000, "max_outbound_requests": 256}
    });
    for name in ["deployer", "health", "metrics"] {
        api.send(
            api.http
                .put(format!("{}/api/v1/plugins/{name}/grant", api.base))
                .json(&grant),
        )
        .await?;
    }
    api.send(
        api.http
            .post(format!("{}/api/v1/flows", api.base))
            .header("content-type", "application/toml")
            .body(demo_flow()),
    )
    .await?;
    api.send(
        api.http
            .put(format!("{}/api/v1/apps/shop/envs/prod", api.base))
            .json(&json!({ "targets": fleet.fleet.targets() })),
    )
    .await?;
    println!(
        "Bundled plugins uploaded (sql, deployer, health, metrics, policy) and granted the fleet; \
         flow `demo` applied; shop/prod has {} instances.",
        fleet.fleet.instances().len()
    );
    Ok(())
}

/// What happens while a release waits for its gate.
struct Gate {
    /// When the demo approves the gate itself, if no one has.
    approve_at: Option<tokio::time::Instant>,
    wait: Duration,
    /// When the gate opened, and how long it stayed open.
    opened: Option<Instant>,
    waited: Duration,
}

/// Starts a release and prints its events as the daemon streams them; it
/// lets the canary take real traffic before moving the clock past its
/// bake, and approves the gate itself when no one has within the wait.
/// Returns the final status and how long the gate waited for an approval.
async fn run_release(
    api: &Api,
    fleet: &DemoFleet,
    version: &str,
    approve_wait: Duration,
) -> anyhow::Result<(String, Duration)> {
    let (mut stream, id) = api
        .start_watched(
            json!({"application": "shop", "environment": "prod", "version": version, "flow": "demo",
                   "artifacts": [{"kind": "sql-migration", "name": "0042_add_index.sql",
                                  "content": "CREATE INDEX CONCURRENTLY orders_by_day ON orders (day);"}]}),
        )
        .await?;
    println!("\nRelease {id}: shop {version} to prod");
    let mut gate = Gate {
        approve_at: None,
        wait: approve_wait,
        opened: None,
        waited: Duration::ZERO,
    };
    let mut parser = crate::cli::sse::Parser::default();
    // The canary's bake runs beside the event stream: the policy may roll
    // the canary back before it has answered enough requests.
    let mut baking: Option<std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>> = None;
    loop {
        let wait = gate
            .approve_at
            .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or(Duration::from_secs(60));
        let next = tokio::select! {
            chunk = tokio::time::timeout(wait, stream.chunk()) => chunk,
            done = async { baking.as_mut().expect("guarded by the condition").await },
                if baking.is_some() => {
                baking = None;
                done?;
                continue;
            }
        };
        let chunk = match next {
            Ok(chunk) => chunk?.context("the event stream ended")?,
            Err(_) if gate.approve_at.is_some() => {
                gate.approve_at = None;
                api.post(
                    &format!("/api/v1/releases/{id}/approve"),
                    json!({"comment": "no one approved in time; the demo approves the canary it watched"}),
                )
                .await?;
                continue;
            }
            Err(_) => anyhow::bail!("no release event for a minute"),
        };
        for message in parser.push(&chunk) {
            let event: EventDto = serde_json::from_str(&message.data)?;
            if event.release != id {
                continue;
            }
            let kind = event.kind.as_str();
            println!("  {kind:<22} {}", truncate(&describe(&event.detail), 100));
            match kind {
                "bake-started" => baking = Some(Box::pin(bake(api, fleet, version))),
                "gate-opened" => {
                    println!(
                        "  {:<22} approve it in the web UI at {}/ (admin token {}); \
                         the demo approves it itself in {} s",
                        "",
                        api.base,
                        api.token,
                        gate.wait.as_secs()
                    );
                    gate.approve_at = Some(tokio::time::Instant::now() + gate.wait);
                    gate.opened = Some(Instant::now());
                }
                "approved" | "rejected" => {
                    gate.approve_at = None;
                    gate.waited += gate
                        .opened
                        .take()
                        .map(|at| at.elapsed())
                        .unwrap_or_default();
                }
                "rollback-batch-started" => baking = None,
                "finished" => {
                    let status = match &event.detail {
                        EventDetailDto::Finished { status, .. } => status.clone(),
                        _ => "?".to_string(),
                    };
                    return Ok((status, gate.waited));
                }
                _ => {}
            }
        }
    }
}

/// Lets the canary answer real traffic on `version`, then moves the release
/// clock past its bake, so its checks judge what it really served.
async fn bake(api: &Api, fleet: &DemoFleet, version: &str) -> anyhow::Result<()> {
    let before = fleet.load.report();
    let answered =
        |r: &LoadReport| r.by_version.get(version).copied().unwrap_or(0) + r.failed - before.failed;
    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        fleet.load.until(|r| answered(r) >= CANARY_REQUESTS),
    )
    .await
    .context("the canary took no traffic")?;
    println!(
        "  {:<22} (the canary answered {} requests on {version}, {} failed; the demo moves the \
         release clock 10 minutes on)",
        "",
        answered(&seen),
        seen.failed - before.failed
    );
    api.post("/api/v1/clock", json!({"advance_ms": 600_000}))
        .await?;
    Ok(())
}

/// Two releases of the demo fleet: 1.5.0 ships past the approval gate;
/// 1.6.0-faulty fails one request in ten on its canary, and the rollback
/// policy rolls it back. Each prints its figures.
pub async fn release_tour(
    api: &Api,
    fleet: &DemoFleet,
    approve_wait: Duration,
) -> anyhow::Result<()> {
    println!("\n--- Releases ---");
    set_up(api, fleet).await?;
    let mut outcomes = Vec::new();
    for version in ["1.5.0", "1.6.0-faulty"] {
        let before = fleet.load.report();
        let started = Instant::now();
        let (status, gate) = run_release(api, fleet, version, approve_wait).await?;
        let total = started.elapsed();
        let after = fleet.load.report();
        let waiting = fleet.fleet.busy_within(started, Instant::now());
        println!(
            "  {version} {status} in {} ms: {} ms waiting on the fleet (instances starting, agents, \
             health, metrics), {} ms on the approval, {} ms in Greenlight; through the router \
             meanwhile {} requests served, {} failed",
            total.as_millis(),
            waiting.as_millis(),
            gate.as_millis(),
            total.saturating_sub(waiting + gate).as_millis(),
            after.served - before.served,
            after.failed - before.failed
        );
        outcomes.push(status);
    }
    let versions: Vec<String> = fleet
        .fleet
        .snapshots()
        .into_iter()
        .map(|s| s.version)
        .collect();
    println!(
        "\n1.5.0 {}; 1.6.0-faulty {}. The fleet serves {}.",
        outcomes[0],
        outcomes[1],
        versions.join(", ")
    );
    if outcomes != ["succeeded", "rolled-back"] {
        anyhow::bail!("the demo releases did not end as expected: {outcomes:?}");
    }
    Ok(())
}
