//! The `greenlight` command line: the daemon, and a client of its API.

mod client;
mod demo;
mod flow;
mod inventory;
mod output;
mod plugin;
mod release;
mod schedule;
mod serve;
mod sse;
mod token;

use clap::{Parser, Subcommand};

/// Greenlight: releases whose every decision point is a sandboxed WebAssembly plugin.
#[derive(Debug, Parser)]
#[command(name = "greenlight", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(serve::ServeArgs),
    /// Upload, list, grant and test plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Apply, list and show flows.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// Describe applications, their environments and targets.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// Start, follow, approve and roll back releases.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Add, list, enable, disable and remove release schedules.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Create, list and revoke API tokens (admins).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Read the audit log.
    Audit(token::AuditArgs),
    /// Start a daemon on a temporary data directory, run an example plugin
    /// through the sandbox, then release a demo fleet under traffic with the
    /// bundled plugins.
    Demo(demo::DemoArgs),
}

/// Parses the command line and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Plugin(cmd) => plugin::run(cmd).await,
        Command::Flow(cmd) => flow::run(cmd).await,
        Command::Inventory(cmd) => inventory::run(cmd).await,
        Command::Release(cmd) => release::run(cmd).await,
        Command::Schedule(cmd) => schedule::run(cmd).await,
        Command::Token(cmd) => token::run(cmd).await,
        Command::Audit(args) => token::audit(args).await,
        Command::Demo(args) => demo::demo(args).await,
    }
}
