//! The release state machine. A release's state is the fold of its journal:
//! [`State::apply`] takes one [`Event`] and refuses any that does not fit
//! the state; `next.rs` says what to do now and turns the outcome of plugin
//! work into events, and `command.rs` turns a human's request into an event
//! or a clear refusal. Nothing here does IO or
//! reads a clock: time arrives as arguments and in events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::{ApprovalRecord, DecisionRecord, Event, ProgressOf, RollbackMode, Status};
use super::policy::{CheckVerdict, Ruling};
use super::{Expiry, ReleaseSpec, Step, batch_number};
use crate::domain::plugin::{GroupWeight, Observation, TargetResult, VerdictStatus};

/// Attempts of one deploy, traffic or rollback call before giving up.
pub const MAX_ATTEMPTS: u32 = 3;
/// Wait before the second attempt; doubled for each further one.
pub const RETRY_BACKOFF_MS: u64 = 2_000;

/// An event that does not fit the state it was applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError(pub String);

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransitionError {}

/// Something a rollback has to undo, newest on top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undo {
    Deploy {
        pc: usize,
    },
    Traffic {
        stage: usize,
        restore: Vec<GroupWeight>,
    },
}

/// An open approval gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    pub pc: usize,
    pub opened_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub expired: bool,
    pub approvals: Vec<ApprovalRecord>,
}

/// Why and how a release is rolling back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackState {
    pub by: String,
    pub reason: String,
    pub mode: RollbackMode,
    pub force: bool,
    pub attempt: u32,
    pub not_before_ms: Option<u64>,
    /// The batch whose rollback call is under way, with its key.
    pub in_flight: Option<(Vec<usize>, u32, String)>,
    /// Batches rolled back and not yet verified.
    pub verify_pending: Option<Vec<usize>>,
    /// The status the release ends in.
    pub end: Status,
    /// Asked for by a command (a one-click rollback), not caused by a
    /// failure or a rejection where the release stood; a later command
    /// (after a block) keeps the first cause.
    #[serde(default)]
    pub commanded: bool,
}

/// Long-running work a plugin answered is still under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressState {
    pub of: ProgressOf,
    pub note: String,
    /// When the plugin first answered in progress for this work.
    pub since_ms: u64,
    /// When to ask about it again.
    pub ask_at_ms: u64,
    /// When the note last changed.
    pub at_ms: u64,
}

/// Why a release is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseState {
    pub by: String,
    pub reason: String,
    pub at_ms: u64,
}

/// A release's state: the fold of its journal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    /// `None` until `Started`.
    pub status: Option<Status>,
    /// The forward step to do next.
    pub pc: usize,
    pub attempt: u32,
    /// Check rounds done in the current verify step.
    pub round: u32,
    pub not_before_ms: Option<u64>,
    pub bake_until_ms: Option<u64>,
    pub next_check_ms: Option<u64>,
    pub awaiting_decision: bool,
    /// The verdicts of the latest round.
    pub last_round: Vec<CheckVerdict>,
    /// The deploy step whose targets were checked before it.
    pub health_checked: Option<usize>,
    /// Targets skipped as unhealthy; no later step touches them.
    pub skipped: BTreeSet<u32>,
    /// The deploy call under way, with its key.
    pub in_flight: Option<(usize, u32, String)>,
    /// The latest progress of long-running work under way, if its plugin
    /// answered in progress.
    pub progress: Option<ProgressState>,
    /// Consecutive errors of each check in the current step.
    pub errors: BTreeMap<String, u32>,
    /// Failed verdicts per stage.
    pub failures: BTreeMap<usize, u32>,
    /// A precheck found a step that cannot be undone.
    pub forward_only: bool,
    pub gate: Option<GateState>,
    pub pause: Option<PauseState>,
    pub rollback: Option<RollbackState>,
    pub undo: Vec<Undo>,
    pub weights: Option<Vec<GroupWeight>>,
    /// When the last batch finished deploying or rolling back: the start
    /// of the window its checks look at.
    pub deployed_at_ms: Option<u64>,
    pub observations: Vec<Observation>,
    pub decisions: Vec<DecisionRecord>,
    pub approvals: Vec<ApprovalRecord>,
    /// A terminal status decided but not yet recorded.
    pub ending: Option<(Status, String)>,
    /// Why the release ended.
    pub outcome: Option<String>,
    /// Whether the release once succeeded (and so changed the inventory).
    pub succeeded: bool,
    pub started_ms: u64,
    pub updated_ms: u64,
    pub finished_ms: Option<u64>,
    /// When each stage the release reached started and ended.
    pub stage_times: BTreeMap<usize, StageTime>,
    /// Events applied.
    pub events: u64,
}

/// When a stage started and, once the release left it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageTime {
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
}

fn bad(message: impl Into<String>) -> TransitionError {
    TransitionError(message.into())
}

fn all_ok(results: &[TargetResult]) -> Result<(), String> {
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{} ({})", r.target_id, r.message))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(", "))
    }
}

impl State {
    /// The state after replaying `events`.
    pub fn replay<'a>(
        spec: &ReleaseSpec,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<State, TransitionError> {
        let mut state = State::default();
        for event in events {
            state.apply(spec, event)?;
        }
        Ok(state)
    }

    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::Queued)
    }

    pub(super) fn place(spec: &ReleaseSpec, pc: usize) -> String {
        let Some(step) = spec.steps.get(pc) else {
            return "at the end".to_string();
        };
        let stage = spec
            .stages
            .get(step.stage())
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        match step.batch() {
            Some(b) => format!("at stage {stage}, batch {}", batch_number(b)),
            None => format!("at stage {stage}"),
        }
    }

    /// How much of the current bake is left at `now`; 0 with no bake.
    pub(super) fn bake_left(&self, now: u64) -> u64 {
        self.bake_until_ms
            .map_or(0, |until| until.saturating_sub(now))
    }

    pub(super) fn advance(&mut self) {
        self.pc += 1;
        self.attempt = 1;
        self.round = 0;
        self.not_before_ms = None;
        self.bake_until_ms = None;
        self.next_check_ms = None;
        self.awaiting_decision = false;
        self.errors.clear();
        self.health_checked = None;
    }

    /// `commanded`: asked for by a rollback command, not caused where the
    /// release stood.
    fn start_rollback(
        &mut self,
        by: &str,
        reason: &str,
        mode: RollbackMode,
        force: bool,
        end: Status,
        commanded: bool,
    ) {
        self.status = Some(Status::RollingBack);
        self.gate = None;
        self.pause = None;
        self.awaiting_decision = false;
        self.not_before_ms = None;
        let end = match &self.rollback {
            Some(rb) if rb.end == Status::Rejected => Status::Rejected,
            _ => end,
        };
        let commanded = self.rollback.as_ref().map_or(commanded, |rb| rb.commanded);
        let in_flight = self.rollback.as_ref().and_then(|rb| rb.in_flight.clone());
        let verify_pending = self
            .rollback
            .as_ref()
            .and_then(|rb| rb.verify_pending.clone());
        self.rollback = Some(RollbackState {
            by: by.to_string(),
            reason: reason.to_string(),
            mode,
            force,
            attempt: 1,
            not_before_ms: None,
            in_flight,
            verify_pending,
            end,
            commanded,
        });
    }

    fn step<'s>(&self, spec: &'s ReleaseSpec, pc: usize) -> Result<&'s Step, TransitionError> {
        spec.steps
            .get(pc)
            .ok_or_else(|| bad(format!("step {pc} does not exist")))
    }

    /// Refuses a step event unless it is for the current step and the
    /// release is moving forward.
    pub(super) fn expect_step(&self, pc: usize, event: &str) -> Result<(), TransitionError> {
        if !matches!(self.status(), Status::Running | Status::Paused) {
            return Err(bad(format!(
                "{event} for step {pc} while the release is {}",
                self.status().as_str()
            )));
        }
        if pc != self.pc {
            return Err(bad(format!(
                "{event} for step {pc}, but the release is at step {}",
                self.pc
            )));
        }
        Ok(())
    }

    fn retry_or_roll_back(
        &mut self,
        at_ms: u64,
        attempt: u32,
        retryable: bool,
        by: &str,
        reason: String,
    ) {
        if retryable && attempt < MAX_ATTEMPTS && self.status() != Status::RollingBack {
            self.attempt = attempt + 1;
            self.not_before_ms = Some(at_ms + (RETRY_BACKOFF_MS << (attempt - 1).min(10)));
        } else if matches!(self.status(), Status::Running | Status::Paused) {
            self.start_rollback(
                by,
                &reason,
                RollbackMode::Regular,
                false,
                Status::RolledBack,
                false,
            );
        }
    }

    /// Applies one event, or says why it does not fit.
    pub fn apply(&mut self, spec: &ReleaseSpec, event: &Event) -> Result<(), TransitionError> {
        // A queued release has journaled nothing: it may start, or be
        // abandoned before it does.
        let abandoned = matches!(
            event,
            Event::Finished {
                status: Status::Abandoned,
                ..
            }
        );
        if self.status.is_none() && !matches!(event, Event::Started { .. }) && !abandoned {
            return Err(bad(format!("{} before the release started", event.name())));
        }
        match event {
            Event::Started { at_ms, .. } => {
                if self.status.is_some() {
                    return Err(bad("the release has already started"));
                }
                self.status = Some(Status::Running);
                self.attempt = 1;
                self.started_ms = *at_ms;
            }
            Event::PrecheckDone {
                pc,
                check,
                verdict,
                forward_only,
                ..
            } => {
                self.expect_step(*pc, "precheck-done")?;
                if !matches!(self.step(spec, *pc)?, Step::Precheck { .. }) {
                    return Err(bad(format!("step {pc} is not a precheck")));
                }
                self.forward_only |= forward_only;
                if verdict.status == VerdictStatus::Pass {
                    self.advance();
                } else {
                    self.ending = Some((
                        Status::Failed,
                        format!(
                            "precheck {check} {}: {}",
                            verdict.status.as_str(),
                            verdict.summary
                        ),
                    ));
                }
            }
            Event::TargetsChecked {
                pc,
                unhealthy,
                at_ms,
            } => {
                self.expect_step(*pc, "targets-checked")?;
                let Step::Deploy {
                    stage,
                    batch,
                    targets,
                } = self.step(spec, *pc)?
                else {
                    return Err(bad(format!("step {pc} is not a deploy")));
                };
                let s = &spec.stages[*stage];
                if unhealthy.is_empty() {
                    self.health_checked = Some(*pc);
                } else if s.skip_unhealthy {
                    for u in unhealthy {
                        if let Some(i) = spec.targets.iter().position(|t| t.id == u.target) {
                            self.skipped.insert(i as u32);
                        }
                    }
                    self.health_checked = Some(*pc);
                    if targets.iter().all(|t| self.skipped.contains(t)) {
                        self.advance();
                    }
                } else {
                    let list: Vec<String> = unhealthy
                        .iter()
                        .map(|u| format!("{} ({})", u.target, u.summary))
                        .collect();
                    self.status = Some(Status::Paused);
                    self.pause = Some(PauseState {
                        by: "health-check".to_string(),
                        reason: format!(
                            "unhealthy before batch {} of stage {}: {}",
                            batch_number(*batch),
                            s.name,
                            list.join(", ")
                        ),
                        at_ms: *at_ms,
                    });
                }
            }
            Event::DeployStarted {
                pc, attempt, key, ..
            } => {
                if self.status() != Status::Running || *pc != self.pc || *attempt != self.attempt {
                    return Err(bad(format!(
                        "deploy-started for step {pc} attempt {attempt} does not fit"
                    )));
                }
                if !matches!(self.step(spec, *pc)?, Step::Deploy { .. }) {
                    return Err(bad(format!("step {pc} is not a deploy")));
                }
                self.in_flight = Some((*pc, *attempt, key.clone()));
                // A retried attempt finds its step already on top.
                if self.undo.last() != Some(&Undo::Deploy { pc: *pc }) {
                    self.undo.push(Undo::Deploy { pc: *pc });
                }
            }
            Event::Deployed {
                pc,
                attempt,
                results,
                at_ms,
            } => {
                self.finish_call(*pc, *attempt, "deployed")?;
                self.progress = None;
                self.deployed_at_ms = Some(*at_ms);
                let moving = matches!(self.status(), Status::Running | Status::Paused);
                match all_ok(results) {
                    Ok(()) if moving => self.advance(),
                    Ok(()) => {}
                    Err(failed) => {
                        let reason =
                            format!("deploy failed {} on {failed}", Self::place(spec, *pc));
                        self.retry_or_roll_back(*at_ms, MAX_ATTEMPTS, false, "engine", reason);
                    }
                }
            }
            Event::DeployFailed {
                pc,
                attempt,
                message,
                retryable,
                at_ms,
            } => {
                self.finish_call(*pc, *attempt, "deploy-failed")?;
                self.progress = None;
                let reason = format!("deploy failed {}: {message}", Self::place(spec, *pc));
                self.retry_or_roll_back(*at_ms, *attempt, *retryable, "engine", reason);
            }
            Event::Progressed {
                of,
                note,
                since_ms,
                ask_at_ms,
                at_ms,
            } => {
                if !self.under_way(spec, of) {
                    return Err(bad(format!("progress of {of:?}, which is not under way")));
                }
                self.progress = Some(ProgressState {
                    of: of.clone(),
                    note: note.clone(),
                    since_ms: *since_ms,
                    ask_at_ms: *ask_at_ms,
                    at_ms: *at_ms,
                });
            }
            Event::BakeStarted { pc, until_ms, .. } => {
                self.expect_step(*pc, "bake-started")?;
                self.bake_until_ms = Some(*until_ms);
            }
            Event::Verified {
                pc,
                round,
                verdicts,
                at_ms,
            } => {
                self.expect_step(*pc, "verified")?;
                let step = self.step(spec, *pc)?;
                if !matches!(step, Step::Verify { .. }) || *round != self.round {
                    return Err(bad(format!(
                        "verified round {round} at step {pc} does not fit"
                    )));
                }
                self.observe(spec, step, verdicts, *at_ms);
                // A shadow check's verdicts never count.
                for v in verdicts.iter().filter(|v| !v.shadow) {
                    let count = self.errors.entry(v.check.clone()).or_default();
                    if v.verdict.status == VerdictStatus::Error {
                        *count += 1;
                    } else {
                        *count = 0;
                    }
                    if v.verdict.status == VerdictStatus::Fail {
                        *self.failures.entry(step.stage()).or_default() += 1;
                    }
                }
                self.round += 1;
                self.awaiting_decision = true;
                self.last_round = verdicts.clone();
            }
            Event::Decided { pc, decision } => {
                self.expect_step(*pc, "decided")?;
                if !self.awaiting_decision {
                    return Err(bad(format!(
                        "decided at step {pc} without a round to decide"
                    )));
                }
                let Step::Verify { interval_ms, .. } = self.step(spec, *pc)? else {
                    return Err(bad(format!("step {pc} is not a verify step")));
                };
                let at = decision.at_ms;
                self.awaiting_decision = false;
                self.decisions.push(decision.clone());
                let baked = self.bake_until_ms.is_none_or(|until| at >= until);
                let interval = if *interval_ms == 0 {
                    self.bake_until_ms.map_or(0, |u| u.saturating_sub(at))
                } else {
                    *interval_ms
                };
                match decision.ruling {
                    Ruling::Proceed if baked => self.advance(),
                    Ruling::Proceed => self.next_check_ms = Some(at + interval.max(1)),
                    Ruling::Retry => {
                        let stage = &spec.stages[spec.steps[*pc].stage()];
                        self.not_before_ms = Some(at + stage.verification.retry_ms);
                    }
                    Ruling::Pause => {
                        if baked {
                            self.advance();
                        } else {
                            self.next_check_ms = Some(at + interval.max(1));
                        }
                        self.status = Some(Status::Paused);
                        self.pause = Some(PauseState {
                            by: decision.by.clone(),
                            reason: decision.reason.clone(),
                            at_ms: at,
                        });
                    }
                    Ruling::Rollback => self.start_rollback(
                        &decision.by,
                        &decision.reason,
                        RollbackMode::Regular,
                        false,
                        Status::RolledBack,
                        false,
                    ),
                }
            }
            Event::TrafficShifted { pc, weights, .. } => {
                self.expect_step(*pc, "traffic-shifted")?;
                let Step::Shift { stage, .. } = self.step(spec, *pc)? else {
                    return Err(bad(format!("step {pc} is not a traffic shift")));
                };
                let has_undo = self
                    .undo
                    .iter()
                    .any(|u| matches!(u, Undo::Traffic { stage: s, .. } if s == stage));
                if !has_undo {
                    let s = &spec.stages[*stage];
                    let restore = vec![
                        GroupWeight {
                            group: s.live_group.clone().unwrap_or_default(),
                            percent: 100,
                        },
                        GroupWeight {
                            group: s.idle_group.clone().unwrap_or_default(),
                            percent: 0,
                        },
                    ];
                    self.undo.push(Undo::Traffic {
                        stage: *stage,
                        restore,
                    });
                }
                self.weights = Some(weights.clone());
                self.progress = None;
                self.advance();
            }
            Event::TrafficFailed {
                pc,
                attempt,
                message,
                retryable,
                at_ms,
            } => {
                self.expect_step(*pc, "traffic-failed")?;
                if *attempt != self.attempt {
                    return Err(bad(format!("traffic-failed for attempt {attempt}")));
                }
                self.progress = None;
                let reason = format!("traffic shift failed {}: {message}", Self::place(spec, *pc));
                self.retry_or_roll_back(*at_ms, *attempt, *retryable, "engine", reason);
            }
            Event::GateOpened {
                pc,
                expires_at_ms,
                at_ms,
            } => {
                self.expect_step(*pc, "gate-opened")?;
                if !matches!(self.step(spec, *pc)?, Step::Approval { .. }) {
                    return Err(bad(format!("step {pc} is not an approval")));
                }
                self.status = Some(Status::WaitingApproval);
                self.gate = Some(GateState {
                    pc: *pc,
                    opened_ms: *at_ms,
                    expires_at_ms: *expires_at_ms,
                    expired: false,
                    approvals: Vec::new(),
                });
            }
            Event::GateSkipped { pc, .. } => {
                self.expect_step(*pc, "gate-skipped")?;
                if !spec.emergency {
                    return Err(bad("only an emergency release skips gates"));
                }
                self.advance();
            }
            Event::Approved {
                pc,
                by,
                comment,
                at_ms,
            } => {
                let gate = self.open_gate(*pc, "approved")?;
                let record = ApprovalRecord {
                    stage: spec.stages[spec.steps[*pc].stage()].name.clone(),
                    by: by.clone(),
                    approved: true,
                    comment: comment.clone(),
                    at_ms: *at_ms,
                };
                gate.approvals.push(record.clone());
                let count = gate.approvals.len() as u32;
                self.approvals.push(record);
                let needed = spec.stages[spec.steps[*pc].stage()]
                    .gate
                    .as_ref()
                    .map_or(1, |g| g.approvers);
                if count >= needed {
                    self.gate = None;
                    self.status = Some(Status::Running);
                    self.advance();
                }
            }
            Event::Rejected {
                pc,
                by,
                comment,
                at_ms,
            } => {
                self.open_gate(*pc, "rejected")?;
                let stage = spec.stages[spec.steps[*pc].stage()].name.clone();
                self.approvals.push(ApprovalRecord {
                    stage: stage.clone(),
                    by: by.clone(),
                    approved: false,
                    comment: comment.clone(),
                    at_ms: *at_ms,
                });
                let reason = format!("{by} rejected the release at gate {stage}: {comment}");
                self.start_rollback(
                    by,
                    &reason,
                    RollbackMode::Regular,
                    false,
                    Status::Rejected,
                    false,
                );
            }
            Event::GateExpired { pc, .. } => {
                let gate = self.open_gate(*pc, "gate-expired")?;
                if gate.expired {
                    return Err(bad("the gate has already expired"));
                }
                gate.expired = true;
                let stage = &spec.stages[spec.steps[*pc].stage()];
                let reason = format!("the approval at gate {} expired", stage.name);
                match stage.gate.as_ref().map(|g| g.on_expiry) {
                    Some(Expiry::Reject) => self.start_rollback(
                        "engine",
                        &reason,
                        RollbackMode::Regular,
                        false,
                        Status::Rejected,
                        false,
                    ),
                    Some(Expiry::Rollback) => self.start_rollback(
                        "engine",
                        &reason,
                        RollbackMode::Regular,
                        false,
                        Status::RolledBack,
                        false,
                    ),
                    Some(Expiry::KeepWaiting) | None => {}
                }
            }
            Event::Paused { by, reason, at_ms } => {
                if self.status() != Status::Running {
                    return Err(bad(format!(
                        "cannot pause a release that is {}",
                        self.status().as_str()
                    )));
                }
                self.status = Some(Status::Paused);
                self.pause = Some(PauseState {
                    by: by.clone(),
                    reason: reason.clone(),
                    at_ms: *at_ms,
                });
            }
            Event::Resumed { .. } => {
                if self.status() != Status::Paused {
                    return Err(bad(format!(
                        "cannot resume a release that is {}",
                        self.status().as_str()
                    )));
                }
                self.status = Some(Status::Running);
                self.pause = None;
            }
            Event::RollbackStarted {
                by,
                reason,
                mode,
                force,
                ..
            } => {
                let status = self.status();
                if matches!(
                    status,
                    Status::Failed | Status::RolledBack | Status::Rejected | Status::Abandoned
                ) {
                    return Err(bad(format!(
                        "cannot roll back a release that is {}",
                        status.as_str()
                    )));
                }
                // A rollback taken up again leaves the block behind.
                if matches!(status, Status::Succeeded | Status::Blocked) {
                    self.finished_ms = None;
                    self.outcome = None;
                }
                // A traffic shift under way is abandoned; a deploy under
                // way is finished first, so its progress stays.
                if !matches!(
                    self.progress.as_ref().map(|p| &p.of),
                    Some(ProgressOf::Deploy { .. })
                ) {
                    self.progress = None;
                }
                self.start_rollback(by, reason, *mode, *force, Status::RolledBack, true);
            }
            Event::TrafficRestored { stage, weights, .. } => {
                self.expect_rollback("traffic-restored")?;
                match self.undo.last() {
                    Some(Undo::Traffic { stage: s, .. }) if s == stage => {
                        self.undo.pop();
                    }
                    _ => return Err(bad("traffic-restored with no traffic to restore")),
                }
                self.weights = Some(weights.clone());
                self.progress = None;
                if let Some(rb) = &mut self.rollback {
                    rb.attempt = 1;
                    rb.not_before_ms = None;
                }
            }
            Event::RollbackBatchStarted {
                pcs, attempt, key, ..
            } => {
                if pcs.is_empty() || self.undo_top(pcs.len()) != *pcs {
                    return Err(bad(format!(
                        "rollback-batch-started for steps {pcs:?}, which are not deployed"
                    )));
                }
                let rb = self.expect_rollback("rollback-batch-started")?;
                if *attempt != rb.attempt {
                    return Err(bad(format!("rollback attempt {attempt} does not fit")));
                }
                rb.in_flight = Some((pcs.clone(), *attempt, key.clone()));
            }
            Event::RolledBackBatch {
                pcs,
                attempt,
                results,
                at_ms,
            } => {
                let rb = self.expect_rollback("rolled-back-batch")?;
                if rb.in_flight.as_ref().map(|f| (&f.0, f.1)) != Some((pcs, *attempt)) {
                    return Err(bad("rolled-back-batch for a call not under way"));
                }
                rb.in_flight = None;
                match all_ok(results) {
                    Ok(()) => {
                        rb.attempt = 1;
                        rb.not_before_ms = None;
                        if rb.mode == RollbackMode::Regular {
                            rb.verify_pending = Some(pcs.clone());
                        }
                        if self.undo_top(pcs.len()) == *pcs {
                            self.undo.truncate(self.undo.len() - pcs.len());
                        } else {
                            self.undo
                                .retain(|u| !matches!(u, Undo::Deploy { pc } if pcs.contains(pc)));
                        }
                    }
                    Err(failed) => {
                        let reason = format!("rollback failed on {failed}");
                        self.rollback_retry(*attempt, false, reason, *at_ms);
                    }
                }
                self.progress = None;
                self.deployed_at_ms = Some(*at_ms);
            }
            Event::RollbackFailed {
                pcs,
                attempt,
                message,
                retryable,
                at_ms,
            } => {
                let rb = self.expect_rollback("rollback-failed")?;
                if rb.in_flight.as_ref().map(|f| (&f.0, f.1)) == Some((pcs, *attempt)) {
                    rb.in_flight = None;
                }
                self.progress = None;
                let reason = format!("rollback failed: {message}");
                self.rollback_retry(*attempt, *retryable, reason, *at_ms);
            }
            Event::RollbackVerified {
                pcs,
                verdicts,
                at_ms,
            } => {
                let rb = self.expect_rollback("rollback-verified")?;
                if rb.verify_pending.as_ref() != Some(pcs) {
                    return Err(bad("rollback-verified for batches not awaiting it"));
                }
                rb.verify_pending = None;
                if let Some(step) = pcs.first().and_then(|pc| spec.steps.get(*pc)) {
                    self.observe(spec, step, verdicts, *at_ms);
                }
            }
            Event::Blocked { reason, .. } => {
                self.expect_rollback("blocked")?;
                self.status = Some(Status::Blocked);
                self.outcome = Some(reason.clone());
            }
            Event::Finished {
                status,
                reason,
                at_ms,
            } => {
                if !status.is_terminal() {
                    return Err(bad(format!("finished as {}", status.as_str())));
                }
                if self.status().is_terminal() {
                    return Err(bad("the release has already finished"));
                }
                self.status = Some(*status);
                self.outcome = Some(reason.clone());
                self.ending = None;
                self.finished_ms = Some(*at_ms);
                self.in_flight = None;
                self.progress = None;
                if *status == Status::Succeeded {
                    self.succeeded = true;
                }
            }
        }
        self.track_stages(spec, event.at_ms());
        self.events += 1;
        self.updated_ms = event.at_ms();
        Ok(())
    }

    /// Opens the stage the release is in and closes the ones it left.
    fn track_stages(&mut self, spec: &ReleaseSpec, at: u64) {
        let status = self.status();
        let forward = !status.is_terminal()
            && !matches!(
                status,
                Status::RollingBack | Status::Blocked | Status::Queued
            );
        let current = forward
            .then(|| spec.steps.get(self.pc).map(Step::stage))
            .flatten();
        for (stage, time) in self.stage_times.iter_mut() {
            if Some(*stage) != current && time.finished_ms.is_none() {
                time.finished_ms = Some(at);
            }
        }
        if let Some(stage) = current {
            self.stage_times.entry(stage).or_insert(StageTime {
                started_ms: at,
                finished_ms: None,
            });
        }
    }

    pub(super) fn observe(
        &mut self,
        spec: &ReleaseSpec,
        step: &Step,
        verdicts: &[CheckVerdict],
        at: u64,
    ) {
        let stage = spec.stages[step.stage()].name.clone();
        for v in verdicts {
            self.observations.push(Observation {
                check: v.check.clone(),
                stage: stage.clone(),
                batch: step.batch(),
                verdict: v.verdict.clone(),
                at_ms: at,
                shadow: v.shadow,
                rollback: self.rollback.is_some(),
            });
        }
    }

    /// The steps of the newest `n` deploy entries of the undo stack, newest
    /// first.
    fn undo_top(&self, n: usize) -> Vec<usize> {
        self.undo
            .iter()
            .rev()
            .take(n)
            .filter_map(|u| match u {
                Undo::Deploy { pc } => Some(*pc),
                Undo::Traffic { .. } => None,
            })
            .collect()
    }

    fn finish_call(&mut self, pc: usize, attempt: u32, event: &str) -> Result<(), TransitionError> {
        if self.in_flight.as_ref().map(|f| (f.0, f.1)) != Some((pc, attempt)) {
            return Err(bad(format!(
                "{event} for step {pc} attempt {attempt}, which is not under way"
            )));
        }
        self.in_flight = None;
        Ok(())
    }

    fn open_gate(&mut self, pc: usize, event: &str) -> Result<&mut GateState, TransitionError> {
        if self.status() != Status::WaitingApproval {
            return Err(bad(format!("{event} while the release is not at a gate")));
        }
        match &mut self.gate {
            Some(gate) if gate.pc == pc => Ok(gate),
            _ => Err(bad(format!("{event} for a gate that is not open"))),
        }
    }

    fn expect_rollback(&mut self, event: &str) -> Result<&mut RollbackState, TransitionError> {
        if self.status() != Status::RollingBack {
            return Err(bad(format!(
                "{event} while the release is not rolling back"
            )));
        }
        self.rollback
            .as_mut()
            .ok_or_else(|| bad(format!("{event} without a rollback")))
    }

    /// Whether `of` is the plugin work the release has under way: the
    /// deploy in flight, the traffic shift of the current step, the
    /// rollback call in flight, or the traffic a rollback restores next.
    pub(super) fn under_way(&self, spec: &ReleaseSpec, of: &ProgressOf) -> bool {
        match of {
            ProgressOf::Deploy { pc, attempt } => self
                .in_flight
                .as_ref()
                .is_some_and(|(p, a, _)| p == pc && a == attempt),
            ProgressOf::Shift { pc, attempt } => {
                self.status() == Status::Running
                    && self.in_flight.is_none()
                    && self.pc == *pc
                    && self.attempt == *attempt
                    && matches!(spec.steps.get(*pc), Some(Step::Shift { .. }))
            }
            ProgressOf::Rollback { pcs, attempt } => self.rollback.as_ref().is_some_and(|rb| {
                rb.in_flight
                    .as_ref()
                    .is_some_and(|(p, a, _)| p == pcs && a == attempt)
            }),
            ProgressOf::RestoreTraffic { stage, attempt } => {
                self.status() == Status::RollingBack
                    && self
                        .rollback
                        .as_ref()
                        .is_some_and(|rb| rb.attempt == *attempt)
                    && matches!(self.undo.last(), Some(Undo::Traffic { stage: s, .. }) if s == stage)
            }
        }
    }

    fn rollback_retry(&mut self, attempt: u32, retryable: bool, reason: String, at_ms: u64) {
        let Some(rb) = &mut self.rollback else {
            return;
        };
        if retryable && attempt < MAX_ATTEMPTS {
            rb.attempt = attempt + 1;
            rb.not_before_ms = Some(at_ms + (RETRY_BACKOFF_MS << (attempt - 1).min(10)));
        } else {
            rb.attempt = attempt + 1;
            self.status = Some(Status::Blocked);
            self.outcome = Some(format!(
                "{reason}; a human must act: roll back with force (the deployer is asked again, and a step that cannot be undone is passed), or, as an admin, abandon the release to free its environment"
            ));
        }
    }
}
