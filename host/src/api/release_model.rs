//! The JSON shapes of releases: requests, the full state of a release, and
//! the events streamed to clients. Built from the domain, never the domain
//! itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules;

use crate::domain::plugin::{Observation, Verdict};
use crate::domain::release::evidence;
use crate::domain::release::machine::Undo;
use crate::domain::release::policy::CheckVerdict;
use crate::domain::release::{
    ApprovalRecord, DecisionRecord, Expiry, ProgressOf, ReleaseSpec, RollbackMode, State, Status,
    Step,
};
use crate::store::ReleaseSummary;

use super::event_model::EventVerdictDto;
pub use super::event_model::{EventDetailDto, EventDto};

/// `POST /api/v1/releases`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReleaseRequest {
    #[schema(value_type = rules::Name)]
    pub application: String,
    #[schema(value_type = rules::Name)]
    pub environment: String,
    #[schema(value_type = rules::Version)]
    pub version: String,
    #[schema(value_type = rules::Name)]
    pub flow: String,
    #[serde(default)]
    pub flow_version: Option<u32>,
    /// Skips bake periods and approval gates (never prechecks or
    /// verification); admins only, always recorded.
    #[serde(default)]
    pub emergency: bool,
    /// Files handed to prechecks.
    #[serde(default)]
    pub artifacts: Vec<ArtifactDto>,
    /// Why the release starts; recorded in the audit log (an emergency
    /// release should say why).
    #[serde(default)]
    #[schema(value_type = rules::Text)]
    pub comment: String,
    /// Starts the release even inside a freeze window; admins only, always
    /// recorded in the audit log.
    #[serde(default)]
    pub override_freeze: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactDto {
    pub kind: String,
    pub name: String,
    pub content: String,
}

/// Approve, reject, pause and resume bodies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    #[serde(default)]
    #[schema(value_type = rules::Text)]
    pub comment: String,
}

/// `POST /api/v1/releases/{id}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    #[schema(value_type = rules::Text)]
    pub comment: String,
    /// `regular` (batch by batch, verifying) or `emergency` (all at once).
    #[serde(default)]
    #[schema(value_type = Option<RollbackModeName>)]
    pub mode: Option<String>,
    /// Pass steps that cannot be undone.
    #[serde(default)]
    pub force: bool,
}

impl RollbackRequest {
    pub fn mode(&self) -> Result<RollbackMode, String> {
        match self.mode.as_deref() {
            None | Some("regular") => Ok(RollbackMode::Regular),
            Some("emergency") => Ok(RollbackMode::Emergency),
            Some(other) => Err(format!("mode: `{other}` is not `regular` or `emergency`")),
        }
    }
}

/// How a rollback runs, as `RollbackRequest.mode` names it.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum RollbackModeName {
    Regular,
    Emergency,
}

/// One release in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseSummaryDto {
    pub id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub flow: String,
    pub flow_version: u32,
    pub started_by: String,
    pub emergency: bool,
    pub status: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub outcome: Option<String>,
    pub progress: crate::store::SummaryProgress,
}

impl From<ReleaseSummary> for ReleaseSummaryDto {
    fn from(s: ReleaseSummary) -> ReleaseSummaryDto {
        ReleaseSummaryDto {
            id: s.id,
            application: s.application,
            environment: s.environment,
            version: s.version,
            flow: s.flow,
            flow_version: s.flow_version,
            started_by: s.started_by,
            emergency: s.emergency,
            status: s.status.as_str().to_string(),
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            outcome: s.outcome,
            progress: s.progress,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerdictDto {
    pub check: String,
    pub status: String,
    pub summary: String,
    pub metrics: BTreeMap<String, f64>,
    /// See [`EventVerdictDto::evidence`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<crate::api::model::MetricDto>,
    /// From a check the flow runs in the shadow: shown, never decides.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

fn verdict_dto(check: &str, v: &Verdict, shadow: bool) -> VerdictDto {
    let EventVerdictDto {
        status,
        summary,
        metrics,
        evidence,
    } = v.into();
    VerdictDto {
        check: check.to_string(),
        status,
        summary,
        metrics,
        evidence,
        shadow,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObservationDto {
    pub stage: String,
    pub batch: Option<u32>,
    pub at_ms: u64,
    #[serde(flatten)]
    pub verdict: VerdictDto,
    /// Taken while verifying a rollback, not the release going forward.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

impl From<&Observation> for ObservationDto {
    fn from(o: &Observation) -> ObservationDto {
        ObservationDto {
            stage: o.stage.clone(),
            batch: o.batch,
            at_ms: o.at_ms,
            verdict: verdict_dto(&o.check, &o.verdict, o.shadow),
            rollback: o.rollback,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DecisionDto {
    /// `proceed`, `retry`, `pause` or `rollback`.
    pub ruling: String,
    pub reason: String,
    pub by: String,
    pub stage: String,
    pub batch: Option<u32>,
    pub round: u32,
    /// The verdicts the decision was made on.
    pub inputs: Vec<VerdictDto>,
    /// How many observations a policy plugin weighed.
    pub observations: usize,
    pub at_ms: u64,
    /// Set when every check of the round measured nothing (no data or an
    /// error): `verified by nothing: all 3 checks returned no data`.
    pub unverified: Option<String>,
}

impl From<&DecisionRecord> for DecisionDto {
    fn from(d: &DecisionRecord) -> DecisionDto {
        DecisionDto {
            ruling: d.ruling.as_str().to_string(),
            reason: d.reason.clone(),
            by: d.by.clone(),
            stage: d.stage.clone(),
            batch: d.batch,
            round: d.round,
            inputs: d
                .inputs
                .iter()
                .map(
                    |CheckVerdict {
                         check,
                         verdict,
                         shadow,
                     }| verdict_dto(check, verdict, *shadow),
                )
                .collect(),
            observations: d.observations,
            at_ms: d.at_ms,
            unverified: evidence::nothing(&d.inputs)
                .map(|what| format!("verified by nothing: {what}")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalDto {
    pub stage: String,
    pub by: String,
    pub approved: bool,
    pub comment: String,
    pub at_ms: u64,
}

impl From<&ApprovalRecord> for ApprovalDto {
    fn from(a: &ApprovalRecord) -> ApprovalDto {
        ApprovalDto {
            stage: a.stage.clone(),
            by: a.by.clone(),
            approved: a.approved,
            comment: a.comment.clone(),
            at_ms: a.at_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateDto {
    pub stage: String,
    pub roles: Vec<String>,
    pub approvers_needed: u32,
    pub starter_may_approve: bool,
    pub opened_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub expired: bool,
    /// What an expiry does: `reject` (the release is rejected and rolled
    /// back), `rollback`, or `wait` (nothing: the gate stays open).
    pub on_expiry: String,
    /// What approvers should check, from the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Dashboards, runbooks and the like, from the flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<GateLinkDto>,
    pub approvals: Vec<ApprovalDto>,
}

/// A link shown at a gate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GateLinkDto {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepDto {
    pub index: usize,
    /// `precheck`, `deploy`, `verify`, `shift` or `approval`.
    pub kind: String,
    pub batch: Option<u32>,
    pub targets: Vec<String>,
    /// For traffic shifts, the percent sent to the new group.
    pub percent: Option<u8>,
    /// `pending` (not reached yet), `current` (under way, or waiting at a
    /// gate or a pause), `done`, `rolled-back` (a deploy undone), and where
    /// a release stopped short: `failed` (the step failed, or its checks
    /// had it rolled back), `rejected` (its gate), `stopped` (by a command:
    /// a rollback, or an abandon), with the steps after it `skipped`.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageDto {
    pub name: String,
    pub kind: String,
    pub reversible: bool,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// How long the stage took, or has taken so far.
    pub duration_ms: Option<u64>,
    pub steps: Vec<StepDto>,
    /// Set when a round of the stage's checks the release went on from
    /// measured nothing: `verified by nothing: all 3 checks returned no
    /// data`, or `verified by nothing in 1 of 4 rounds: …`.
    pub unverified: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetStateDto {
    pub id: String,
    pub address: String,
    pub group: String,
    /// `pending`, `deploying`, `deployed`, `verified` or `rolled-back`.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WeightDto {
    pub group: String,
    pub percent: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PauseDto {
    pub by: String,
    pub reason: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackDto {
    pub by: String,
    pub reason: String,
    pub mode: String,
    pub force: bool,
}

/// The full state of a release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseDto {
    pub id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub flow: String,
    pub flow_version: u32,
    pub started_by: String,
    pub emergency: bool,
    pub status: String,
    pub outcome: Option<String>,
    pub forward_only: bool,
    /// The train it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub finished_ms: Option<u64>,
    /// Index of the step under way (or next).
    pub step: usize,
    pub bake_until_ms: Option<u64>,
    pub next_check_ms: Option<u64>,
    pub stages: Vec<StageDto>,
    pub targets: Vec<TargetStateDto>,
    pub gate: Option<GateDto>,
    pub pause: Option<PauseDto>,
    pub rollback: Option<RollbackDto>,
    pub weights: Option<Vec<WeightDto>>,
    /// Long-running plugin work under way (a rollout), as its plugin last
    /// reported it.
    pub progress: Option<WorkProgressDto>,
    pub verdicts: Vec<ObservationDto>,
    pub decisions: Vec<DecisionDto>,
    pub approvals: Vec<ApprovalDto>,
    /// Events journaled so far.
    pub events: u64,
}

/// Where long-running plugin work stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkProgressDto {
    pub of: super::event_model::ProgressOfDto,
    /// The plugin's latest note (`3 of 10 replicas updated, 2 available`).
    pub note: String,
    /// When the plugin first answered in progress.
    pub since_ms: u64,
    /// When the note last changed.
    pub updated_ms: u64,
    /// When the engine asks again (as journaled; unchanged answers move it
    /// on without a journal entry).
    pub ask_at_ms: u64,
    /// When the stage's progress deadline passes.
    pub deadline_ms: u64,
}

fn mode_name(mode: RollbackMode) -> &'static str {
    match mode {
        RollbackMode::Regular => "regular",
        RollbackMode::Emergency => "emergency",
    }
}

impl ReleaseDto {
    pub fn new(spec: &ReleaseSpec, state: &State) -> ReleaseDto {
        let in_flight = state.in_flight.as_ref().map(|f| f.0);
        let undone = |pc: usize| {
            state.rollback.is_some()
                && (pc < state.pc || in_flight == Some(pc))
                && !state.undo.contains(&Undo::Deploy { pc })
        };
        let status = state.status();
        let going = matches!(
            status,
            Status::Queued | Status::Running | Status::WaitingApproval | Status::Paused
        );
        // Where the release stopped short, and why.
        let stopped_here = match (&state.rollback, status) {
            (_, Status::Rejected) => "rejected",
            (Some(rb), _) if rb.commanded => "stopped",
            (Some(_), _) | (None, Status::Failed) => "failed",
            _ => "stopped",
        };
        let step_state = |pc: usize, step: &Step| -> &'static str {
            match step {
                Step::Deploy { .. } if undone(pc) => "rolled-back",
                _ if pc < state.pc => "done",
                _ if status == Status::Queued => "pending",
                _ if pc == state.pc && going => "current",
                _ if pc == state.pc => stopped_here,
                _ if going => "pending",
                _ => "skipped",
            }
        };
        let ids = |targets: &[u32]| -> Vec<String> {
            targets
                .iter()
                .filter_map(|i| spec.targets.get(*i as usize).map(|t| t.id.clone()))
                .collect()
        };
        let mut target_states = vec!["pending"; spec.targets.len()];
        for (pc, step) in spec.steps.iter().enumerate() {
            let (targets, reached) = match step {
                Step::Deploy { targets, .. } if undone(pc) => (targets, "rolled-back"),
                Step::Deploy { targets, .. } if pc < state.pc => (targets, "deployed"),
                Step::Deploy { targets, .. } if in_flight == Some(pc) => (targets, "deploying"),
                Step::Verify { targets, .. } if pc < state.pc && state.rollback.is_none() => {
                    (targets, "verified")
                }
                _ => continue,
            };
            for t in targets {
                if let Some(s) = target_states.get_mut(*t as usize)
                    && (reached != "verified" || *s == "deployed")
                {
                    *s = reached;
                }
            }
        }
        let stages = spec
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| StageDto {
                name: stage.name.clone(),
                kind: stage.kind.clone(),
                reversible: stage.reversible,
                started_ms: state.stage_times.get(&i).map(|t| t.started_ms),
                finished_ms: state.stage_times.get(&i).and_then(|t| t.finished_ms),
                duration_ms: state.stage_times.get(&i).map(|t| {
                    t.finished_ms
                        .unwrap_or(state.updated_ms)
                        .saturating_sub(t.started_ms)
                }),
                steps: spec
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.stage() == i)
                    .map(|(pc, s)| StepDto {
                        index: pc,
                        kind: s.kind().to_string(),
                        batch: s.batch(),
                        targets: match s {
                            Step::Deploy { targets, .. } | Step::Verify { targets, .. } => {
                                ids(targets)
                            }
                            _ => Vec::new(),
                        },
                        percent: match s {
                            Step::Shift { percent, .. } => Some(*percent),
                            _ => None,
                        },
                        state: step_state(pc, s).to_string(),
                    })
                    .collect(),
                unverified: evidence::stage_note(
                    state.decisions.iter().filter(|d| d.stage == stage.name),
                ),
            })
            .collect();
        let gate = state.gate.as_ref().map(|g| {
            let stage = &spec.stages[spec.steps[g.pc].stage()];
            let rules = stage.gate.as_ref();
            GateDto {
                stage: stage.name.clone(),
                roles: rules.map(|r| r.roles.clone()).unwrap_or_default(),
                approvers_needed: rules.map_or(1, |r| r.approvers),
                starter_may_approve: rules.is_none_or(|r| r.starter_may_approve),
                opened_ms: g.opened_ms,
                expires_at_ms: g.expires_at_ms,
                expired: g.expired,
                on_expiry: match rules.map_or(Expiry::Reject, |r| r.on_expiry) {
                    Expiry::Reject => "reject",
                    Expiry::Rollback => "rollback",
                    Expiry::KeepWaiting => "wait",
                }
                .to_string(),
                instructions: rules.and_then(|r| r.instructions.clone()),
                links: rules
                    .map(|r| {
                        r.links
                            .iter()
                            .map(|l| GateLinkDto {
                                title: l.title.clone(),
                                url: l.url.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                approvals: g.approvals.iter().map(ApprovalDto::from).collect(),
            }
        });
        ReleaseDto {
            id: spec.id.clone(),
            application: spec.application.clone(),
            environment: spec.environment.clone(),
            version: spec.version.clone(),
            previous_version: spec.previous_version.clone(),
            train: spec.train.clone(),
            flow: spec.flow.clone(),
            flow_version: spec.flow_version,
            started_by: spec.started_by.clone(),
            emergency: spec.emergency,
            status: state.status().as_str().to_string(),
            outcome: state.outcome.clone(),
            forward_only: state.forward_only,
            created_ms: spec.created_ms,
            updated_ms: state.updated_ms,
            finished_ms: state.finished_ms,
            step: state.pc,
            bake_until_ms: state.bake_until_ms,
            next_check_ms: state.next_check_ms,
            stages,
            targets: spec
                .targets
                .iter()
                .zip(target_states)
                .map(|(t, s)| TargetStateDto {
                    id: t.id.clone(),
                    address: t.address.clone(),
                    group: t.group.clone(),
                    state: s.to_string(),
                })
                .collect(),
            gate,
            pause: state.pause.as_ref().map(|p| PauseDto {
                by: p.by.clone(),
                reason: p.reason.clone(),
                at_ms: p.at_ms,
            }),
            rollback: state.rollback.as_ref().map(|r| RollbackDto {
                by: r.by.clone(),
                reason: r.reason.clone(),
                mode: mode_name(r.mode).to_string(),
                force: r.force,
            }),
            weights: state.weights.as_ref().map(|ws| {
                ws.iter()
                    .map(|w| WeightDto {
                        group: w.group.clone(),
                        percent: w.percent,
                    })
                    .collect()
            }),
            progress: state.progress.as_ref().map(|p| {
                let stage = match &p.of {
                    ProgressOf::Deploy { pc, .. } | ProgressOf::Shift { pc, .. } => {
                        spec.steps.get(*pc).map(Step::stage)
                    }
                    ProgressOf::Rollback { pcs, .. } => pcs
                        .first()
                        .and_then(|pc| spec.steps.get(*pc))
                        .map(Step::stage),
                    ProgressOf::RestoreTraffic { stage, .. } => Some(*stage),
                };
                let allowed = stage
                    .and_then(|s| spec.stages.get(s))
                    .map_or(0, |s| s.progress_deadline_ms);
                WorkProgressDto {
                    of: p.of.clone().into(),
                    note: p.note.clone(),
                    since_ms: p.since_ms,
                    updated_ms: p.at_ms,
                    ask_at_ms: p.ask_at_ms,
                    deadline_ms: p.since_ms.saturating_add(allowed),
                }
            }),
            verdicts: state
                .observations
                .iter()
                .map(ObservationDto::from)
                .collect(),
            decisions: state.decisions.iter().map(DecisionDto::from).collect(),
            approvals: state.approvals.iter().map(ApprovalDto::from).collect(),
            events: state.events,
        }
    }
}

/// `GET/POST /api/v1/clock`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClockDto {
    pub now_ms: u64,
    pub manual: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    #[serde(default)]
    pub advance_ms: Option<u64>,
    #[serde(default)]
    pub now_ms: Option<u64>,
}

/// One member of `POST /api/v1/trains`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainMemberRequest {
    /// Each application is in a train once.
    #[schema(value_type = rules::Name)]
    pub application: String,
    #[schema(value_type = rules::Name)]
    pub environment: String,
    #[schema(value_type = rules::Version)]
    pub version: String,
    #[schema(value_type = rules::Name)]
    pub flow: String,
    #[serde(default)]
    pub flow_version: Option<u32>,
    /// Applications of the train that must succeed first: other members,
    /// without a cycle.
    #[serde(default)]
    #[schema(value_type = Vec<rules::Name>)]
    pub depends_on: Vec<String>,
}

/// `POST /api/v1/trains`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTrainRequest {
    /// A name to know the train by; none by default.
    #[serde(default)]
    #[schema(value_type = Option<rules::Name>)]
    pub name: Option<String>,
    #[schema(min_items = 1)]
    pub members: Vec<TrainMemberRequest>,
}

/// One member of a train as shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrainMemberDto {
    pub application: String,
    pub environment: String,
    pub version: String,
    pub flow: String,
    pub depends_on: Vec<String>,
    /// `waiting`, `skipped`, or the status of its release.
    pub status: String,
    pub release: Option<String>,
}

/// A train.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrainDto {
    pub id: String,
    pub name: String,
    pub status: String,
    pub started_by: String,
    pub created_ms: u64,
    pub rollback_requested: bool,
    pub problem: Option<String>,
    /// The members' applications in dependency order.
    pub order: Vec<String>,
    pub members: Vec<TrainMemberDto>,
}

impl From<crate::engine::TrainView> for TrainDto {
    fn from(view: crate::engine::TrainView) -> TrainDto {
        use crate::domain::train::MemberStatus;
        let r = view.record;
        TrainDto {
            order: view
                .order
                .iter()
                .filter_map(|i| r.members.get(*i).map(|m| m.application.clone()))
                .collect(),
            members: r
                .members
                .iter()
                .zip(&view.members)
                .zip(&r.releases)
                .map(|((m, status), release)| TrainMemberDto {
                    application: m.application.clone(),
                    environment: m.environment.clone(),
                    version: m.version.clone(),
                    flow: m.flow.clone(),
                    depends_on: m.depends_on.clone(),
                    status: match status {
                        MemberStatus::Waiting => "waiting".to_string(),
                        MemberStatus::Skipped => "skipped".to_string(),
                        MemberStatus::Release(s) => s.as_str().to_string(),
                    },
                    release: release.clone(),
                })
                .collect(),
            id: r.id,
            name: r.name,
            status: r.status.as_str().to_string(),
            started_by: r.started_by,
            created_ms: r.created_ms,
            rollback_requested: r.rollback_requested,
            problem: r.problem,
        }
    }
}

/// One member of a train's plan.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlannedMemberDto {
    pub application: String,
    pub environment: String,
    pub version: String,
    pub flow: String,
    pub depends_on: Vec<String>,
    pub stages: Vec<super::model::PlannedStageDto>,
}
