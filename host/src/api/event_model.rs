//! The JSON shape of a release's events, as listed and streamed: a typed
//! detail per kind, built from the journal's events. The journal's stored
//! form stays private to the domain and the store; clients (the command
//! line among them) read this one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::TargetResultDto;
use super::release_model::{DecisionDto, WeightDto};
use crate::domain::plugin::{GroupWeight, TargetResult, Verdict};
use crate::domain::release::policy::CheckVerdict;
use crate::domain::release::{Event, ProgressOf, RollbackMode};

/// One journaled event, as listed and streamed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventDto {
    pub release: String,
    pub seq: u64,
    /// The event's name, such as `deployed` or `gate-opened`.
    pub kind: String,
    pub at_ms: u64,
    /// The release's status after the event (for streamed events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What the event says; its `event` field repeats the kind.
    pub detail: EventDetailDto,
}

impl EventDto {
    pub fn new(release: &str, seq: u64, event: &Event, status: Option<&str>) -> EventDto {
        EventDto {
            release: release.to_string(),
            seq,
            kind: event.name().to_string(),
            at_ms: event.at_ms(),
            status: status.map(str::to_string),
            detail: EventDetailDto::from(event),
        }
    }
}

/// A check's verdict within an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventVerdictDto {
    /// `pass`, `fail`, `inconclusive`, `no-data` or `error`.
    pub status: String,
    pub summary: String,
    pub metrics: BTreeMap<String, f64>,
    /// The metrics that carry evidence beside their value (a baseline,
    /// sample sizes, the range allowed, their own status), in the check's
    /// order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<crate::api::model::MetricDto>,
}

impl From<&Verdict> for EventVerdictDto {
    fn from(v: &Verdict) -> EventVerdictDto {
        EventVerdictDto {
            status: v.status.as_str().to_string(),
            summary: v.summary.clone(),
            metrics: v
                .metrics
                .iter()
                .map(|m| (m.name.clone(), m.value))
                .collect(),
            evidence: v
                .metrics
                .iter()
                .filter(|m| m.has_evidence())
                .cloned()
                .map(Into::into)
                .collect(),
        }
    }
}

/// One check's verdict in a round, named `name@version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckVerdictDto {
    pub check: String,
    pub verdict: EventVerdictDto,
    /// From a check the flow runs in the shadow: shown, never decides.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// A target found unhealthy before its batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnhealthyTargetDto {
    pub target: String,
    pub summary: String,
}

/// The long-running work a progress report is about (`work`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "work", rename_all = "kebab-case")]
pub enum ProgressOfDto {
    Deploy { pc: usize, attempt: u32 },
    Shift { pc: usize, attempt: u32 },
    Rollback { pcs: Vec<usize>, attempt: u32 },
    RestoreTraffic { stage: usize, attempt: u32 },
}

impl From<ProgressOf> for ProgressOfDto {
    fn from(of: ProgressOf) -> ProgressOfDto {
        match of {
            ProgressOf::Deploy { pc, attempt } => ProgressOfDto::Deploy { pc, attempt },
            ProgressOf::Shift { pc, attempt } => ProgressOfDto::Shift { pc, attempt },
            ProgressOf::Rollback { pcs, attempt } => ProgressOfDto::Rollback { pcs, attempt },
            ProgressOf::RestoreTraffic { stage, attempt } => {
                ProgressOfDto::RestoreTraffic { stage, attempt }
            }
        }
    }
}

/// What an event says, by kind (`event`). Places are step indices (`pc`,
/// `pcs`) into the release's program, as `ReleaseDto.stages[].steps[]
/// .index` numbers them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventDetailDto {
    Started {
        by: String,
    },
    PrecheckDone {
        pc: usize,
        check: String,
        verdict: EventVerdictDto,
        forward_only: bool,
    },
    TargetsChecked {
        pc: usize,
        unhealthy: Vec<UnhealthyTargetDto>,
    },
    DeployStarted {
        pc: usize,
        attempt: u32,
        key: String,
    },
    Deployed {
        pc: usize,
        attempt: u32,
        results: Vec<TargetResultDto>,
    },
    DeployFailed {
        pc: usize,
        attempt: u32,
        message: String,
        retryable: bool,
    },
    /// Long-running work is still under way: the plugin's note, and when
    /// the engine asks again.
    Progressed {
        of: ProgressOfDto,
        note: String,
        since_ms: u64,
        ask_at_ms: u64,
    },
    BakeStarted {
        pc: usize,
        until_ms: u64,
    },
    Verified {
        pc: usize,
        round: u32,
        verdicts: Vec<CheckVerdictDto>,
    },
    Decided {
        pc: usize,
        decision: DecisionDto,
    },
    TrafficShifted {
        pc: usize,
        weights: Vec<WeightDto>,
    },
    TrafficFailed {
        pc: usize,
        attempt: u32,
        message: String,
        retryable: bool,
    },
    GateOpened {
        pc: usize,
        expires_at_ms: Option<u64>,
    },
    GateSkipped {
        pc: usize,
    },
    Approved {
        pc: usize,
        by: String,
        comment: String,
    },
    Rejected {
        pc: usize,
        by: String,
        comment: String,
    },
    GateExpired {
        pc: usize,
    },
    Paused {
        by: String,
        reason: String,
    },
    Resumed {
        by: String,
    },
    RollbackStarted {
        by: String,
        reason: String,
        /// `regular` or `emergency`.
        mode: String,
        force: bool,
    },
    TrafficRestored {
        stage: usize,
        weights: Vec<WeightDto>,
    },
    RollbackBatchStarted {
        pcs: Vec<usize>,
        attempt: u32,
        key: String,
    },
    RolledBackBatch {
        pcs: Vec<usize>,
        attempt: u32,
        results: Vec<TargetResultDto>,
    },
    RollbackFailed {
        pcs: Vec<usize>,
        attempt: u32,
        message: String,
        retryable: bool,
    },
    RollbackVerified {
        pcs: Vec<usize>,
        verdicts: Vec<CheckVerdictDto>,
    },
    Blocked {
        reason: String,
    },
    Finished {
        /// The release's final status.
        status: String,
        reason: String,
    },
}

fn results(results: &[TargetResult]) -> Vec<TargetResultDto> {
    results
        .iter()
        .map(|r| TargetResultDto {
            target_id: r.target_id.clone(),
            ok: r.ok,
            message: r.message.clone(),
        })
        .collect()
}

fn verdicts(verdicts: &[CheckVerdict]) -> Vec<CheckVerdictDto> {
    verdicts
        .iter()
        .map(|v| CheckVerdictDto {
            check: v.check.clone(),
            verdict: (&v.verdict).into(),
            shadow: v.shadow,
        })
        .collect()
}

fn weights(weights: &[GroupWeight]) -> Vec<WeightDto> {
    weights
        .iter()
        .map(|w| WeightDto {
            group: w.group.clone(),
            percent: w.percent,
        })
        .collect()
}

impl From<&Event> for EventDetailDto {
    fn from(event: &Event) -> EventDetailDto {
        use EventDetailDto as D;
        match event.clone() {
            Event::Started { by, .. } => D::Started { by },
            Event::PrecheckDone {
                pc,
                check,
                verdict,
                forward_only,
                ..
            } => D::PrecheckDone {
                pc,
                check,
                verdict: (&verdict).into(),
                forward_only,
            },
            Event::TargetsChecked { pc, unhealthy, .. } => D::TargetsChecked {
                pc,
                unhealthy: unhealthy
                    .into_iter()
                    .map(|u| UnhealthyTargetDto {
                        target: u.target,
                        summary: u.summary,
                    })
                    .collect(),
            },
            Event::DeployStarted {
                pc, attempt, key, ..
            } => D::DeployStarted { pc, attempt, key },
            Event::Deployed {
                pc,
                attempt,
                results: r,
                ..
            } => D::Deployed {
                pc,
                attempt,
                results: results(&r),
            },
            Event::DeployFailed {
                pc,
                attempt,
                message,
                retryable,
                ..
            } => D::DeployFailed {
                pc,
                attempt,
                message,
                retryable,
            },
            Event::Progressed {
                of,
                note,
                since_ms,
                ask_at_ms,
                ..
            } => D::Progressed {
                of: of.into(),
                note,
                since_ms,
                ask_at_ms,
            },
            Event::BakeStarted { pc, until_ms, .. } => D::BakeStarted { pc, until_ms },
            Event::Verified {
                pc,
                round,
                verdicts: v,
                ..
            } => D::Verified {
                pc,
                round,
                verdicts: verdicts(&v),
            },
            Event::Decided { pc, decision } => D::Decided {
                pc,
                decision: (&decision).into(),
            },
            Event::TrafficShifted { pc, weights: w, .. } => D::TrafficShifted {
                pc,
                weights: weights(&w),
            },
            Event::TrafficFailed {
                pc,
                attempt,
                message,
                retryable,
                ..
            } => D::TrafficFailed {
                pc,
                attempt,
                message,
                retryable,
            },
            Event::GateOpened {
                pc, expires_at_ms, ..
            } => D::GateOpened { pc, expires_at_ms },
            Event::GateSkipped { pc, .. } => D::GateSkipped { pc },
            Event::Approved {
                pc, by, comment, ..
            } => D::Approved { pc, by, comment },
            Event::Rejected {
                pc, by, comment, ..
            } => D::Rejected { pc, by, comment },
            Event::GateExpired { pc, .. } => D::GateExpired { pc },
            Event::Paused { by, reason, .. } => D::Paused { by, reason },
            Event::Resumed { by, .. } => D::Resumed { by },
            Event::RollbackStarted {
                by,
                reason,
                mode,
                force,
                ..
            } => D::RollbackStarted {
                by,
                reason,
                mode: match mode {
                    RollbackMode::Regular => "regular",
                    RollbackMode::Emergency => "emergency",
                }
                .to_string(),
                force,
            },
            Event::TrafficRestored {
                stage, weights: w, ..
            } => D::TrafficRestored {
                stage,
                weights: weights(&w),
            },
            Event::RollbackBatchStarted {
                pcs, attempt, key, ..
            } => D::RollbackBatchStarted { pcs, attempt, key },
            Event::RolledBackBatch {
                pcs,
                attempt,
                results: r,
                ..
            } => D::RolledBackBatch {
                pcs,
                attempt,
                results: results(&r),
            },
            Event::RollbackFailed {
                pcs,
                attempt,
                message,
                retryable,
                ..
            } => D::RollbackFailed {
                pcs,
                attempt,
                message,
                retryable,
            },
            Event::RollbackVerified {
                pcs, verdicts: v, ..
            } => D::RollbackVerified {
                pcs,
                verdicts: verdicts(&v),
            },
            Event::Blocked { reason, .. } => D::Blocked { reason },
            Event::Finished { status, reason, .. } => D::Finished {
                status: status.as_str().to_string(),
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detail names its kind as the event's name does, for every kind
    /// the journal holds, so a client can match on either.
    #[test]
    fn every_kind_is_tagged_with_the_events_name() {
        let events = [
            Event::Started {
                by: "rita".into(),
                at_ms: 1,
            },
            Event::Finished {
                status: crate::domain::release::Status::Abandoned,
                reason: "stuck".into(),
                at_ms: 2,
            },
            Event::RollbackStarted {
                by: "rita".into(),
                reason: "bad".into(),
                mode: RollbackMode::Emergency,
                force: true,
                at_ms: 3,
            },
        ];
        for event in &events {
            let json = serde_json::to_value(EventDetailDto::from(event)).unwrap();
            assert_eq!(json["event"], event.name(), "{json}");
        }
        let json = serde_json::to_value(EventDetailDto::from(&events[1])).unwrap();
        assert_eq!(json["status"], "abandoned");
        let json = serde_json::to_value(EventDetailDto::from(&events[2])).unwrap();
        assert_eq!(
            (&json["mode"], &json["force"]),
            (&"emergency".into(), &true.into())
        );
    }
}
