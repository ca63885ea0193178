//! What the durability promise costs: state-changing requests (plugin
//! uploads, grants, flow applies, inventory writes) answered once their
//! change and audit entry are durable, against the same requests answered
//! without waiting, by two daemons in one process, so machine noise hits
//! both alike. Each kind runs with one client (every request waits for a
//! flush of its own) and with eight concurrent clients (group commit shares
//! flushes). Prints writes per second for each and the ratio of durable to
//! not waiting.

use std::path::Path;
use std::time::Instant;

use greenlight::config::Config;
use greenlight::server::{ADMIN_TOKEN_FILE, Daemon};
use serde_json::json;

/// Requests per kind and mode.
const WRITES: usize = 240;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Upload,
    Grant,
    Flow,
    Inventory,
}

const KINDS: [Kind; 4] = [Kind::Upload, Kind::Grant, Kind::Flow, Kind::Inventory];

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    component: std::sync::Arc<Vec<u8>>,
}

impl Api {
    /// The `i`-th write of a kind, unique within the run (`run` tells runs
    /// apart), which must succeed.
    async fn write(&self, kind: Kind, run: usize, i: usize) -> anyhow::Result<()> {
        let url = |path: &str| format!("{}{path}", self.base);
        let request = match kind {
            Kind::Upload => self
                .http
                .post(url(&format!(
                    "/api/v1/plugins?name=check&version={run}.0.{i}"
                )))
                .body(self.component.as_ref().clone()),
            Kind::Grant => self
                .http
                .put(url("/api/v1/plugins/check/grant"))
                .json(&json!({"config": {"run": run.to_string(), "write": i.to_string()}})),
            Kind::Flow => self
                .http
                .post(url("/api/v1/flows"))
                .header("content-type", "application/toml")
                .body(format!(
                    "name = \"f{run}-{i}\"\nversion = 1\n\n[[stages]]\nname = \"go-ahead\"\nkind = \"approval\"\n"
                )),
            Kind::Inventory => self
                .http
                .put(url(&format!("/api/v1/apps/app{run}/envs/e{i}")))
                .json(&json!({"targets": [{"id": "t1", "address": "10.0.0.1:80"}]})),
        };
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "{kind:?}: {status}: {}",
            response.text().await?
        );
        Ok(())
    }
}

/// Makes `WRITES` writes of a kind with `clients` concurrent clients;
/// returns writes per second.
async fn measure(api: &Api, kind: Kind, run: usize, clients: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < WRITES {
                api.write(kind, run, i).await?;
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(WRITES as f64 / started.elapsed().as_secs_f64())
}

async fn daemon(answer_before_durable: bool) -> anyhow::Result<(Daemon, Api, tempfile::TempDir)> {
    let scratch = tempfile::tempdir()?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: scratch.path().to_path_buf(),
        answer_before_durable,
        ..Config::default()
    };
    let daemon = Daemon::start(config).await?;
    let path = Path::new(env!("GREENLIGHT_PLUGINS_DIR")).join("fixture_no_std_check.wasm");
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", daemon.addr),
        token: std::fs::read_to_string(scratch.path().join(ADMIN_TOKEN_FILE))?
            .trim()
            .to_string(),
        component: std::sync::Arc::new(std::fs::read(&path)?),
    };
    // The plugin the grants are for.
    api.write(Kind::Upload, 0, 0).await?;
    Ok((daemon, api, scratch))
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let (durable, durable_api, _a) = daemon(false).await?;
    let (eager, eager_api, _b) = daemon(true).await?;
    println!("State-changing requests per second, {WRITES} per cell");
    println!(
        "  {:<10} {:>8} {:>14} {:>14} {:>8}",
        "writes", "clients", "durable /s", "not waiting /s", "ratio"
    );
    let mut run = 1;
    for kind in KINDS {
        for clients in [1, 8] {
            // The two daemons take turns, twice each, so a slow moment of
            // the machine falls on both.
            let mut d = 0.0;
            let mut e = 0.0;
            for _ in 0..2 {
                d += measure(&durable_api, kind, run, clients).await?;
                e += measure(&eager_api, kind, run, clients).await?;
                run += 1;
            }
            println!(
                "  {:<10} {:>8} {:>14.0} {:>14.0} {:>8.2}",
                format!("{kind:?}").to_lowercase(),
                clients,
                d / 2.0,
                e / 2.0,
                d / e
            );
        }
    }
    durable.stop().await?;
    eager.stop().await
}
