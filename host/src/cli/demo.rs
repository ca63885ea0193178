//! `greenlight demo`: a daemon on a scratch directory, shown at work through
//! its real API: the plugin sandbox stopping hostile plugins, then two
//! releases of a demo fleet, one that ships and one that rolls itself back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::{Value, json};

use crate::config::Config;
use crate::server::{ADMIN_TOKEN_FILE, Daemon};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the daemon running afterwards (Ctrl-C to stop).
    #[arg(long)]
    keep: bool,
}

/// The example plugins bundled with the binary.
const PROBE: &[u8] = include_bytes!(concat!(
    env!("GREENLIGHT_PLUGINS_DIR"),
    "/fixture_check.wasm"
));
const DEPLOYER: &[u8] = include_bytes!(concat!(
    env!("GREENLIGHT_PLUGINS_DIR"),
    "/fixture_deployer.wasm"
));
const PRECHECK: &[u8] = include_bytes!(concat!(
    env!("GREENLIGHT_PLUGINS_DIR"),
    "/fixture_precheck.wasm"
));

/// Starts a daemon on a scratch directory and shows the plugin sandbox at
/// work through the real API: upload, grant, healthy calls, and hostile ones
/// stopped by the sandbox.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::telemetry::init("error");
    let scratch = tempfile::tempdir()?;
    // A manual release clock lets the demo skip bake periods on request.
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: scratch.path().to_path_buf(),
        manual_clock_ms: Some(now),
        ..Config::default()
    };
    let daemon = Daemon::start(config).await?;
    let base = format!("http://{}", daemon.addr);
    let token = std::fs::read_to_string(scratch.path().join(ADMIN_TOKEN_FILE))?;
    let http = reqwest::Client::new();
    let fleet = Fleet::default();
    let service = start_demo_service(fleet.clone()).await?;
    println!("Greenlight daemon on {base}; a demo service on http://{service}");
    println!(
        "Web UI: {base}/ (sign in with the admin token {}; add --keep to browse it afterwards)",
        token.trim()
    );

    let up: Value = http
        .post(format!("{base}/api/v1/plugins?name=probe&version=1.0.0"))
        .bearer_auth(token.trim())
        .body(PROBE.to_vec())
        .send()
        .await?
        .json()
        .await?;
    println!(
        "Uploaded probe@1.0.0: a {} plugin, {} bytes, {}",
        up["plugin"]["kind"].as_str().unwrap_or("?"),
        up["plugin"]["size_bytes"],
        up["plugin"]["digest"].as_str().unwrap_or("?")
    );
    let grant = json!({
        "allowed_hosts": [format!("http://{service}")],
        "config": {"greeting": "hello"},
        "secrets": {"token": "s3cret"},
        "limits": {"deadline_ms": 1000, "memory_mib": 32}
    });
    http.put(format!("{base}/api/v1/plugins/probe/grant"))
        .bearer_auth(token.trim())
        .json(&grant)
        .send()
        .await?
        .error_for_status()
        .context("setting the grant")?;
    println!("Granted: http://{service}, one config value, one secret, 1 s, 32 MiB.\n");

    let denied = SocketAddr::from(([127, 0, 0, 1], service.port().wrapping_add(1).max(1)));
    let cases = [
        ("healthy check", json!({"mode": "pass"})),
        (
            "HTTP to the granted service",
            json!({"mode": "http-get", "url": format!("http://{service}/health")}),
        ),
        (
            "HTTP to a host not granted",
            json!({"mode": "http-get", "url": format!("http://{denied}/")}),
        ),
        ("infinite loop", json!({"mode": "loop"})),
        ("memory bomb", json!({"mode": "membomb"})),
        ("panic", json!({"mode": "panic"})),
        ("read /etc/hostname", json!({"mode": "file"})),
    ];
    println!("{:<30} {:<10} RESULT", "CASE", "MS");
    for (label, params) in cases {
        let body = json!({
            "context": {"application": "shop", "environment": "beta", "version": "1.4.0", "parameters": params},
            "targets": [{"id": "web-1", "address": service.to_string()}, {"id": "web-2", "address": service.to_string()}]
        });
        let r: Value = http
            .post(format!("{base}/api/v1/plugins/probe/latest/invoke"))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let result = if r["status"] == "ok" {
            let v = &r["output"]["verdict"];
            format!(
                "{}: {}",
                v["status"].as_str().unwrap_or("?"),
                v["summary"].as_str().unwrap_or("")
            )
        } else {
            format!(
                "{}: {}",
                r["error"]["code"].as_str().unwrap_or("?"),
                r["error"]["message"].as_str().unwrap_or("")
            )
        };
        let ms = r["duration_ms"].as_f64().unwrap_or(0.0);
        println!("{label:<30} {ms:<10.1} {}", truncate(&result, 110));
    }
    println!(
        "\nThe daemon kept serving throughout: {}",
        http.get(format!("{base}/healthz"))
            .send()
            .await?
            .text()
            .await?
    );
    let api = Api {
        http: http.clone(),
        base: base.clone(),
        token: token.trim().to_string(),
    };
    release_tour(&api, service, &fleet).await?;
    if args.keep {
        println!(
            "Daemon left running; open the web UI at {base}/ and sign in with the admin token {} \
             (Ctrl-C to stop)",
            token.trim()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    daemon.stop().await
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// What the demo fleet has seen, and the verdicts its checks will give.
#[derive(Clone, Default)]
struct Fleet {
    calls: Arc<Mutex<Vec<String>>>,
    verdicts: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

/// A loopback service standing in for a fleet's agents and its metrics:
/// its health endpoint, the deployer's reports, and check verdicts.
async fn start_demo_service(fleet: Fleet) -> anyhow::Result<SocketAddr> {
    use axum::extract::{Path, Query};
    let calls = fleet.calls.clone();
    let verdicts = fleet.verdicts.clone();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok: shop 1.4.0" }))
        .route(
            "/calls/{action}",
            axum::routing::get(
                move |Path(action): Path<String>, Query(q): Query<HashMap<String, String>>| {
                    let calls = calls.clone();
                    async move {
                        let targets = q.get("targets").cloned().unwrap_or_default();
                        if let Ok(mut calls) = calls.lock() {
                            calls.push(format!("{action} {targets}"));
                        }
                        "ok"
                    }
                },
            ),
        )
        .route(
            "/verdict",
            axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
                let verdicts = verdicts.clone();
                async move {
                    let stage = q.get("stage").cloned().unwrap_or_default();
                    let mut verdicts = verdicts.lock().map_err(|_| "poisoned".to_string())?;
                    let queue = verdicts.entry(stage).or_default();
                    Ok::<String, String>(if queue.is_empty() {
                        "pass error_rate 0.4%, p99 180 ms".to_string()
                    } else {
                        queue.remove(0)
                    })
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// The daemon's API, as the demo uses it.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!("{status}: {}", body["message"].as_str().unwrap_or("?"));
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/plugins?name={name}&version=1.0.0", self.base);
        self.send(self.http.post(url).body(bytes.to_vec())).await?;
        Ok(())
    }
}

/// The demo's flow: a precheck, a canary baked ten minutes, an approval,
/// then rolling batches of a quarter of the fleet, each verified.
fn demo_flow(service: SocketAddr) -> String {
    let deployer =
        format!(r#"{{ plugin = "agent", params = {{ record-url = "http://{service}/calls" }} }}"#);
    let checks = format!(
        r#"[{{ plugin = "probe", params = {{ mode = "remote", url = "http://{service}/verdict" }} }}]"#
    );
    format!(
        r#"name = "demo"
version = 1

[[stages]]
name = "prechecks"
kind = "precheck"
plugins = [{{ plugin = "lint" }}]

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = {deployer}
count = 1
bake = "10m"
check_interval = "5m"
checks = {checks}

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
"#
    )
}

/// One line about an event, from its journaled fields.
fn describe(kind: &str, detail: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    match kind {
        "precheck-done" => format!(
            "{} {}: {}",
            text(&detail["check"]),
            text(&detail["verdict"]["status"]),
            text(&detail["verdict"]["summary"])
        ),
        "deployed" | "rolled-back-batch" => {
            let ids: Vec<String> = detail["results"]
                .as_array()
                .map(|rs| rs.iter().map(|r| text(&r["target_id"])).collect())
                .unwrap_or_default();
            ids.join(", ")
        }
        "started" => format!("by {}", text(&detail["by"])),
        "deploy-started" | "rollback-batch-started" => format!(
            "attempt {}, idempotency key {}",
            detail["attempt"],
            text(&detail["key"])
        ),
        "verified" | "rollback-verified" => detail["verdicts"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        format!(
                            "{} {}",
                            text(&v["verdict"]["status"]),
                            text(&v["verdict"]["summary"])
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        "decided" => format!(
            "{}: {}",
            text(&detail["decision"]["ruling"]),
            text(&detail["decision"]["reason"])
        ),
        "approved" | "rejected" => {
            format!("by {}: {}", text(&detail["by"]), text(&detail["comment"]))
        }
        "finished" => format!("{}: {}", text(&detail["status"]), text(&detail["reason"])),
        "bake-started" => "the canary bakes for 10 minutes".to_string(),
        "gate-opened" => "waiting for a release manager".to_string(),
        _ => String::new(),
    }
}

/// Starts a release and prints its events as the daemon streams them,
/// moving the clock through bakes and approving gates as a release manager
/// would; returns the final status.
async fn run_release(api: &Api, version: &str) -> anyhow::Result<String> {
    let mut stream = api
        .http
        .get(format!("{}/api/v1/events", api.base))
        .bearer_auth(&api.token)
        .send()
        .await?
        .error_for_status()?;
    let started = api
        .post(
            "/api/v1/releases",
            json!({"application": "shop", "environment": "prod", "version": version, "flow": "demo",
                   "artifacts": [{"kind": "sql-migration", "name": "0042_add_index.sql",
                                  "content": "CREATE INDEX CONCURRENTLY orders_by_day ON orders (day);"}]}),
        )
        .await?;
    let id = started["id"]
        .as_str()
        .context("the release has no id")?
        .to_string();
    println!("\nRelease {id}: shop {version} to prod");
    let mut parser = super::sse::Parser::default();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(60), stream.chunk())
            .await
            .context("no release event for a minute")??
            .context("the event stream ended")?;
        for message in parser.push(&chunk) {
            let event: Value = serde_json::from_str(&message.data)?;
            if event["release"] != id.as_str() {
                continue;
            }
            let kind = event["kind"].as_str().unwrap_or("?");
            println!(
                "  {kind:<22} {}",
                truncate(&describe(kind, &event["detail"]), 100)
            );
            match kind {
                "bake-started" => {
                    println!(
                        "  {:<22} (the demo moves the release clock 10 minutes on)",
                        ""
                    );
                    api.post("/api/v1/clock", json!({"advance_ms": 600_000}))
                        .await?;
                }
                "gate-opened" => {
                    api.post(
                        &format!("/api/v1/releases/{id}/approve"),
                        json!({"comment": "canary metrics look healthy"}),
                    )
                    .await?;
                }
                "finished" => {
                    return Ok(event["detail"]["status"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string());
                }
                _ => {}
            }
        }
    }
}

/// Two releases of a demo fleet of eight: one ships, one breaches an error
/// budget in its second batch and rolls itself back.
async fn release_tour(api: &Api, service: SocketAddr, fleet: &Fleet) -> anyhow::Result<()> {
    println!("\n--- Releases ---");
    api.upload("agent", DEPLOYER).await?;
    api.upload("lint", PRECHECK).await?;
    let grant = json!({"allowed_hosts": [format!("http://{service}")]});
    for plugin in ["agent", "probe"] {
        api.send(
            api.http
                .put(format!("{}/api/v1/plugins/{plugin}/grant", api.base))
                .json(&grant),
        )
        .await?;
    }
    api.send(
        api.http
            .post(format!("{}/api/v1/flows", api.base))
            .header("content-type", "application/toml")
            .body(demo_flow(service)),
    )
    .await?;
    let targets: Vec<Value> = (1..=8)
        .map(|i| json!({"id": format!("web-{i}"), "address": format!("10.0.0.{i}:8080")}))
        .collect();
    api.send(
        api.http
            .put(format!("{}/api/v1/apps/shop/envs/prod", api.base))
            .json(&json!({ "targets": targets })),
    )
    .await?;
    println!("Flow `demo` applied; shop/prod has 8 targets.");

    let first = run_release(api, "1.5.0").await?;
    if let Ok(mut verdicts) = fleet.verdicts.lock() {
        verdicts.insert(
            "rollout".to_string(),
            vec![
                "pass error_rate 0.5%".to_string(),
                "fail error_rate 7.2% > 5% on web-5".to_string(),
            ],
        );
    }
    let second = run_release(api, "1.6.0").await?;
    let calls = fleet.calls.lock().map(|c| c.len()).unwrap_or(0);
    println!(
        "\n1.5.0 {first}; 1.6.0 {second}. The fleet's agents saw {calls} deploy and rollback calls."
    );
    if first != "succeeded" || second != "rolled-back" {
        anyhow::bail!("the demo releases did not end as expected: {first}, {second}");
    }
    Ok(())
}
