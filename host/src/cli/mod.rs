//! The `greenlight` command line: the daemon, and a client of its API.

mod agent;
mod analysis;
mod client;
mod demo;
mod flow;
mod freeze;
mod inventory;
mod kube;
mod output;
mod plugin;
mod release;
mod schedule;
mod secrets;
mod serve;
mod sse;
mod template;
mod token;

use clap::{Parser, Subcommand};

/// Greenlight: releases whose every decision point is a sandboxed WebAssembly plugin.
#[derive(Debug, Parser)]
#[command(name = "greenlight", version, about)]
pub struct Cli {
    /// Where the daemon is, how to sign in and how to print: accepted before
    /// the command, between a group and its command, or after it, so that
    /// scripts can put them wherever they read best.
    #[command(flatten)]
    server: client::ServerArgs,
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
    /// Replay a flow's analysis over what past releases recorded.
    #[command(subcommand)]
    Analysis(analysis::AnalysisCommand),
    /// Describe applications, their environments and targets.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// Start, follow, approve and roll back releases.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Add, list, enable, disable and remove release schedules.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Add, list and remove freeze windows, when no release starts.
    #[command(subcommand)]
    Freeze(freeze::FreezeCommand),
    /// Create, list and revoke API tokens (admins).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Read the audit log.
    Audit(token::AuditArgs),
    /// Rotate the key that seals plugin secrets at rest (daemon stopped).
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Start a daemon on a temporary data directory, run an example plugin
    /// through the sandbox, then release a demo fleet under traffic with the
    /// bundled plugins.
    Demo(demo::DemoArgs),
    /// Run the host agent beside a service, or check its configuration.
    Agent(agent::AgentArgs),
    /// Run the small service the agent's demo and tests release.
    #[command(hide = true)]
    SampleService(agent::SampleArgs),
}

/// Parses the command line and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let server = &cli.server;
    // `serve` and `demo` run a daemon of their own, so they have no use for
    // the connection options; the clients are handed them.
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Plugin(cmd) => plugin::run(cmd, server).await,
        Command::Flow(cmd) => flow::run(cmd, server).await,
        Command::Analysis(cmd) => analysis::run(cmd, server).await,
        Command::Inventory(cmd) => inventory::run(cmd, server).await,
        Command::Release(cmd) => release::run(cmd, server).await,
        Command::Schedule(cmd) => schedule::run(cmd, server).await,
        Command::Freeze(cmd) => freeze::run(cmd, server).await,
        Command::Token(cmd) => token::run(cmd, server).await,
        Command::Audit(args) => token::audit(args, server).await,
        Command::Secrets(cmd) => secrets::run(cmd),
        Command::Demo(args) => demo::demo(args).await,
        Command::Agent(args) => agent::agent(args).await,
        Command::SampleService(args) => agent::sample(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    const URL: &str = "http://daemon.example:9000";

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?} is refused: {e}"))
    }

    /// `greenlight` followed by `before`, the connection options, then `after`.
    fn with_options<'a>(before: &[&'a str], after: &[&'a str]) -> Vec<&'a str> {
        let options = ["--url", URL, "--token", "secret", "--json"];
        std::iter::once("greenlight")
            .chain(before.iter().copied())
            .chain(options)
            .chain(after.iter().copied())
            .collect()
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Clap checks, among other things, that no command defines an
        // option whose name a global option already takes.
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_options_are_accepted_before_between_and_after_the_command() {
        let positions: [(&[&str], &[&str]); 3] = [
            (&[], &["release", "list", "--app", "shop"]),
            (&["release"], &["list", "--app", "shop"]),
            (&["release", "list", "--app", "shop"], &[]),
        ];
        for (before, after) in positions {
            let args = with_options(before, after);
            let cli = parse(&args);
            assert_eq!(cli.server.server, URL, "{args:?}");
            assert_eq!(cli.server.token.as_deref(), Some("secret"), "{args:?}");
            assert!(cli.server.json, "{args:?}");
            // The command itself is read the same wherever the options are.
            match cli.command {
                Command::Release(release::ReleaseCommand::List { application, .. }) => {
                    assert_eq!(application.as_deref(), Some("shop"), "{args:?}");
                }
                other => panic!("{args:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn options_given_at_different_levels_are_all_kept() {
        let cli = parse(&[
            "greenlight",
            "--server",
            URL,
            "token",
            "--token-file",
            "/run/token",
            "list",
            "--json",
        ]);
        assert_eq!(cli.server.server, URL);
        assert_eq!(
            cli.server.token_file.as_deref(),
            Some(std::path::Path::new("/run/token"))
        );
        assert!(cli.server.json);
        assert!(matches!(
            cli.command,
            Command::Token(token::TokenCommand::List)
        ));
    }

    #[test]
    fn commands_without_a_group_and_local_commands_take_them_too() {
        let cli = parse(&with_options(&[], &["audit", "--limit", "3"]));
        assert_eq!(cli.server.server, URL);
        assert!(matches!(cli.command, Command::Audit(_)));

        // `plugin test` runs without a daemon; `--json` still chooses how
        // it prints, in either position.
        for args in [
            ["greenlight", "--json", "plugin", "test", "probe.wasm"],
            ["greenlight", "plugin", "test", "probe.wasm", "--json"],
        ] {
            let cli = parse(&args);
            assert!(cli.server.json, "{args:?}");
            assert!(matches!(
                cli.command,
                Command::Plugin(plugin::PluginCommand::Test { .. })
            ));
        }
    }

    #[test]
    fn an_option_without_its_value_is_refused_by_name() {
        let err = Cli::try_parse_from(["greenlight", "release", "list", "--url"]).unwrap_err();
        assert!(err.to_string().contains("--url"), "{err}");
        let err = Cli::try_parse_from(["greenlight", "--token"]).unwrap_err();
        assert!(err.to_string().contains("--token"), "{err}");
    }
}
