//! API reads under load: `GET /api/v1/releases/{id}` from concurrent
//! clients, first while 50 releases wait at an approval gate (the unloaded
//! baseline), then while the same 50 run rolling batches through real
//! plugins. Both phases run in one process against one daemon, so machine
//! noise hits them alike. Prints p50, p99 and requests per second for each,
//! and the ratio of the loaded p99 to the baseline p99 (target ≤ 3), and how
//! many batches the releases deployed meanwhile. `GL_ENGINE_NICE` sets the
//! release threads' nice value for the run (default: the daemon's default),
//! to compare the API's latency with release work on equal footing.

use std::time::{Duration, Instant};

mod common;

use common::Api;
use serde_json::{Value, json};

const RELEASES: usize = 50;
const TARGETS: usize = 100;
const CLIENTS: usize = 8;
const PHASE: Duration = Duration::from_secs(4);

/// Load: `CLIENTS` tasks reading release states round-robin for `PHASE`.
async fn load(api: &Api, ids: &[String]) -> (Vec<Duration>, f64) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let http = api.http.clone();
        let token = api.token.clone();
        let urls: Vec<String> = ids
            .iter()
            .map(|id| api.url(&format!("/api/v1/releases/{id}")))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = c;
            while started.elapsed() < PHASE {
                let t = Instant::now();
                let ok = http
                    .get(&urls[i % urls.len()])
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map(|r| r.status().is_success());
                if matches!(ok, Ok(true)) {
                    latencies.push(t.elapsed());
                }
                i += CLIENTS;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (all, rps)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

/// Deploy calls made so far, from the daemon's metrics.
async fn deploys(api: &Api) -> anyhow::Result<u64> {
    let text = api
        .http
        .get(api.url("/metrics"))
        .bearer_auth(&api.token)
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("greenlight_plugin_invocations_total{plugin=\"agent\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

async fn run() -> anyhow::Result<()> {
    let engine_nice = match std::env::var("GL_ENGINE_NICE") {
        Ok(v) => Some(v.parse()?),
        Err(_) => None,
    };
    let (daemon, api, _scratch) = common::daemon(|config| {
        config.manual_clock_ms = Some(1_800_000_000_000);
        if let Some(nice) = engine_nice {
            config.engine_nice = nice;
        }
    })
    .await?;
    for (name, file) in [("agent", "fixture_deployer"), ("health", "fixture_check")] {
        api.upload(name, file).await?;
    }
    // Each check takes 50 ms of real time, so the releases stay busy for
    // the whole loaded phase.
    let flow = r#"
name = "busy"
version = 1

[[stages]]
name = "go-ahead"
kind = "approval"
starter_may_approve = true

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "agent" }
batch = 1
checks = [{ plugin = "health", params = { mode = "sleep", ms = "50" } }]
"#;
    api.apply_flow(flow.to_string()).await?;
    eprintln!("plugins and flow in place");
    let mut ids = Vec::new();
    for r in 0..RELEASES {
        let targets: Vec<Value> = (0..TARGETS)
            .map(|i| json!({"id": format!("t{i}"), "address": format!("10.0.{r}.{i}:80")}))
            .collect();
        api.send(
            api.http
                .put(api.url(&format!("/api/v1/apps/app{r}/envs/prod")))
                .json(&json!({ "targets": targets })),
        )
        .await?;
        let started = api
            .send(api.http.post(api.url("/api/v1/releases")).json(&json!({
                "application": format!("app{r}"), "environment": "prod",
                "version": "2.0.0", "flow": "busy"
            })))
            .await?;
        ids.push(started["id"].as_str().unwrap_or_default().to_string());
    }
    eprintln!("{RELEASES} releases at their gate; measuring the baseline");
    let (baseline, baseline_rps) = load(&api, &ids).await;
    for id in &ids {
        api.send(
            api.http
                .post(api.url(&format!("/api/v1/releases/{id}/approve")))
                .json(&json!({})),
        )
        .await?;
    }
    eprintln!("approved; measuring under load");
    let deploys_before = deploys(&api).await?;
    let (loaded, loaded_rps) = load(&api, &ids).await;
    let deployed = deploys(&api).await? - deploys_before;
    let mut still_running = 0;
    for id in &ids {
        let r = api
            .send(api.http.get(api.url(&format!("/api/v1/releases/{id}"))))
            .await?;
        if r["status"] == "running" {
            still_running += 1;
        }
    }
    println!(
        "API reads of a release's state, {CLIENTS} clients, {} s per phase",
        PHASE.as_secs()
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>9}",
        "phase", "p50 ms", "p99 ms", "req/s"
    );
    println!(
        "  {:<34} {:>9.2} {:>9.2} {:>9.0}",
        format!("{RELEASES} releases idle at a gate"),
        pct(&baseline, 0.5),
        pct(&baseline, 0.99),
        baseline_rps
    );
    println!(
        "  {:<34} {:>9.2} {:>9.2} {:>9.0}",
        format!("{RELEASES} releases running"),
        pct(&loaded, 0.5),
        pct(&loaded, 0.99),
        loaded_rps
    );
    println!(
        "  loaded p99 / baseline p99 = {:.2} (target <= 3); {still_running} of {RELEASES} still running at the end",
        pct(&loaded, 0.99) / pct(&baseline, 0.99)
    );
    println!(
        "  meanwhile the releases deployed {deployed} batches ({:.0}/s)",
        deployed as f64 / PHASE.as_secs_f64()
    );
    daemon.stop().await
}
