//! `greenlight release …`: start, list, show and watch releases, and the
//! human commands: approve, reject, pause, resume, roll back.

mod evidence;
mod progress;
pub(super) mod view;
mod watch;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use clap::builder::PossibleValuesParser;

use super::client::{Client, ServerArgs};
use super::output::{Answer, Output};
use crate::api::release_model::{
    ArtifactDto, ClockDto, CommentRequest, ReleaseDto, ReleaseSummaryDto, RollbackRequest,
    StartReleaseRequest,
};
use crate::domain::release::Status;

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Start releasing a version of an application to an environment.
    Start {
        #[arg(long = "app")]
        application: String,
        #[arg(long = "env")]
        environment: String,
        #[arg(long)]
        version: String,
        /// The flow to follow.
        #[arg(long)]
        flow: String,
        /// The flow version (the latest by default).
        #[arg(long)]
        flow_version: Option<u32>,
        /// Skip bake periods and approval gates, never prechecks or checks
        /// (admins only; recorded in the release).
        #[arg(long)]
        emergency: bool,
        /// Why the release starts; recorded in the audit log.
        #[arg(long, default_value = "")]
        comment: String,
        /// Start even inside a freeze window (admins only; recorded in the
        /// audit log).
        #[arg(long)]
        override_freeze: bool,
        /// A file for the prechecks, as KIND:NAME:PATH (repeatable).
        #[arg(long = "artifact", value_name = "KIND:NAME:PATH", value_parser = artifact_arg)]
        artifacts: Vec<ArtifactArg>,
    },
    /// List releases, newest first.
    List {
        #[arg(long = "app")]
        application: Option<String>,
        #[arg(long = "env")]
        environment: Option<String>,
        #[arg(long, value_parser = statuses())]
        status: Option<String>,
    },
    /// Show where a release stands: stages, gate, decisions, targets.
    Show { id: String },
    /// Approve a release waiting at its gate.
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject a release at its gate; it rolls back.
    Reject {
        id: String,
        /// Why the release is rejected (required).
        #[arg(long)]
        comment: String,
    },
    /// Pause a running release before its next step.
    Pause {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Resume a paused release.
    Resume {
        id: String,
        /// Why it may go on; recorded in the audit log.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Roll a release back, newest batch first.
    Rollback {
        id: String,
        /// Undo every batch of a stage at once, without verifying.
        #[arg(long)]
        emergency: bool,
        /// Pass steps that cannot be undone.
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// End an unfinished release where it stands (admin): nothing more is
    /// deployed or undone, its environment is freed, and what runs there is
    /// recorded as unknown. For a release that cannot finish, such as a
    /// rollback blocked for good.
    Abandon {
        id: String,
        /// Why the release is abandoned (required).
        #[arg(long)]
        comment: String,
    },
    /// Print a release's events as they happen until it is over, under a
    /// progress bar on a terminal; exits with failure unless it succeeded.
    Watch { id: String },
}

/// An artifact named on the command line, read when the release starts.
#[derive(Debug, Clone)]
pub struct ArtifactArg {
    kind: String,
    name: String,
    path: PathBuf,
}

fn artifact_arg(s: &str) -> Result<ArtifactArg, String> {
    let mut parts = s.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(kind), Some(name), Some(path))
            if !kind.is_empty() && !name.is_empty() && !path.is_empty() =>
        {
            Ok(ArtifactArg {
                kind: kind.to_string(),
                name: name.to_string(),
                path: PathBuf::from(path),
            })
        }
        _ => Err(format!("`{s}` is not KIND:NAME:PATH")),
    }
}

fn statuses() -> PossibleValuesParser {
    PossibleValuesParser::new(Status::ALL.map(Status::as_str))
}

/// A refusal in the CLI's words: the freeze's way out is a flag here.
fn cli_words(e: anyhow::Error) -> anyhow::Error {
    let text = e.to_string();
    if text.starts_with("release.frozen") {
        let text = text.replace(
            "overriding the freeze (`override_freeze` in the API)",
            "with --override-freeze (and --comment WHY)",
        );
        return anyhow::anyhow!(text);
    }
    e
}

pub async fn run(cmd: ReleaseCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        ReleaseCommand::Start {
            application,
            environment,
            version,
            flow,
            flow_version,
            emergency,
            comment,
            override_freeze,
            artifacts,
        } => {
            let artifacts = artifacts
                .into_iter()
                .map(|a| {
                    let content = std::fs::read_to_string(&a.path)
                        .with_context(|| format!("cannot read {}", a.path.display()))?;
                    Ok(ArtifactDto {
                        kind: a.kind,
                        name: a.name,
                        content,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let client = Client::new(server)?;
            let request = StartReleaseRequest {
                application,
                environment,
                version,
                flow,
                flow_version,
                emergency,
                artifacts,
                comment,
                override_freeze,
            };
            let started = client
                .fetch::<ReleaseDto>(client.post("/api/v1/releases").json(&request))
                .await
                .map_err(cli_words)?;
            client.print(&started, |r| println!("{}", view::plan(r)))
        }
        ReleaseCommand::List {
            application,
            environment,
            status,
        } => {
            let client = Client::new(server)?;
            let query: Vec<(&str, String)> = [
                ("application", application),
                ("environment", environment),
                ("status", status),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let releases = client
                .fetch::<Vec<ReleaseSummaryDto>>(client.get("/api/v1/releases").query(&query))
                .await?;
            // Ages are measured on the daemon's release clock, which tests
            // and demos move by hand; only the table shows them.
            let now_ms = if client.output() == Output::Human && !releases.value.is_empty() {
                client
                    .send::<ClockDto>(client.get("/api/v1/clock"))
                    .await?
                    .now_ms
            } else {
                0
            };
            client.print(&releases, |releases| {
                if releases.is_empty() {
                    println!(
                        "No releases{}. Start one with `greenlight release start`.",
                        if query.is_empty() { " yet" } else { " match" }
                    );
                } else {
                    println!("{}", view::release_table(releases, now_ms));
                }
            })
        }
        ReleaseCommand::Show { id } => {
            let client = Client::new(server)?;
            let release = client
                .fetch::<ReleaseDto>(client.get(&format!("/api/v1/releases/{id}")))
                .await?;
            client.print(&release, |r| println!("{}", view::summary(r)))
        }
        ReleaseCommand::Approve { id, comment } => {
            let (client, r) = comment_command(server, &id, "approve", comment).await?;
            client.print(&r, |r| match &r.gate {
                Some(gate) if r.status == "waiting-approval" => println!(
                    "Approved release {id} at {}: {} of {} approvals.",
                    gate.stage,
                    gate.approvals.iter().filter(|a| a.approved).count(),
                    gate.approvers_needed
                ),
                _ => println!("Approved release {id}; it is now {}.", r.status),
            })
        }
        ReleaseCommand::Reject { id, comment } => {
            if comment.trim().is_empty() {
                bail!("a rejection needs --comment saying why");
            }
            let (client, r) = comment_command(server, &id, "reject", comment).await?;
            client.print(&r, |r| {
                println!("Rejected release {id}; it is now {}.", r.status);
            })
        }
        ReleaseCommand::Pause { id, comment } => {
            let (client, r) = comment_command(server, &id, "pause", comment).await?;
            client.print(&r, |r| {
                println!("Paused release {id}; it is now {}.", r.status);
            })
        }
        ReleaseCommand::Resume { id, comment } => {
            let (client, r) = comment_command(server, &id, "resume", comment).await?;
            client.print(&r, |r| {
                println!("Resumed release {id}; it is now {}.", r.status);
            })
        }
        ReleaseCommand::Rollback {
            id,
            emergency,
            force,
            comment,
        } => {
            let client = Client::new(server)?;
            let mode = if emergency { "emergency" } else { "regular" };
            let request = RollbackRequest {
                comment,
                mode: Some(mode.to_string()),
                force,
            };
            let r = client
                .fetch::<ReleaseDto>(
                    client
                        .post(&format!("/api/v1/releases/{id}/rollback"))
                        .json(&request),
                )
                .await?;
            client.print(&r, |r| {
                println!(
                    "Rolling release {id} back ({mode}{}); it is now {}.",
                    if force { ", forced" } else { "" },
                    r.status
                );
                println!("Follow it with `greenlight release watch {id}`.");
            })
        }
        ReleaseCommand::Abandon { id, comment } => {
            if comment.trim().is_empty() {
                bail!("abandoning a release needs --comment saying why");
            }
            let (client, r) = comment_command(server, &id, "abandon", comment).await?;
            client.print(&r, |r| {
                println!("Abandoned release {id}; it is now {}.", r.status);
                println!(
                    "What runs in {}/{} is unknown until a release finishes there.",
                    r.application, r.environment
                );
            })
        }
        ReleaseCommand::Watch { id } => watch::watch(&Client::new(server)?, &id).await,
    }
}

/// Sends a human's command with a comment; returns the client, to print
/// the answer with, and the release after the command.
async fn comment_command(
    server: &ServerArgs,
    id: &str,
    action: &str,
    comment: String,
) -> anyhow::Result<(Client, Answer<ReleaseDto>)> {
    let client = Client::new(server)?;
    let answer = client
        .fetch(
            client
                .post(&format!("/api/v1/releases/{id}/{action}"))
                .json(&CommentRequest { comment }),
        )
        .await?;
    Ok((client, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_kind_name_and_a_path_that_may_hold_colons() {
        let a = artifact_arg("sql:migrate:C:/sql/001.sql").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("sql", "migrate"));
        assert_eq!(a.path, PathBuf::from("C:/sql/001.sql"));
        for bad in ["sql", "sql:migrate", "sql::x", ":a:b"] {
            let e = artifact_arg(bad).unwrap_err();
            assert!(e.contains("KIND:NAME:PATH"), "{e}");
        }
    }
}
