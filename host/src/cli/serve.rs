//! `greenlight serve` and `greenlight demo`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    let mut config = load_config(args.config.as_deref(), args.data)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let daemon = Daemon::start(config).await?;
    // Whoever reads the address may stop the daemon at once, so the signal
    // handlers are in place before it is printed.
    let signal = shutdown_signal();
    // Tests and scripts read the bound address from this line.
    println!("listening on http://{}", daemon.addr);
    let stop = daemon.shutdown_handle();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("Shutting down.");
        let _ = stop.send(true);
    });
    daemon.wait().await
}

/// The config file's configuration, or the defaults without one, with the
/// data directory given on the command line taking precedence.
pub(super) fn load_config(file: Option<&Path>, data: Option<PathBuf>) -> anyhow::Result<Config> {
    let mut config = match file {
        Some(path) => Config::from_file(path).map_err(anyhow::Error::msg)?,
        None => Config::default(),
    };
    if let Some(data) = data {
        config.data_dir = data;
    }
    Ok(config)
}

/// Resolves on Ctrl-C or SIGTERM. On Unix the handlers are installed by the
/// call, not when the future is first polled; a handler that cannot be
/// installed never fires.
pub(super) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn received(signal: Option<Signal>) {
            match signal {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            tokio::select! {
                _ = received(interrupt) => {},
                _ = received(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
