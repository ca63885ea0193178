//! The replay route's request and answer, converted from the engine's
//! replay report.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules;
use crate::domain::flow::FlowError;
use crate::domain::release::policy::Ruling;
use crate::engine::{
    FlowSource, Outcome, ReleaseReplay, ReplayReport, ReplayRequest, RoundChange, VerdictChange,
};

/// How many releases a replay looks at unless told.
pub const DEFAULT_LAST: u32 = 20;

/// A request to replay a flow over past releases' recorded observations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequestDto {
    /// The text of a flow file (TOML), applied or not. Give this or
    /// `flow_name`.
    #[serde(default)]
    pub flow: Option<String>,
    /// An applied flow, instead of `flow`.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub flow_name: Option<String>,
    /// The applied flow's version; its latest when absent.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub flow_version: Option<u32>,
    /// Only this application's releases.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub application: Option<String>,
    /// Only releases to this environment.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub environment: Option<String>,
    /// How many of the newest finished releases to replay (default 20).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 200)]
    pub last: Option<u32>,
}

impl ReplayRequestDto {
    /// The engine's request, or every field that breaks its rule.
    pub fn request(self) -> Result<ReplayRequest, Vec<FlowError>> {
        use crate::domain::name::check_name;
        let mut problems = Vec::new();
        for (field, value) in [
            ("flow_name", &self.flow_name),
            ("application", &self.application),
            ("environment", &self.environment),
        ] {
            if let Some(value) = value {
                problems.extend(check_name(field, value).err());
            }
        }
        let last = self.last.unwrap_or(DEFAULT_LAST);
        if !(1..=crate::engine::MAX_REPLAYED as u32).contains(&last) {
            problems.push(FlowError::worded(
                "last",
                format!(
                    "{last} releases: a replay looks at 1 to {}",
                    crate::engine::MAX_REPLAYED
                ),
            ));
        }
        let flow = match (self.flow, self.flow_name) {
            (Some(text), None) if self.flow_version.is_none() => Some(FlowSource::Text(text)),
            (None, Some(name)) => Some(FlowSource::Applied {
                name,
                version: self.flow_version,
            }),
            (Some(_), None) => {
                problems.push(FlowError::worded(
                    "flow_version",
                    "goes with `flow_name`, not with a flow file's text",
                ));
                None
            }
            _ => {
                problems.push(FlowError::worded(
                    "flow",
                    "give a flow file's text in `flow`, or an applied flow's `flow_name`",
                ));
                None
            }
        };
        match flow {
            Some(flow) if problems.is_empty() => Ok(ReplayRequest {
                flow,
                application: self.application,
                environment: self.environment,
                last: last as usize,
            }),
            _ => Err(problems),
        }
    }
}

/// What a replay found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayDto {
    #[schema(value_type = rules::Name)]
    pub flow: String,
    pub flow_version: u32,
    /// The releases replayed (those that could be).
    pub replayed: usize,
    /// Of those, the ones the flow would have decided differently.
    pub differing: usize,
    /// Every release looked at, newest first.
    pub releases: Vec<ReleaseReplayDto>,
}

/// One past release under the replayed flow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseReplayDto {
    #[schema(value_type = rules::Id)]
    pub release: String,
    #[schema(value_type = rules::Name)]
    pub application: String,
    #[schema(value_type = rules::Name)]
    pub environment: String,
    #[schema(value_type = rules::Version)]
    pub version: String,
    /// The release's status.
    pub status: String,
    /// How its checks decided it.
    pub actual: OutcomeDto,
    /// How the flow would have decided it; absent when it could not be
    /// replayed.
    pub replayed: Option<OutcomeDto>,
    /// Why it could not be replayed.
    pub skipped: Option<String>,
    /// Whether the flow would have decided it differently.
    pub differs: bool,
    /// The rounds whose verdicts or ruling came out otherwise.
    pub rounds: Vec<RoundChangeDto>,
}

/// How a release's checks came out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutcomeDto {
    /// `succeeded` (no round stopped it), `paused` or `rolled-back`.
    pub outcome: String,
    /// The stage of the round that stopped it.
    pub stage: Option<String>,
    /// Its batch, from 0.
    pub batch: Option<u32>,
    /// Its round, from 0.
    pub round: Option<u32>,
    pub reason: String,
}

/// One round that came out otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundChangeDto {
    pub stage: String,
    pub batch: Option<u32>,
    pub round: u32,
    /// The release's ruling on the round (`proceed`, `retry`, `pause`,
    /// `rollback`), if it ruled.
    pub actual: Option<String>,
    /// The replayed ruling.
    pub replayed: String,
    pub reason: String,
    pub verdicts: Vec<VerdictChangeDto>,
}

/// A check whose verdict came out otherwise: `status: summary` each.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerdictChangeDto {
    pub check: String,
    pub actual: Option<String>,
    pub replayed: Option<String>,
}

fn ruling(r: Ruling) -> String {
    match r {
        Ruling::Proceed => "proceed",
        Ruling::Retry => "retry",
        Ruling::Pause => "pause",
        Ruling::Rollback => "rollback",
    }
    .to_string()
}

impl From<Outcome> for OutcomeDto {
    fn from(o: Outcome) -> OutcomeDto {
        let outcome = match o.ruling {
            Ruling::Pause => "paused",
            Ruling::Rollback => "rolled-back",
            Ruling::Proceed | Ruling::Retry => "succeeded",
        };
        let (stage, batch, round) = match o.at {
            Some((stage, batch, round)) => (Some(stage), batch, Some(round)),
            None => (None, None, None),
        };
        OutcomeDto {
            outcome: outcome.to_string(),
            stage,
            batch,
            round,
            reason: o.reason,
        }
    }
}

impl From<VerdictChange> for VerdictChangeDto {
    fn from(v: VerdictChange) -> VerdictChangeDto {
        VerdictChangeDto {
            check: v.check,
            actual: v.actual,
            replayed: v.replayed,
        }
    }
}

impl From<RoundChange> for RoundChangeDto {
    fn from(r: RoundChange) -> RoundChangeDto {
        RoundChangeDto {
            stage: r.stage,
            batch: r.batch,
            round: r.round,
            actual: r.actual.map(ruling),
            replayed: ruling(r.replayed),
            reason: r.reason,
            verdicts: r.verdicts.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ReleaseReplay> for ReleaseReplayDto {
    fn from(r: ReleaseReplay) -> ReleaseReplayDto {
        let differs = r.differs();
        ReleaseReplayDto {
            release: r.summary.id,
            application: r.summary.application,
            environment: r.summary.environment,
            version: r.summary.version,
            status: r.summary.status.as_str().to_string(),
            actual: r.actual.into(),
            replayed: r.replayed.map(Into::into),
            skipped: r.skipped,
            differs,
            rounds: r.rounds.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ReplayReport> for ReplayDto {
    fn from(report: ReplayReport) -> ReplayDto {
        let releases: Vec<ReleaseReplayDto> = report.releases.into_iter().map(Into::into).collect();
        ReplayDto {
            flow: report.flow,
            flow_version: report.flow_version,
            replayed: releases.iter().filter(|r| r.replayed.is_some()).count(),
            differing: releases.iter().filter(|r| r.differs).count(),
            releases,
        }
    }
}
