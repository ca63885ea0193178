//! The DTOs of schedules and freeze windows, and their conversions from and
//! to the domain's types.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules;

use crate::domain::flow::FlowError;
use crate::domain::schedule::freeze::{Effect, FreezeWindow, Period};
use crate::domain::schedule::{Fire, MissedRun, Outcome, Overlap, Schedule, VersionSource};
use crate::scheduler::ScheduleView;

/// `POST /api/v1/schedules`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateScheduleRequest {
    #[schema(value_type = rules::Name)]
    pub name: String,
    /// Five crontab fields (`minute hour day-of-month month day-of-week`,
    /// Sunday is 0 or 7), six with seconds first, or `@daily`, `@hourly`…
    #[schema(example = "0 2 * * *")]
    pub cron: String,
    /// The IANA timezone the expression reads in; `UTC` by default.
    #[serde(default)]
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    #[schema(value_type = rules::Name)]
    pub application: String,
    #[schema(value_type = rules::Name)]
    pub environment: String,
    #[schema(value_type = rules::Name)]
    pub flow: String,
    #[serde(default)]
    pub flow_version: Option<u32>,
    /// The version each fire ships; give this or `version_url`.
    #[serde(default)]
    #[schema(value_type = Option<rules::Version>)]
    pub version: Option<String>,
    /// A URL answering the version to ship at fire time: plain text, or
    /// JSON with a `version` field.
    #[serde(default)]
    #[schema(value_type = Option<rules::HttpUrl>)]
    pub version_url: Option<String>,
    /// `skip`, `run-once` (the default) or `catch-up`.
    #[serde(default)]
    #[schema(value_type = Option<MissedName>)]
    pub missed: Option<String>,
    /// With `catch-up`, and only with it: the most missed fires that still
    /// run.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub catch_up_max: Option<u32>,
    /// `skip` (the default), `queue` or `supersede`.
    #[serde(default)]
    #[schema(value_type = Option<OverlapName>)]
    pub overlap: Option<String>,
    /// `true` by default.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// What a schedule does about fires missed while the daemon was down.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum MissedName {
    Skip,
    RunOnce,
    CatchUp,
}

/// What a fire does while the schedule's last release still runs.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum OverlapName {
    Skip,
    Queue,
    Supersede,
}

/// What a freeze window does.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum EffectName {
    Deny,
    Allow,
}

impl CreateScheduleRequest {
    /// The schedule asked for, or every field that is wrong.
    pub fn into_domain(self) -> Result<Schedule, Vec<FlowError>> {
        let mut problems = Vec::new();
        let version = match (self.version, self.version_url) {
            (Some(version), None) => VersionSource::Fixed { version },
            (None, Some(url)) => VersionSource::Url { url },
            _ => {
                problems.push(FlowError::new(
                    "version",
                    "give exactly one of `version` and `version_url`",
                ));
                VersionSource::Fixed {
                    version: String::new(),
                }
            }
        };
        let missed = match (self.missed.as_deref(), self.catch_up_max) {
            (None | Some("run-once"), None) => MissedRun::RunOnce,
            (Some("skip"), None) => MissedRun::Skip,
            (Some("catch-up"), Some(max)) => MissedRun::CatchUp { max },
            (Some("catch-up"), None) => {
                problems.push(FlowError::new("catch_up_max", "is required with catch-up"));
                MissedRun::default()
            }
            (Some("skip" | "run-once") | None, Some(_)) => {
                problems.push(FlowError::new("catch_up_max", "goes only with catch-up"));
                MissedRun::default()
            }
            (Some(other), _) => {
                problems.push(FlowError::new(
                    "missed",
                    format!("`{other}` is not skip, run-once or catch-up"),
                ));
                MissedRun::default()
            }
        };
        let overlap = match self.overlap.as_deref() {
            None | Some("skip") => Overlap::Skip,
            Some("queue") => Overlap::Queue,
            Some("supersede") => Overlap::Supersede,
            Some(other) => {
                problems.push(FlowError::new(
                    "overlap",
                    format!("`{other}` is not skip, queue or supersede"),
                ));
                Overlap::default()
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Schedule {
            name: self.name,
            cron: self.cron,
            timezone: self.timezone.unwrap_or_else(|| "UTC".to_string()),
            application: self.application,
            environment: self.environment,
            flow: self.flow,
            flow_version: self.flow_version,
            version,
            missed,
            overlap,
            enabled: self.enabled.unwrap_or(true),
            since_ms: 0,
            created_by: String::new(),
            created_ms: 0,
        })
    }
}

/// One fire of a schedule and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FireDto {
    pub schedule: String,
    /// The instant the schedule named.
    pub at_ms: u64,
    /// When the daemon handled it.
    pub fired_ms: u64,
    /// `pending`, `started`, `queued`, `skipped` or `failed`.
    pub outcome: String,
    /// The release the fire started.
    pub release: Option<String>,
    pub version: Option<String>,
    /// Why it was skipped: `missed`, `frozen` or `overlap`.
    pub reason: Option<String>,
    /// What happened, for a human (skips and failures).
    pub message: Option<String>,
}

impl From<&Fire> for FireDto {
    fn from(f: &Fire) -> FireDto {
        let (reason, message) = match &f.outcome {
            Outcome::Skipped { reason, message } => {
                (Some(reason.as_str().to_string()), Some(message.clone()))
            }
            Outcome::Failed { message } => (None, Some(message.clone())),
            _ => (None, None),
        };
        FireDto {
            schedule: f.schedule.clone(),
            at_ms: f.at_ms,
            fired_ms: f.fired_ms,
            outcome: f.outcome.as_str().to_string(),
            release: f.outcome.release().map(str::to_string),
            version: f.version.clone(),
            reason,
            message,
        }
    }
}

/// A schedule, its next fire and its last outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScheduleDto {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub application: String,
    pub environment: String,
    pub flow: String,
    pub flow_version: Option<u32>,
    pub version: Option<String>,
    pub version_url: Option<String>,
    /// `skip`, `run-once` or `catch-up`.
    pub missed: String,
    pub catch_up_max: Option<u32>,
    /// `skip`, `queue` or `supersede`.
    pub overlap: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_ms: u64,
    /// The next fire, when enabled.
    pub next_fire_ms: Option<u64>,
    /// The newest fire.
    pub last_fire: Option<FireDto>,
    /// The release the schedule started last.
    pub last_release: Option<String>,
}

impl From<ScheduleView> for ScheduleDto {
    fn from(v: ScheduleView) -> ScheduleDto {
        let s = v.schedule;
        let (version, version_url) = match s.version {
            VersionSource::Fixed { version } => (Some(version), None),
            VersionSource::Url { url } => (None, Some(url)),
        };
        let (missed, catch_up_max) = match s.missed {
            MissedRun::Skip => ("skip", None),
            MissedRun::RunOnce => ("run-once", None),
            MissedRun::CatchUp { max } => ("catch-up", Some(max)),
        };
        let overlap = match s.overlap {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Supersede => "supersede",
        };
        ScheduleDto {
            name: s.name,
            cron: s.cron,
            timezone: s.timezone,
            application: s.application,
            environment: s.environment,
            flow: s.flow,
            flow_version: s.flow_version,
            version,
            version_url,
            missed: missed.to_string(),
            catch_up_max,
            overlap: overlap.to_string(),
            enabled: s.enabled,
            created_by: s.created_by,
            created_ms: s.created_ms,
            next_fire_ms: v.next_ms,
            last_fire: v.last.as_ref().map(FireDto::from),
            last_release: v
                .last_started
                .as_ref()
                .and_then(|f| f.outcome.release().map(str::to_string)),
        }
    }
}

/// One upcoming fire.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NextFireDto {
    pub at_ms: u64,
    /// The instant in the schedule's timezone, RFC 3339.
    #[schema(example = "2026-03-29T03:00:00+02:00")]
    pub local: String,
}

/// `GET /api/v1/schedules/{name}/next`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NextFiresDto {
    pub schedule: String,
    pub timezone: String,
    pub fires: Vec<NextFireDto>,
}

impl NextFiresDto {
    pub fn new(schedule: &str, timezone: &str, fires: &[u64]) -> NextFiresDto {
        let tz = crate::domain::schedule::cron::parse_timezone(timezone).ok();
        NextFiresDto {
            schedule: schedule.to_string(),
            timezone: timezone.to_string(),
            fires: fires
                .iter()
                .map(|at| NextFireDto {
                    at_ms: *at,
                    local: DateTime::from_timestamp_millis(*at as i64)
                        .zip(tz)
                        .map(|(t, tz)| t.with_timezone(&tz).to_rfc3339())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/freezes`: a one-off window (`start_ms`, `end_ms`) or a
/// recurring one (`cron`, `timezone`, `duration_ms`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFreezeRequest {
    #[schema(value_type = rules::Name)]
    pub name: String,
    /// `deny` (the default: no release starts while it is open) or `allow`
    /// (releases start only inside the allow windows that apply; deny wins).
    #[serde(default)]
    #[schema(value_type = Option<EffectName>)]
    pub effect: Option<String>,
    #[serde(default)]
    pub start_ms: Option<u64>,
    #[serde(default)]
    pub end_ms: Option<u64>,
    /// When a recurring window opens, as a schedule's `cron`.
    #[serde(default)]
    pub cron: Option<String>,
    /// `UTC` by default.
    #[serde(default)]
    pub timezone: Option<String>,
    /// How long a recurring window stays open: at most a year.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_622_400_000u64)]
    pub duration_ms: Option<u64>,
    /// Only this application; all by default.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub application: Option<String>,
    /// Only this environment; all by default.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub environment: Option<String>,
    /// Why, shown to whoever the window stops.
    #[serde(default)]
    #[schema(value_type = rules::Text)]
    pub reason: String,
}

impl CreateFreezeRequest {
    pub fn into_domain(self) -> Result<FreezeWindow, Vec<FlowError>> {
        let effect = match self.effect.as_deref() {
            None | Some("deny") => Effect::Deny,
            Some("allow") => Effect::Allow,
            Some(other) => {
                return Err(vec![FlowError::new(
                    "effect",
                    format!("`{other}` is not deny or allow"),
                )]);
            }
        };
        let period = match (self.start_ms, self.end_ms, self.cron, self.duration_ms) {
            (Some(start_ms), Some(end_ms), None, None) => Period::Range { start_ms, end_ms },
            (None, None, Some(cron), Some(duration_ms)) => Period::Recurring {
                cron,
                timezone: self.timezone.unwrap_or_else(|| "UTC".to_string()),
                duration_ms,
            },
            _ => {
                return Err(vec![FlowError::new(
                    "period",
                    "give start_ms and end_ms, or cron and duration_ms (with an optional timezone)",
                )]);
            }
        };
        Ok(FreezeWindow {
            name: self.name,
            effect,
            period,
            application: self.application,
            environment: self.environment,
            reason: self.reason,
            created_by: String::new(),
            created_ms: 0,
        })
    }
}

/// A freeze window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FreezeDto {
    pub name: String,
    /// `deny` or `allow`.
    pub effect: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub duration_ms: Option<u64>,
    pub application: Option<String>,
    pub environment: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_ms: u64,
    /// Whether the window is open now, on the daemon's clock (only in
    /// listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_now: Option<bool>,
}

impl From<FreezeWindow> for FreezeDto {
    fn from(w: FreezeWindow) -> FreezeDto {
        let (start_ms, end_ms, cron, timezone, duration_ms) = match w.period {
            Period::Range { start_ms, end_ms } => (Some(start_ms), Some(end_ms), None, None, None),
            Period::Recurring {
                cron,
                timezone,
                duration_ms,
            } => (None, None, Some(cron), Some(timezone), Some(duration_ms)),
        };
        FreezeDto {
            name: w.name,
            effect: match w.effect {
                Effect::Deny => "deny",
                Effect::Allow => "allow",
            }
            .to_string(),
            start_ms,
            end_ms,
            cron,
            timezone,
            duration_ms,
            application: w.application,
            environment: w.environment,
            reason: w.reason,
            created_by: w.created_by,
            created_ms: w.created_ms,
            open_now: None,
        }
    }
}
