//! `greenlight flow …`: apply, list and show flows.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::client::{Client, ServerArgs};
use crate::api::model::{AppliedFlowDto, FlowDto};

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Validate a flow file and store it as a new flow version.
    Apply {
        /// The flow file (TOML).
        file: PathBuf,
    },
    /// List the applied flows.
    List,
    /// Show a flow's versions and the source of the latest.
    Show { name: String },
}

pub async fn run(cmd: FlowCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        FlowCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let client = Client::new(server)?;
            let applied = client
                .fetch::<AppliedFlowDto>(
                    client
                        .post("/api/v1/flows")
                        .header("content-type", "application/toml")
                        .body(text),
                )
                .await?;
            client.print(&applied, |applied| {
                let what = if applied.created {
                    "Applied"
                } else {
                    "Already applied:"
                };
                println!("{what} {}@{}", applied.name, applied.version);
                for (i, stage) in applied.stages.iter().enumerate() {
                    println!("  {}. {} ({})", i + 1, stage.name, stage.kind);
                }
                for warning in &applied.warnings {
                    eprintln!("warning: {warning}");
                }
            })
        }
        FlowCommand::List => {
            let client = Client::new(server)?;
            let flows = client
                .fetch::<Vec<FlowDto>>(client.get("/api/v1/flows"))
                .await?;
            client.print(&flows, |flows| {
                if flows.is_empty() {
                    println!("No flows yet. Apply one with `greenlight flow apply FLOW.toml`.");
                    return;
                }
                println!("{:<24} {:>7}  APPLIED BY", "NAME", "VERSION");
                for f in flows {
                    println!("{:<24} {:>7}  {}", f.name, f.version, f.applied_by);
                }
            })
        }
        FlowCommand::Show { name } => {
            let client = Client::new(server)?;
            let versions = client
                .fetch::<Vec<FlowDto>>(client.get(&format!("/api/v1/flows/{name}")))
                .await?;
            client.print(&versions, |versions| {
                let list: Vec<String> = versions.iter().map(|f| f.version.to_string()).collect();
                println!("{name}: versions {}", list.join(", "));
                if let Some(latest) = versions.last() {
                    println!("\n{}", latest.source);
                }
            })
        }
    }
}
