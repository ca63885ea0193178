//! `greenlight analysis …`: replay a flow's checks and policy over what
//! past releases recorded.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::client::{Client, ServerArgs};
use crate::api::analysis_model::{OutcomeDto, ReleaseReplayDto, ReplayDto, ReplayRequestDto};

#[derive(Debug, Subcommand)]
pub enum AnalysisCommand {
    /// Run a flow's checks and policy again over the observations past
    /// releases recorded, and print which releases it would have decided
    /// differently. Nothing is changed and no store is asked again.
    Replay {
        /// The flow file (TOML) to replay, applied or not.
        #[arg(long, conflicts_with = "flow_name")]
        flow: Option<PathBuf>,
        /// An applied flow to replay instead, `NAME` or `NAME@VERSION`.
        #[arg(long = "flow-name", value_name = "NAME[@VERSION]")]
        flow_name: Option<String>,
        /// Only this application's releases.
        #[arg(long)]
        app: Option<String>,
        /// Only releases to this environment.
        #[arg(long)]
        env: Option<String>,
        /// How many of the newest finished releases to replay.
        #[arg(long, default_value_t = 20)]
        last: u32,
    },
}

pub async fn run(cmd: AnalysisCommand, server: &ServerArgs) -> anyhow::Result<()> {
    let AnalysisCommand::Replay {
        flow,
        flow_name,
        app,
        env,
        last,
    } = cmd;
    let text = match &flow {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        None => None,
    };
    let (flow_name, flow_version) = match flow_name {
        Some(named) => match named.split_once('@') {
            Some((name, version)) => {
                let version = version
                    .parse()
                    .with_context(|| format!("`{version}` in --flow-name is not a version"))?;
                (Some(name.to_string()), Some(version))
            }
            None => (Some(named), None),
        },
        None => (None, None),
    };
    let request = ReplayRequestDto {
        flow: text,
        flow_name,
        flow_version,
        application: app,
        environment: env,
        last: Some(last),
    };
    let client = Client::new(server)?;
    let report = client
        .fetch::<ReplayDto>(client.post("/api/v1/analysis/replay").json(&request))
        .await?;
    client.print(&report, print_report)
}

/// `succeeded`, or `rolled-back at canary round 2`.
fn outcome(o: &OutcomeDto) -> String {
    match (&o.stage, o.round) {
        (Some(stage), Some(round)) => {
            let batch = o
                .batch
                .map_or(String::new(), |b| format!(" batch {}", b + 1));
            format!("{} at {stage}{batch} round {}", o.outcome, round + 1)
        }
        _ => o.outcome.clone(),
    }
}

/// Why a release came out as it did on replay, in a line.
fn why(r: &ReleaseReplayDto) -> String {
    if let Some(skipped) = &r.skipped {
        return format!("not replayed: {skipped}");
    }
    let Some(round) = r.rounds.first() else {
        return "every round ruled the same".to_string();
    };
    let verdicts: Vec<String> = round
        .verdicts
        .iter()
        .map(|v| {
            format!(
                "{}: {} -> {}",
                v.check,
                v.actual.as_deref().unwrap_or("(not run)"),
                v.replayed.as_deref().unwrap_or("(not in the flow)")
            )
        })
        .collect();
    format!(
        "{} round {}: {}{}",
        round.stage,
        round.round + 1,
        round.reason,
        if verdicts.is_empty() {
            String::new()
        } else {
            format!(" [{}]", verdicts.join("; "))
        }
    )
}

fn print_report(report: &ReplayDto) {
    println!("Replaying {}@{}", report.flow, report.flow_version);
    if report.releases.is_empty() {
        println!("No finished releases to replay.");
    }
    // Each column as wide as its widest cell; the replayed outcome is
    // marked `*` where it differs.
    let mut rows = vec![[
        "RELEASE".to_string(),
        "VERSION".to_string(),
        "ACTUAL".to_string(),
        " REPLAYED".to_string(),
        "WHY".to_string(),
    ]];
    for r in &report.releases {
        let replayed = r.replayed.as_ref().map_or("-".to_string(), outcome);
        let mark = if r.differs { "*" } else { " " };
        rows.push([
            r.release.clone(),
            r.version.clone(),
            outcome(&r.actual),
            format!("{mark}{replayed}"),
            why(r),
        ]);
    }
    if rows.len() > 1 {
        let width = |i: usize| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2), width(3)];
        for row in &rows {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(widths) {
                line.push_str(&format!("{cell:<w$}  "));
            }
            line.push_str(&row[4]);
            println!("{line}");
        }
    }
    println!(
        "{} of {} releases would have been decided differently",
        report.differing, report.replayed
    );
}
