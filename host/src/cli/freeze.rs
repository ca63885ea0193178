//! `greenlight freeze …`: add, list and remove freeze windows, the periods in
//! which no release starts (or, with `--allow`, the only periods in which
//! releases may start).

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::client::{Client, ServerArgs};
use super::output::Answer;
use super::release::view::{date_time, table};
use crate::api::schedule_model::{CreateFreezeRequest, FreezeDto};
use crate::domain::flow::parse_duration_ms;

#[derive(Debug, Subcommand)]
pub enum FreezeCommand {
    /// Add a freeze window: a fixed period (`--from`, `--until`) or a
    /// recurring one (`--cron`, `--for`).
    Add(Box<AddArgs>),
    /// List freeze windows.
    List,
    /// Remove a freeze window.
    Rm { name: String },
}

/// `greenlight freeze add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A unique name: lowercase letters, digits and `-`.
    name: String,
    /// When a fixed window opens, as an RFC 3339 time
    /// (`2026-12-24T00:00:00Z`, `2026-12-24T08:00:00+08:00`).
    #[arg(long, requires = "until", required_unless_present = "cron")]
    from: Option<String>,
    /// When a fixed window closes, as an RFC 3339 time.
    #[arg(long, requires = "from")]
    until: Option<String>,
    /// When a recurring window opens, as a schedule's cron expression
    /// (`0 18 * * 5` is 18:00 every Friday).
    #[arg(long, requires = "duration", conflicts_with_all = ["from", "until"])]
    cron: Option<String>,
    /// How long a recurring window stays open (`2h`, `62h30m`).
    #[arg(long = "for", value_name = "DURATION", requires = "cron")]
    duration: Option<String>,
    /// The IANA timezone a recurring window's cron expression reads in.
    #[arg(long, requires = "cron")]
    timezone: Option<String>,
    /// An allow window: releases start only inside the allow windows that
    /// apply (a deny window still wins). Without it, nothing starts while
    /// the window is open.
    #[arg(long)]
    allow: bool,
    /// Only this application (all by default).
    #[arg(long = "app")]
    application: Option<String>,
    /// Only this environment (all by default).
    #[arg(long = "env")]
    environment: Option<String>,
    /// Why: shown to whoever the window stops.
    #[arg(long, default_value = "")]
    reason: String,
}

/// Milliseconds since the epoch of an RFC 3339 time given as `flag`.
fn epoch_ms(flag: &str, text: &str) -> anyhow::Result<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(text.trim()).with_context(|| {
        format!("--{flag}: `{text}` is not an RFC 3339 time such as 2026-12-24T18:00:00Z")
    })?;
    u64::try_from(time.timestamp_millis())
        .map_err(|_| anyhow::anyhow!("--{flag}: `{text}` is before 1970"))
}

impl AddArgs {
    fn request(self) -> anyhow::Result<CreateFreezeRequest> {
        let start_ms = self
            .from
            .as_deref()
            .map(|t| epoch_ms("from", t))
            .transpose()?;
        let end_ms = self
            .until
            .as_deref()
            .map(|t| epoch_ms("until", t))
            .transpose()?;
        let duration_ms = self
            .duration
            .as_deref()
            .map(|d| parse_duration_ms(d).map_err(|e| anyhow::anyhow!("--for: {e}")))
            .transpose()?;
        Ok(CreateFreezeRequest {
            name: self.name,
            effect: Some(if self.allow { "allow" } else { "deny" }.into()),
            start_ms,
            end_ms,
            cron: self.cron,
            timezone: self.timezone,
            duration_ms,
            application: self.application,
            environment: self.environment,
            reason: self.reason,
        })
    }
}

/// When a window is open, in words.
fn period(w: &FreezeDto) -> String {
    match (w.start_ms, w.end_ms, &w.cron, w.duration_ms) {
        (Some(start), Some(end), _, _) => format!("{} to {}", date_time(start), date_time(end)),
        (_, _, Some(cron), Some(duration)) => format!(
            "{cron} ({}) for {}",
            w.timezone.as_deref().unwrap_or("UTC"),
            span(duration)
        ),
        _ => "-".into(),
    }
}

/// A duration in the units it reads best in.
fn span(ms: u64) -> String {
    let minutes = ms / 60_000;
    match (minutes / 60, minutes % 60, ms % 60_000) {
        (0, 0, _) => format!("{}s", ms / 1000),
        (h, m, 0) if h > 0 && m > 0 => format!("{h}h{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (0, m, 0) => format!("{m}m"),
        _ => format!("{}s", ms / 1000),
    }
}

/// Which releases a window applies to.
fn scope(w: &FreezeDto) -> String {
    format!(
        "{}/{}",
        w.application.as_deref().unwrap_or("*"),
        w.environment.as_deref().unwrap_or("*")
    )
}

pub async fn run(cmd: FreezeCommand, server: &ServerArgs) -> anyhow::Result<()> {
    match cmd {
        FreezeCommand::Add(args) => {
            let request = args.request()?;
            let client = Client::new(server)?;
            let created = client
                .fetch::<FreezeDto>(client.post("/api/v1/freezes").json(&request))
                .await?;
            client.print(&created, |w| {
                println!(
                    "Added {} window `{}` for {}: {}.",
                    w.effect,
                    w.name,
                    scope(w),
                    period(w)
                )
            })
        }
        FreezeCommand::List => {
            let client = Client::new(server)?;
            let windows = client
                .fetch::<Vec<FreezeDto>>(client.get("/api/v1/freezes"))
                .await?;
            client.print(&windows, |windows| {
                let rows: Vec<Vec<String>> = windows
                    .iter()
                    .map(|w| {
                        vec![
                            w.name.clone(),
                            w.effect.clone(),
                            scope(w),
                            period(w),
                            if w.reason.is_empty() {
                                "-".into()
                            } else {
                                w.reason.clone()
                            },
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["NAME", "EFFECT", "SCOPE", "WHEN", "REASON"], &rows)
                );
            })
        }
        FreezeCommand::Rm { name } => {
            let client = Client::new(server)?;
            client
                .response(client.delete(&format!("/api/v1/freezes/{name}")))
                .await?;
            let answer = Answer::local(json!({ "deleted": name }))?;
            client.print(&answer, |_| println!("Removed freeze window `{name}`."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_their_largest_units() {
        assert_eq!(span(2 * 3_600_000), "2h");
        assert_eq!(span(62 * 3_600_000 + 30 * 60_000), "62h30m");
        assert_eq!(span(45 * 60_000), "45m");
        assert_eq!(span(90_000), "90s");
        assert_eq!(span(5_000), "5s");
    }

    #[test]
    fn times_are_rfc_3339_and_a_bad_one_names_its_flag() {
        assert_eq!(epoch_ms("from", "1970-01-01T00:00:01Z").unwrap(), 1_000);
        assert_eq!(
            epoch_ms("from", "2026-12-24T08:00:00+08:00").unwrap(),
            epoch_ms("from", "2026-12-24T00:00:00Z").unwrap()
        );
        let err = epoch_ms("until", "tomorrow").unwrap_err().to_string();
        assert!(err.starts_with("--until: `tomorrow`"), "{err}");
        let err = epoch_ms("from", "1969-12-31T23:59:59Z")
            .unwrap_err()
            .to_string();
        assert!(err.contains("before 1970"), "{err}");
    }
}
