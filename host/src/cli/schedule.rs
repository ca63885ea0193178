//! `greenlight schedule …`: add, list, enable, disable and remove schedules,
//! and show their next fire times.

use clap::Subcommand;
use clap::builder::PossibleValuesParser;
use serde_json::json;

use super::client::{Client, ServerArgs};
use super::output::Answer;
use super::release::view::{date_time, table};
use crate::api::schedule_model::{CreateScheduleRequest, NextFiresDto, ScheduleDto};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule that starts a release at every fire.
    Add(Box<AddArgs>),
    /// List schedules with their next fire and last outcome.
    List,
    /// Show a schedule's next fire times.
    Next {
        name: String,
        /// How many.
        #[arg(long, short = 'n', default_value_t = 5)]
        count: usize,
    },
    /// Let a schedule fire again, from now on.
    Enable { name: String },
    /// Stop a schedule firing; a release it started carries on.
    Disable { name: String },
    /// Remove a schedule and its journal of fires.
    Rm { name: String },
}

/// `greenlight schedule add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A unique name: lowercase letters, digits and `-`.
    name: String,
    /// When it fires: five crontab fields (`0 2 * * *` is 02:00 every
    /// day; Sunday is 0 or 7), six with seconds first, or `@daily`.
    #[arg(long)]
    cron: String,
    /// The IANA timezone the expression reads in.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    #[arg(long = "app")]
    application: String,
    #[arg(long = "env")]
    environment: String,
    #[arg(long)]
    flow: String,
    /// The flow version (the latest at each fire by default).
    #[arg(long)]
    flow_version: Option<u32>,
    /// The version every fire ships.
    #[arg(
        long,
        required_unless_present = "version_url",
        conflicts_with = "version_url"
    )]
    version: Option<String>,
    /// A URL answering the version to ship at fire time (plain text, or
    /// JSON with a `version` field).
    #[arg(long)]
    version_url: Option<String>,
    /// What happens to fires missed while the daemon was down.
    #[arg(long, default_value = "run-once",
          value_parser = PossibleValuesParser::new(["skip", "run-once", "catch-up"]))]
    missed: String,
    /// With `--missed catch-up`: the most missed fires that still run.
    #[arg(long)]
    catch_up_max: Option<u32>,
    /// What a fire does while the previous release still runs.
    #[arg(long, default_value = "skip",
          value_parser = PossibleValuesParser::new(["skip", "queue", "supersede"]))]
    overlap: String,
    /// Add it disabled.
    #[arg(long)]
    disabled: bool,
}

fn summary(s: &ScheduleDto) -> String {
    let next = s.next_fire_ms.map_or("-".to_string(), date_time);
    format!(
        "schedule `{}` ({} in {}): {} to {}/{} by flow {}; next fire {next}.",
        s.name,
        s.cron,
        s.timezone,
        s.version.as_deref().map_or_else(
            || format!(
                "the version from {}",
                s.version_url.as_deref().unwrap_or("?")
            ),
            |v| format!("version {v}")
        ),
        s.application,
        s.environment,
        s.flow,
    )
}

async fn set_enabled(name: &str, enabled: bool, server: &ServerArgs) -> anyhow::Result<()> {
    let client = Client::new(server)?;
    let action = if enabled { "enable" } else { "disable" };
    let schedule = client
        .fetch::<ScheduleDto>(client.post(&format!("/api/v1/schedules/{name}/{action}")))
        .await?;
    client.print(&schedule, |s| {
        let state = if s.enabled { "Enabled" } else { "Disabled" };
        println!("{state} {}", summary(s));
    })
}

pub async fn run(cmd: ScheduleCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        ScheduleCommand::Add(args) => {
            let a = *args;
            let client = Client::new(server)?;
            let request = CreateScheduleRequest {
                name: a.name,
                cron: a.cron,
                timezone: Some(a.timezone),
                application: a.application,
                environment: a.environment,
                flow: a.flow,
                flow_version: a.flow_version,
                version: a.version,
                version_url: a.version_url,
                missed: Some(a.missed),
                catch_up_max: a.catch_up_max,
                overlap: Some(a.overlap),
                enabled: Some(!a.disabled),
            };
            let created = client
                .fetch::<ScheduleDto>(client.post("/api/v1/schedules").json(&request))
                .await?;
            client.print(&created, |s| println!("Added {}", summary(s)))
        }
        ScheduleCommand::List => {
            let client = Client::new(server)?;
            let schedules = client
                .fetch::<Vec<ScheduleDto>>(client.get("/api/v1/schedules"))
                .await?;
            client.print(&schedules, |schedules| {
                let rows: Vec<Vec<String>> = schedules
                    .iter()
                    .map(|s| {
                        let last = s.last_fire.as_ref().map_or("-".to_string(), |f| {
                            format!("{} {}", f.outcome, date_time(f.at_ms))
                        });
                        vec![
                            s.name.clone(),
                            format!("{} ({})", s.cron, s.timezone),
                            format!("{}/{}", s.application, s.environment),
                            if s.enabled { "enabled" } else { "disabled" }.to_string(),
                            s.next_fire_ms.map_or("-".to_string(), date_time),
                            last,
                            s.last_release.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(
                        &["NAME", "CRON", "TARGET", "STATE", "NEXT", "LAST", "RELEASE"],
                        &rows
                    )
                );
            })
        }
        ScheduleCommand::Next { name, count } => {
            let client = Client::new(server)?;
            let next = client
                .fetch::<NextFiresDto>(
                    client
                        .get(&format!("/api/v1/schedules/{name}/next"))
                        .query(&[("count", count)]),
                )
                .await?;
            client.print(&next, |next| {
                for fire in &next.fires {
                    println!("{}  ({})", fire.local, date_time(fire.at_ms));
                }
            })
        }
        ScheduleCommand::Enable { name } => set_enabled(&name, true, server).await,
        ScheduleCommand::Disable { name } => set_enabled(&name, false, server).await,
        ScheduleCommand::Rm { name } => {
            let client = Client::new(server)?;
            client
                .response(client.delete(&format!("/api/v1/schedules/{name}")))
                .await?;
            let answer = Answer::local(json!({ "deleted": name }))?;
            client.print(&answer, |_| println!("Removed schedule `{name}`."))
        }
    }
}
