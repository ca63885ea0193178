//! `greenlight serve` and `greenlight demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::Config;
use crate::server::Daemon;

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
