//! Schedules: cron-triggered releases. What a schedule is, which of its
//! fires are due given the last one journaled and the time now, and what
//! became of each fire. Pure: time arrives as arguments.

pub mod cron;
pub mod freeze;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

pub use self::cron::Cron;
use crate::domain::flow::FlowError;

/// How a fire chooses the version it ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum VersionSource {
    /// Always this version.
    Fixed { version: String },
    /// The body of a GET to this URL at fire time: plain text, or a JSON
    /// object's `version` field (a CI system's latest green build).
    Url { url: String },
}

/// What happens to fires that fell while the daemon was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum MissedRun {
    /// They are skipped.
    Skip,
    /// The newest runs once, unless a fire on time covers it.
    #[default]
    RunOnce,
    /// The newest `max` run, oldest first; older ones are skipped.
    CatchUp { max: u32 },
}

/// What a fire does when the environment's previous release still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// The fire is skipped.
    #[default]
    Skip,
    /// The release queues behind the running one.
    Queue,
    /// The running release, if this schedule started it, is rolled back,
    /// and the new one queues behind its rollback.
    Supersede,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub application: String,
    pub environment: String,
    pub flow: String,
    pub flow_version: Option<u32>,
    pub version: VersionSource,
    pub missed: MissedRun,
    pub overlap: Overlap,
    pub enabled: bool,
    /// Fires at or before this instant are not the schedule's: it was
    /// created or last enabled then.
    pub since_ms: u64,
    pub created_by: String,
    pub created_ms: u64,
}

/// The most catch-up runs a schedule may ask for.
pub const MAX_CATCH_UP: u32 = 100;

impl Schedule {
    /// Checks every field, reporting each problem with its field, and
    /// parses the expression.
    pub fn check(&self) -> Result<Cron, Vec<FlowError>> {
        let mut problems = Vec::new();
        let name_checks = [
            ("name", &self.name),
            ("application", &self.application),
            ("environment", &self.environment),
            ("flow", &self.flow),
        ];
        for (field, value) in name_checks {
            problems.extend(crate::domain::name::check_name(field, value).err());
        }
        match &self.version {
            VersionSource::Fixed { version } => {
                problems.extend(crate::domain::name::check_version("version", version).err());
            }
            VersionSource::Url { url } => {
                problems.extend(crate::domain::name::check_url("version_url", url).err());
            }
        }
        if let MissedRun::CatchUp { max } = self.missed
            && !(1..=MAX_CATCH_UP).contains(&max)
        {
            problems.push(FlowError::worded(
                "catch_up_max",
                format!("must be between 1 and {MAX_CATCH_UP}"),
            ));
        }
        let cron = Cron::parse(&self.cron, &self.timezone);
        match cron {
            Ok(cron) if problems.is_empty() => Ok(cron),
            Ok(_) => Err(problems),
            Err(e) => {
                problems.push(e);
                Err(problems)
            }
        }
    }
}

/// Why a fire did not start a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// It fell while the daemon was not running, and the missed-run policy
    /// does not run it.
    Missed,
    /// A freeze window was open.
    Frozen,
    /// The previous release was still running and the overlap policy skips.
    Overlap,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Missed => "missed",
            SkipReason::Frozen => "frozen",
            SkipReason::Overlap => "overlap",
        }
    }
}

/// What became of a fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Journaled; the release, with this id, is about to start.
    Pending {
        release: String,
    },
    /// The release started (or queued behind the running one).
    Started {
        release: String,
        queued: bool,
    },
    Skipped {
        reason: SkipReason,
        message: String,
    },
    /// The release could not start: the version could not be resolved, or
    /// the engine refused.
    Failed {
        message: String,
    },
}

impl Outcome {
    /// A short word for listings and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Pending { .. } => "pending",
            Outcome::Started { queued: false, .. } => "started",
            Outcome::Started { queued: true, .. } => "queued",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// The release the fire started, if any.
    pub fn release(&self) -> Option<&str> {
        match self {
            Outcome::Pending { release } | Outcome::Started { release, .. } => Some(release),
            _ => None,
        }
    }
}

/// One fire of a schedule, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fire {
    pub schedule: String,
    /// The instant the schedule named.
    pub at_ms: u64,
    /// When the daemon handled it.
    pub fired_ms: u64,
    /// The version shipped, once known.
    pub version: Option<String>,
    pub outcome: Outcome,
}

/// What to do with one due fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run,
    Skip(String),
}

/// The most skipped fires listed one by one; older ones are counted in the
/// oldest listed.
pub const MAX_LISTED_SKIPS: usize = 100;

/// The fires in `(after_ms, now_ms]`, oldest first, each with what to do.
/// A fire more than `grace_ms` old was missed (the daemon was not running
/// at the time), and the missed-run policy decides whether it runs.
pub fn due(
    cron: &Cron,
    policy: MissedRun,
    after_ms: u64,
    now_ms: u64,
    grace_ms: u64,
) -> Vec<(u64, Decision)> {
    let late_before = now_ms.saturating_sub(grace_ms);
    let mut missed: VecDeque<u64> = VecDeque::new();
    let mut earlier = 0usize;
    let mut on_time = Vec::new();
    for at in cron.after(after_ms).take_while(|at| *at <= now_ms) {
        if at >= late_before {
            on_time.push(at);
            continue;
        }
        missed.push_back(at);
        if missed.len() > MAX_LISTED_SKIPS + MAX_CATCH_UP as usize {
            missed.pop_front();
            earlier += 1;
        }
    }
    let runs = match policy {
        MissedRun::Skip => 0,
        MissedRun::RunOnce if on_time.is_empty() => 1,
        MissedRun::RunOnce => 0,
        MissedRun::CatchUp { max } => max as usize,
    };
    let run_from = missed.len().saturating_sub(runs);
    let total_missed = missed.len() + earlier;
    let mut out: Vec<(u64, Decision)> = Vec::new();
    let listed_from = run_from.saturating_sub(MAX_LISTED_SKIPS);
    let unlisted = earlier + listed_from;
    for (i, at) in missed.iter().enumerate() {
        if i >= run_from {
            out.push((*at, Decision::Run));
        } else if i >= listed_from {
            let why = match policy {
                MissedRun::Skip => "the missed-run policy is skip".to_string(),
                MissedRun::RunOnce if !on_time.is_empty() => {
                    "a fire on time covers it (run-once)".to_string()
                }
                MissedRun::RunOnce => "only the newest missed fire runs (run-once)".to_string(),
                MissedRun::CatchUp { max } => format!("beyond the catch-up limit of {max}"),
            };
            let mut message =
                format!("missed while the daemon was not running ({total_missed} missed); {why}");
            if i == listed_from && unlisted > 0 {
                message.push_str(&format!("; {unlisted} older missed fires are not listed"));
            }
            out.push((*at, Decision::Skip(message)));
        }
    }
    out.extend(on_time.into_iter().map(|at| (at, Decision::Run)));
    out
}
