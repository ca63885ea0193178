//! Replaying analyses: a flow's checks and policy run again over what past
//! releases' checks recorded, to show which releases the flow would have
//! decided differently. Nothing is journaled and nothing leaves the host:
//! each check's outbound HTTP is answered from the recording of its round,
//! and its clock reads what the recorded check read.

use std::collections::BTreeMap;

use super::{Engine, Error, perform};
use crate::catalog;
use crate::domain::flow::Flow;
use crate::domain::plugin::{Call, Observation};
use crate::domain::recording::CallRecording;
use crate::domain::release::policy::{CheckVerdict, Ruling};
use crate::domain::release::replay::{PastRound, Tally, past_rounds};
use crate::domain::release::{ReleaseSpec, StageSpec, Start, compile, evidence};
use crate::plugins::Tape;
use crate::store::{ReleaseSummary, StoredRecording};

/// The most releases one replay looks at.
pub const MAX_REPLAYED: usize = 200;

/// Which flow a replay runs.
#[derive(Debug, Clone)]
pub enum FlowSource {
    /// A flow file's text, applied or not.
    Text(String),
    /// An applied flow; `None` names its latest version.
    Applied { name: String, version: Option<u32> },
}

/// What a replay asks for.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub flow: FlowSource,
    pub application: Option<String>,
    pub environment: Option<String>,
    /// How many of the newest finished releases to replay.
    pub last: usize,
}

/// How a release's checks came out: the first round that paused or rolled
/// back, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Proceed` when no round stopped the release.
    pub ruling: Ruling,
    /// The round that stopped it: stage, batch and round.
    pub at: Option<(String, Option<u32>, u32)>,
    pub reason: String,
}

/// A verdict of one check that came out otherwise on replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictChange {
    pub check: String,
    /// `status: summary` of the release's verdict, if the check ran then.
    pub actual: Option<String>,
    /// `status: summary` of the replayed verdict, if the flow has the check.
    pub replayed: Option<String>,
}

/// One round whose ruling came out otherwise on replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundChange {
    pub stage: String,
    pub batch: Option<u32>,
    pub round: u32,
    pub actual: Option<Ruling>,
    pub replayed: Ruling,
    pub reason: String,
    pub verdicts: Vec<VerdictChange>,
}

/// One past release, replayed or not.
#[derive(Debug, Clone)]
pub struct ReleaseReplay {
    pub summary: ReleaseSummary,
    pub actual: Outcome,
    /// `None` when the release could not be replayed (see `skipped`).
    pub replayed: Option<Outcome>,
    /// Why the release was not replayed.
    pub skipped: Option<String>,
    pub rounds: Vec<RoundChange>,
}

impl ReleaseReplay {
    /// Whether the flow would have decided the release otherwise.
    pub fn differs(&self) -> bool {
        self.replayed.as_ref().is_some_and(|r| {
            r.ruling != self.actual.ruling
                || (r.ruling != Ruling::Proceed && r.at != self.actual.at)
        })
    }
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub flow: String,
    pub flow_version: u32,
    pub releases: Vec<ReleaseReplay>,
}

impl Engine {
    /// Replays a flow over the newest finished releases with recordings.
    #[tracing::instrument(skip_all)]
    pub async fn replay(&self, request: ReplayRequest) -> Result<ReplayReport, Error> {
        let flow = self.replay_flow(&request.flow)?;
        let last = request.last.clamp(1, MAX_REPLAYED);
        let chosen: Vec<ReleaseSummary> = self
            .list()?
            .into_iter()
            .filter(|s| s.status.is_terminal())
            .filter(|s| {
                request
                    .application
                    .as_ref()
                    .is_none_or(|a| *a == s.application)
            })
            .filter(|s| {
                request
                    .environment
                    .as_ref()
                    .is_none_or(|e| *e == s.environment)
            })
            .take(last)
            .collect();
        let mut releases = Vec::with_capacity(chosen.len());
        for summary in chosen {
            releases.push(self.replay_release(&flow, summary).await?);
        }
        Ok(ReplayReport {
            flow: flow.name.clone(),
            flow_version: flow.version,
            releases,
        })
    }

    fn replay_flow(&self, source: &FlowSource) -> Result<Flow, Error> {
        let catalog = &self.inner.catalog;
        let found = match source {
            FlowSource::Text(text) => catalog.check(text),
            FlowSource::Applied { name, version } => catalog.flow(name, *version),
        };
        found.map_err(|e| match e {
            catalog::Error::Invalid(errors) => Error::Invalid(errors),
            catalog::Error::NotFound(m) => Error::NotFound(m),
            other => Error::Catalog(other),
        })
    }

    /// Replays one release, or says why it cannot be.
    async fn replay_release(
        &self,
        flow: &Flow,
        summary: ReleaseSummary,
    ) -> Result<ReleaseReplay, Error> {
        let store = &self.inner.store;
        let spec = store
            .release_spec(&summary.id)?
            .ok_or_else(|| Error::NotFound(format!("no release `{}`", summary.id)))?;
        let rounds = past_rounds(&store.journal(&summary.id)?);
        let recordings = store.recordings(&summary.id)?;
        let actual = actual_outcome(&rounds);
        let mut replay = ReleaseReplay {
            summary,
            actual,
            replayed: None,
            skipped: None,
            rounds: Vec::new(),
        };
        let under = match self.respec(flow, &spec) {
            Ok(under) => under,
            Err(why) => {
                replay.skipped = Some(why);
                return Ok(replay);
            }
        };
        if let Some(why) = unreplayable(&spec, &rounds, &recordings) {
            replay.skipped = Some(why);
            return Ok(replay);
        }
        let mut tally = Tally::default();
        let mut observations = Vec::new();
        let mut outcome = None;
        for past in &rounds {
            let step = &spec.steps[past.pc];
            let name = &spec.stages[step.stage()].name;
            let Some(stage) = under.stages.iter().find(|s| &s.name == name) else {
                continue;
            };
            if stage.verification.checks.is_empty() {
                continue;
            }
            let recorded: Vec<&StoredRecording> = recordings
                .iter()
                .filter(|r| r.pc == past.pc && r.round == past.round)
                .collect();
            let verdicts = self.rerun(&spec, stage, &recorded).await;
            let place = format!(
                "at stage {name}{}",
                step.batch()
                    .map_or(String::new(), |b| format!(", batch {}", b + 1))
            );
            let bake_left = past
                .bake_until_ms
                .map_or(0, |u| u.saturating_sub(past.at_ms));
            let (ruling, reason) = match &stage.verification.policy {
                None => tally.rule(
                    past.pc,
                    name,
                    &stage.verification,
                    &verdicts,
                    &place,
                    bake_left,
                ),
                Some(policy) => {
                    observations.extend(verdicts.iter().filter(|v| !v.shadow).map(|v| {
                        Observation {
                            check: v.check.clone(),
                            stage: name.clone(),
                            batch: step.batch(),
                            verdict: v.verdict.clone(),
                            at_ms: past.at_ms,
                            shadow: false,
                            rollback: false,
                        }
                    }));
                    let ctx = spec.context(step.stage(), step.batch(), past.round, policy);
                    let call = Call::Decide {
                        ctx,
                        observations: observations.clone(),
                    };
                    let (answer, _) = perform::taped_call(
                        &self.inner.registry,
                        policy,
                        call,
                        Tape::Replay {
                            recording: CallRecording::default(),
                            release: spec.id.clone(),
                        },
                    )
                    .await;
                    let decision = match answer {
                        Ok(crate::domain::plugin::Output::Decision(d)) => Ok(d),
                        Ok(other) => Err(format!("an unexpected output: {other:?}")),
                        Err(fault) => Err(fault.message),
                    };
                    let (ruling, reason, _, _) = evidence::plugin_ruling(
                        &stage.verification.checks,
                        &verdicts,
                        decision,
                        &policy.label(),
                        &place,
                        bake_left,
                    );
                    (ruling, reason)
                }
            };
            let actual = past.decision.as_ref().map(|d| d.ruling);
            let changed = verdict_changes(&past.verdicts, &verdicts);
            if actual != Some(ruling) || !changed.is_empty() {
                replay.rounds.push(RoundChange {
                    stage: name.clone(),
                    batch: step.batch(),
                    round: past.round,
                    actual,
                    replayed: ruling,
                    reason: reason.clone(),
                    verdicts: changed,
                });
            }
            if matches!(ruling, Ruling::Pause | Ruling::Rollback) {
                outcome = Some(Outcome {
                    ruling,
                    at: Some((name.clone(), step.batch(), past.round)),
                    reason,
                });
                break;
            }
        }
        replay.replayed = Some(outcome.unwrap_or_else(|| Outcome {
            ruling: Ruling::Proceed,
            at: None,
            reason: "every recorded round would have proceeded".to_string(),
        }));
        Ok(replay)
    }

    /// The flow compiled for the release's targets, with its plugins pinned
    /// as a release of it would pin them now.
    fn respec(&self, flow: &Flow, spec: &ReleaseSpec) -> Result<ReleaseSpec, String> {
        let registry = &self.inner.registry;
        let resolve = |u: &crate::domain::flow::PluginUse| {
            registry
                .release_version(&u.plugin, &u.version)
                .map_err(|e| e.to_string())
        };
        let live_group = spec.stages.iter().find_map(|s| s.live_group.clone());
        compile(
            flow,
            Start {
                id: spec.id.clone(),
                application: spec.application.clone(),
                environment: spec.environment.clone(),
                version: spec.version.clone(),
                previous_version: spec.previous_version.clone(),
                started_by: spec.started_by.clone(),
                emergency: spec.emergency,
                created_ms: spec.created_ms,
                artifacts: spec.artifacts.clone(),
                train: spec.train.clone(),
            },
            spec.targets.clone(),
            live_group.as_deref(),
            &resolve,
        )
        .map_err(|e| format!("the flow does not fit the release: {e}"))
    }

    /// Runs a stage's checks as the flow names them over one recorded
    /// round: each with the round's context and clock, its HTTP answered
    /// from what the round's checks recorded.
    async fn rerun(
        &self,
        spec: &ReleaseSpec,
        stage: &StageSpec,
        recorded: &[&StoredRecording],
    ) -> Vec<CheckVerdict> {
        let Some(first) = recorded.first() else {
            return Vec::new();
        };
        // Every exchange of the round may answer any check: a changed flow
        // may ask the same store through another check.
        let exchanges: Vec<_> = recorded
            .iter()
            .flat_map(|r| r.recording.call.exchanges.iter().cloned())
            .collect();
        let stage_index = spec
            .stages
            .iter()
            .position(|s| s.name == first.recording.stage)
            .unwrap_or(0);
        let mut verdicts = Vec::with_capacity(stage.verification.checks.len());
        for check in &stage.verification.checks {
            let label = check.label();
            let same = recorded
                .iter()
                .find(|r| r.recording.check == label)
                .unwrap_or(first);
            let r = &same.recording;
            let mut ctx = spec.context(stage_index, r.batch, r.attempt, check);
            ctx.deployed_at_ms = r.deployed_at_ms;
            let tape = Tape::Replay {
                recording: CallRecording {
                    exchanges: exchanges.clone(),
                    ..r.call.clone()
                },
                release: spec.id.clone(),
            };
            let targets = targets_of(spec, &r.targets);
            let (answer, taped) = perform::taped_call(
                &self.inner.registry,
                check,
                Call::Verify { ctx, targets },
                tape,
            )
            .await;
            let verdict = match taped.unrecorded.first() {
                Some(missing) => perform::error_verdict(format!("{label}: {missing}")),
                None => perform::verdict_of(check, answer),
            };
            verdicts.push(CheckVerdict {
                check: label,
                verdict,
                shadow: check.shadow,
            });
        }
        verdicts
    }
}

/// The targets a round checked, as its recording names them.
fn targets_of(spec: &ReleaseSpec, ids: &[String]) -> Vec<crate::domain::plugin::Target> {
    spec.targets
        .iter()
        .filter(|t| ids.contains(&t.id))
        .cloned()
        .collect()
}

/// How the release's own checks came out.
fn actual_outcome(rounds: &[PastRound]) -> Outcome {
    rounds
        .iter()
        .find_map(|r| {
            let d = r.decision.as_ref()?;
            matches!(d.ruling, Ruling::Pause | Ruling::Rollback).then(|| Outcome {
                ruling: d.ruling,
                at: Some((d.stage.clone(), d.batch, d.round)),
                reason: d.reason.clone(),
            })
        })
        .unwrap_or(Outcome {
            ruling: Ruling::Proceed,
            at: None,
            reason: "every round proceeded".to_string(),
        })
}

/// Why a release's recordings cannot replay it, if they cannot: a round
/// without recordings (one run before they were kept), or one whose
/// recordings are not whole.
fn unreplayable(
    spec: &ReleaseSpec,
    rounds: &[PastRound],
    recordings: &[StoredRecording],
) -> Option<String> {
    if rounds.is_empty() {
        return Some("it ran no check rounds".to_string());
    }
    // A round of a stage without checks saw nothing, and needs no
    // recording.
    for past in rounds.iter().filter(|r| !r.verdicts.is_empty()) {
        let stage = spec
            .steps
            .get(past.pc)
            .and_then(|s| spec.stages.get(s.stage()))
            .map_or("?", |s| s.name.as_str());
        let mut of_round = recordings
            .iter()
            .filter(|r| r.pc == past.pc && r.round == past.round)
            .peekable();
        if of_round.peek().is_none() {
            return Some(format!(
                "round {} of stage {stage} was not recorded",
                past.round + 1
            ));
        }
        if let Some(why) = of_round.find_map(|r| r.recording.call.incomplete.as_ref()) {
            return Some(format!(
                "the recording of round {} of stage {stage} is not whole: {why}",
                past.round + 1
            ));
        }
    }
    None
}

/// The checks whose verdicts came out otherwise, by check.
fn verdict_changes(actual: &[CheckVerdict], replayed: &[CheckVerdict]) -> Vec<VerdictChange> {
    let said = |v: &CheckVerdict| format!("{}: {}", v.verdict.status.as_str(), v.verdict.summary);
    let mut by_check: BTreeMap<&str, (Option<String>, Option<String>)> = BTreeMap::new();
    for v in actual {
        by_check.entry(&v.check).or_default().0 = Some(said(v));
    }
    for v in replayed {
        by_check.entry(&v.check).or_default().1 = Some(said(v));
    }
    by_check
        .into_iter()
        .filter(|(_, (a, r))| a != r)
        .map(|(check, (actual, replayed))| VerdictChange {
            check: check.to_string(),
            actual,
            replayed,
        })
        .collect()
}
