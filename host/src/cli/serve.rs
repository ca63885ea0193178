//! `greenlight serve` and `greenlight demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use crate::config::Config;
use crate::server::{ADMIN_TOKEN_FILE, Daemon};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The data directory (store, compiled artifacts, first admin token).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A TOML config file; flags take precedence over it.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::init("info");
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(anyhow::Error::msg)?,
        None => Config::default(),
    };
    if let Some(data) = args.data {
        config.data_dir = data;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let daemon = Daemon::start(config).await?;
    // Tests and scripts read the bound address from this line.
    println!("listening on http://{}", daemon.addr);
    let stop = daemon.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutting down.");
        let _ = stop.send(true);
    });
    daemon.wait().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the daemon running afterwards (Ctrl-C to stop).
    #[arg(long)]
    keep: bool,
}

/// The example check plugin bundled with the binary.
const PROBE: &[u8] = include_bytes!(concat!(
    env!("GREENLIGHT_PLUGINS_DIR"),
    "/fixture_check.wasm"
));

/// Starts a daemon on a scratch directory and shows the plugin sandbox at
/// work through the real API: upload, grant, healthy calls, and hostile ones
/// stopped by the sandbox.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::telemetry::init("error");
    let scratch = tempfile::tempdir()?;
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: scratch.path().to_path_buf(),
        ..Config::default()
    };
    let daemon = Daemon::start(config).await?;
    let base = format!("http://{}", daemon.addr);
    let token = std::fs::read_to_string(scratch.path().join(ADMIN_TOKEN_FILE))?;
    let http = reqwest::Client::new();
    let service = start_demo_service().await?;
    println!("Greenlight daemon on {base}; a demo service on http://{service}");

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
    if args.keep {
        println!(
            "Daemon left running on {base}; admin token: {}",
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

/// A loopback HTTP service that answers its health endpoint.
async fn start_demo_service() -> anyhow::Result<SocketAddr> {
    let app =
        axum::Router::new().route("/health", axum::routing::get(|| async { "ok: shop 1.4.0" }));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}
