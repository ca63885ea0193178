//! `greenlight release …`: start, list, show and watch releases, and the
//! human commands: approve, reject, pause, resume, roll back.

pub(super) mod view;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use clap::builder::PossibleValuesParser;

use super::client::{Client, ServerArgs};
use super::sse;
use crate::api::release_model::{
    ArtifactDto, ClockDto, CommentRequest, EventDto, ReleaseDto, ReleaseSummaryDto,
    RollbackRequest, StartReleaseRequest,
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
        /// A file for the prechecks, as KIND:NAME:PATH (repeatable).
        #[arg(long = "artifact", value_name = "KIND:NAME:PATH", value_parser = artifact_arg)]
        artifacts: Vec<ArtifactArg>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List releases, newest first.
    List {
        #[arg(long = "app")]
        application: Option<String>,
        #[arg(long = "env")]
        environment: Option<String>,
        #[arg(long, value_parser = statuses())]
        status: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show where a release stands: stages, gate, decisions, targets.
    Show {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Approve a release waiting at its gate.
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Reject a release at its gate; it rolls back.
    Reject {
        id: String,
        /// Why the release is rejected (required).
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Pause a running release before its next step.
    Pause {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Resume a paused release.
    Resume {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
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
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a release's events as they happen until it is over; exits
    /// with failure unless it succeeded.
    Watch {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
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

pub async fn run(cmd: ReleaseCommand) -> anyhow::Result<()> {
    match cmd {
        ReleaseCommand::Start {
            application,
            environment,
            version,
            flow,
            flow_version,
            emergency,
            artifacts,
            server,
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
            let client = Client::new(&server)?;
            let request = StartReleaseRequest {
                application,
                environment,
                version,
                flow,
                flow_version,
                emergency,
                artifacts,
            };
            let started: ReleaseDto = client
                .send(client.post("/api/v1/releases").json(&request))
                .await?;
            println!("{}", view::plan(&started));
            Ok(())
        }
        ReleaseCommand::List {
            application,
            environment,
            status,
            server,
        } => {
            let client = Client::new(&server)?;
            let query: Vec<(&str, String)> = [
                ("application", application),
                ("environment", environment),
                ("status", status),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let releases: Vec<ReleaseSummaryDto> = client
                .send(client.get("/api/v1/releases").query(&query))
                .await?;
            if releases.is_empty() {
                println!(
                    "No releases{}. Start one with `greenlight release start`.",
                    if query.is_empty() { " yet" } else { " match" }
                );
                return Ok(());
            }
            // Ages are measured on the daemon's release clock, which tests
            // and demos move by hand.
            let clock: ClockDto = client.send(client.get("/api/v1/clock")).await?;
            println!("{}", view::release_table(&releases, clock.now_ms));
            Ok(())
        }
        ReleaseCommand::Show { id, server } => {
            let client = Client::new(&server)?;
            let release: ReleaseDto = client
                .send(client.get(&format!("/api/v1/releases/{id}")))
                .await?;
            println!("{}", view::summary(&release));
            Ok(())
        }
        ReleaseCommand::Approve {
            id,
            comment,
            server,
        } => {
            let r = comment_command(&server, &id, "approve", comment).await?;
            match &r.gate {
                Some(gate) if r.status == "waiting-approval" => println!(
                    "Approved release {id} at {}: {} of {} approvals.",
                    gate.stage,
                    gate.approvals.iter().filter(|a| a.approved).count(),
                    gate.approvers_needed
                ),
                _ => println!("Approved release {id}; it is now {}.", r.status),
            }
            Ok(())
        }
        ReleaseCommand::Reject {
            id,
            comment,
            server,
        } => {
            if comment.trim().is_empty() {
                bail!("a rejection needs --comment saying why");
            }
            let r = comment_command(&server, &id, "reject", comment).await?;
            println!("Rejected release {id}; it is now {}.", r.status);
            Ok(())
        }
        ReleaseCommand::Pause {
            id,
            comment,
            server,
        } => {
            let r = comment_command(&server, &id, "pause", comment).await?;
            println!("Paused release {id}; it is now {}.", r.status);
            Ok(())
        }
        ReleaseCommand::Resume { id, server } => {
            let client = Client::new(&server)?;
            let r: ReleaseDto = client
                .send(client.post(&format!("/api/v1/releases/{id}/resume")))
                .await?;
            println!("Resumed release {id}; it is now {}.", r.status);
            Ok(())
        }
        ReleaseCommand::Rollback {
            id,
            emergency,
            force,
            comment,
            server,
        } => {
            let client = Client::new(&server)?;
            let mode = if emergency { "emergency" } else { "regular" };
            let request = RollbackRequest {
                comment,
                mode: Some(mode.to_string()),
                force,
            };
            let r: ReleaseDto = client
                .send(
                    client
                        .post(&format!("/api/v1/releases/{id}/rollback"))
                        .json(&request),
                )
                .await?;
            println!(
                "Rolling release {id} back ({mode}{}); it is now {}.",
                if force { ", forced" } else { "" },
                r.status
            );
            println!("Follow it with `greenlight release watch {id}`.");
            Ok(())
        }
        ReleaseCommand::Watch { id, server } => watch(&Client::new(&server)?, &id).await,
    }
}

async fn comment_command(
    server: &ServerArgs,
    id: &str,
    action: &str,
    comment: String,
) -> anyhow::Result<ReleaseDto> {
    let client = Client::new(server)?;
    client
        .send(
            client
                .post(&format!("/api/v1/releases/{id}/{action}"))
                .json(&CommentRequest { comment }),
        )
        .await
}

/// Follows a release to its end: past events from the journal, then new
/// ones from the event stream, each printed once and in order.
async fn watch(client: &Client, id: &str) -> anyhow::Result<()> {
    // Subscribing first and reading the journal after leaves no gap: an
    // event is journaled before it is streamed, so whatever the stream
    // misses the journal holds, and the sequence numbers drop the overlap.
    let mut stream = client
        .response(
            client
                .get("/api/v1/events")
                .query(&[("release", id)])
                .header("accept", "text/event-stream"),
        )
        .await?;
    let release: ReleaseDto = client
        .send(client.get(&format!("/api/v1/releases/{id}")))
        .await?;
    let places = view::Places::new(&release);
    let mut watcher = Watcher {
        client,
        id,
        places,
        printed: 0,
        last: None,
    };
    watcher.catch_up().await?;
    let mut parser = sse::Parser::default();
    while watcher.ending().is_none() {
        let Some(chunk) = stream.chunk().await.context("the event stream broke off")? else {
            bail!("the daemon closed the event stream before release {id} finished");
        };
        for message in parser.push(&chunk) {
            if message.event == "lagged" {
                // Events were dropped for this slow reader; the journal
                // still has them.
                watcher.catch_up().await?;
                continue;
            }
            let event: EventDto = serde_json::from_str(&message.data)
                .with_context(|| format!("the daemon streamed an unreadable {}", message.event))?;
            if event.release != id {
                continue;
            }
            if event.seq > watcher.printed {
                watcher.catch_up().await?;
            }
            if event.seq == watcher.printed {
                watcher.print(&event);
            }
            if watcher.ending().is_some() {
                break;
            }
        }
    }
    let (status, reason) = watcher.ending().unwrap_or_default();
    let release: ReleaseDto = client
        .send(client.get(&format!("/api/v1/releases/{id}")))
        .await?;
    let reason = release.outcome.unwrap_or(reason);
    if status == Status::Succeeded.as_str() {
        println!("Release {id} succeeded: {reason}");
        Ok(())
    } else {
        bail!("release {id} ended {status}: {reason}")
    }
}

/// What `watch` has printed so far.
struct Watcher<'a> {
    client: &'a Client,
    id: &'a str,
    places: view::Places,
    /// Events printed, which is the sequence number of the next one.
    printed: u64,
    /// The last event printed.
    last: Option<EventDto>,
}

impl Watcher<'_> {
    /// Prints the journaled events not printed yet.
    async fn catch_up(&mut self) -> anyhow::Result<()> {
        let journal: Vec<EventDto> = self
            .client
            .send(
                self.client
                    .get(&format!("/api/v1/releases/{}/journal", self.id)),
            )
            .await?;
        for event in journal.into_iter().skip(self.printed as usize) {
            self.print(&event);
        }
        Ok(())
    }

    fn print(&mut self, event: &EventDto) {
        println!("{}", view::event_line(event, &self.places));
        if event.kind == "blocked" {
            println!(
                "          a human must act: `greenlight release rollback {} --force` passes the step",
                self.id
            );
        }
        self.printed = event.seq + 1;
        self.last = Some(event.clone());
    }

    /// The final status and reason, once the release is over. Only
    /// `finished` ends a release, and only a new rollback follows it, so
    /// the release is over exactly when that is the last event.
    fn ending(&self) -> Option<(String, String)> {
        let last = self.last.as_ref().filter(|e| e.kind == "finished")?;
        let field = |name: &str| last.detail[name].as_str().unwrap_or_default().to_string();
        Some((field("status"), field("reason")))
    }
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
