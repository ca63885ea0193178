//! `greenlight agent`: the host agent a machine runs beside its service,
//! and `greenlight sample-service`, the small service its demo releases.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::agent::AgentConfig;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's configuration (TOML), to run it.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "check",
        conflicts_with = "check"
    )]
    config: Option<PathBuf>,
    /// Checks a configuration and says what the agent would do, then exits.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Where to serve.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How long each request works, in milliseconds.
    #[arg(long, default_value_t = 2)]
    work_ms: u64,
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    if let Some(path) = args.check {
        let config = AgentConfig::load(&path)?;
        println!("{} is valid. The agent:", path.display());
        for line in config.describe().lines() {
            println!("  {line}");
        }
        return Ok(());
    }
    let path = args
        .config
        .ok_or_else(|| anyhow::anyhow!("give --config FILE or --check FILE"))?;
    crate::telemetry::init("info");
    crate::agent::run(path, super::serve::shutdown_signal()).await
}

pub async fn sample(args: SampleArgs) -> anyhow::Result<()> {
    crate::fleet::serve_sample(args.listen, args.work_ms, super::serve::shutdown_signal()).await
}
