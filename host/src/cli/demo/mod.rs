//! `greenlight demo`: a daemon on a scratch directory, shown at work through
//! its real API: the plugin sandbox stopping hostile plugins, then two
//! releases of the demo fleet by the bundled plugins under steady traffic,
//! one that ships past an approval gate and a faulty one that rolls itself
//! back.

mod agents;
mod kubernetes;
mod tour;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::api::event_model::{CheckVerdictDto, EventDetailDto};
use crate::api::release_model::EventDto;
use crate::config::Config;
use crate::server::{ADMIN_TOKEN_FILE, Daemon};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the daemon running afterwards (Ctrl-C to stop).
    #[arg(long)]
    keep: bool,
    /// How long to wait for someone to approve the gate in the web UI
    /// before the demo approves it itself (default: 60 s on a terminal,
    /// 2 s otherwise).
    #[arg(long, value_name = "SECONDS")]
    approve_after: Option<u64>,
    /// Release a sample application on two local Kubernetes clusters
    /// instead of the demo fleet: the test bed in testbed/k8s, which
    /// `./dev setup test` builds.
    #[arg(long)]
    kubernetes: bool,
    /// The testbed/k8s directory of a Greenlight checkout, for
    /// --kubernetes.
    #[arg(long, value_name = "DIR", default_value = "testbed/k8s")]
    testbed: std::path::PathBuf,
    /// Release a service on six hosts through real `greenlight agent`
    /// processes behind nginx instead of the demo fleet.
    #[arg(long, conflicts_with = "kubernetes")]
    agents: bool,
}

/// The example check the sandbox tour runs, healthy and hostile.
const PROBE: &[u8] = include_bytes!(concat!(
    env!("GREENLIGHT_PLUGINS_DIR"),
    "/fixture_check.wasm"
));

/// Starts a daemon on a scratch directory and shows the plugin sandbox at
/// work through the real API: upload, grant, healthy calls, and hostile ones
/// stopped by the sandbox.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::telemetry::init("error");
    if args.kubernetes {
        return kubernetes::demo(&args.testbed, args.keep).await;
    }
    if args.agents {
        return agents::demo(args.keep).await;
    }
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
    let fleet = tour::DemoFleet::start().await?;
    let service = fleet.fleet.instances()[0].addr;
    println!(
        "Greenlight daemon on {base}; a demo fleet of {} instances behind a router on http://{}",
        fleet.fleet.instances().len(),
        fleet.router.addr
    );
    println!("{}", web_ui_line(&base, token.trim(), args.keep));

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
    let approve_after = args.approve_after.unwrap_or_else(|| {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            60
        } else {
            2
        }
    });
    tour::release_tour(&api, &fleet, std::time::Duration::from_secs(approve_after)).await?;
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

/// Starts a release and prints its events as the daemon streams them,
/// until it finishes; returns its final status.
async fn watch_release(api: &Api, version: &str, flow: &str) -> anyhow::Result<String> {
    let (mut stream, id) = api
        .start_watched(
            json!({"application": "shop", "environment": "prod", "version": version, "flow": flow}),
        )
        .await?;
    println!("\nRelease {id}: shop {version} to prod");
    let mut parser = crate::cli::sse::Parser::default();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(300), stream.chunk())
            .await
            .context("no release event for five minutes")??
            .context("the event stream ended")?;
        for message in parser.push(&chunk) {
            let event: EventDto = serde_json::from_str(&message.data)?;
            if event.release != id {
                continue;
            }
            let kind = event.kind.as_str();
            if let EventDetailDto::Finished { status, reason } = &event.detail {
                println!("  {kind:<22} {status}: {reason}");
                return Ok(status.clone());
            }
            println!("  {kind:<22} {}", truncate(&describe(&event.detail), 110));
        }
    }
}

/// Where the web UI is and how to sign in; how to keep it for browsing
/// unless it is kept already.
fn web_ui_line(base: &str, token: &str, keep: bool) -> String {
    let afterwards = if keep {
        "it stays up after the demo, until Ctrl-C"
    } else {
        "add --keep to browse it afterwards"
    };
    format!("Web UI: {base}/ (sign in with the admin token {token}; {afterwards})")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Starts a daemon on a scratch directory with the release clock real;
/// returns it, the directory (to keep while it runs) and its API signed in
/// as admin, having printed where it serves.
async fn scratch_daemon() -> anyhow::Result<(Daemon, tempfile::TempDir, Api)> {
    let scratch = tempfile::tempdir()?;
    let daemon = Daemon::start(Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: scratch.path().to_path_buf(),
        ..Config::default()
    })
    .await?;
    let base = format!("http://{}", daemon.addr);
    let token = std::fs::read_to_string(scratch.path().join(ADMIN_TOKEN_FILE))?;
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
        token: token.trim().to_string(),
    };
    println!(
        "Greenlight daemon on {base}; web UI at {base}/ (admin token {})",
        api.token
    );
    Ok((daemon, scratch, api))
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

    /// Opens the event stream, then starts a release (`body` as the API
    /// takes it), so that none of its events is missed; returns the stream
    /// and the release's id.
    async fn start_watched(&self, body: Value) -> anyhow::Result<(reqwest::Response, String)> {
        let stream = self
            .http
            .get(format!("{}/api/v1/events", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        let started = self.post("/api/v1/releases", body).await?;
        let id = started["id"]
            .as_str()
            .context("the release has no id")?
            .to_string();
        Ok((stream, id))
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/plugins?name={name}&version=1.0.0", self.base);
        self.send(self.http.post(url).body(bytes.to_vec())).await?;
        Ok(())
    }
}

/// One line about an event.
fn describe(detail: &EventDetailDto) -> String {
    use EventDetailDto as D;
    let verdicts = |vs: &[CheckVerdictDto]| {
        vs.iter()
            .map(|v| format!("{} {}", v.verdict.status, v.verdict.summary))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match detail {
        D::PrecheckDone { check, verdict, .. } => {
            format!("{check} {}: {}", verdict.status, verdict.summary)
        }
        D::Deployed { results, .. } | D::RolledBackBatch { results, .. } => results
            .iter()
            .map(|r| match r.ok {
                true => r.target_id.clone(),
                false => format!("{} failed", r.target_id),
            })
            .collect::<Vec<_>>()
            .join(", "),
        D::Started { by } => format!("by {by}"),
        D::DeployStarted { attempt, key, .. } | D::RollbackBatchStarted { attempt, key, .. } => {
            format!("attempt {attempt}, idempotency key {key}")
        }
        D::Verified { verdicts: vs, .. } | D::RollbackVerified { verdicts: vs, .. } => verdicts(vs),
        D::Decided { decision, .. } => format!("{}: {}", decision.ruling, decision.reason),
        D::Approved { by, comment, .. } | D::Rejected { by, comment, .. } => {
            format!("by {by}: {comment}")
        }
        D::Finished { status, reason } => format!("{status}: {reason}"),
        D::Progressed { note, .. } => note.clone(),
        D::DeployFailed { message, .. } => message.clone(),
        D::RollbackStarted { reason, .. } | D::Paused { reason, .. } => reason.clone(),
        D::BakeStarted { .. } => "the canary bakes for 10 minutes".to_string(),
        D::GateOpened { .. } => "waiting for a release manager".to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::web_ui_line;

    #[test]
    fn the_web_ui_line_suggests_keep_only_when_not_kept() {
        let plain = web_ui_line("http://127.0.0.1:1", "glt_x", false);
        assert!(plain.contains("add --keep"), "{plain}");
        let kept = web_ui_line("http://127.0.0.1:1", "glt_x", true);
        assert!(!kept.contains("--keep"), "{kept}");
        assert!(kept.contains("until Ctrl-C"), "{kept}");
    }
}
