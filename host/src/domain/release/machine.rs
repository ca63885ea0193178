//! The release state machine. A release's state is the fold of its journal:
//! [`State::apply`] takes one [`Event`] and refuses any that does not fit
//! the state, [`State::next`] says what to do now, [`State::conclude`] turns
//! the outcome of plugin work into events, and [`State::command`] turns a
//! human's request into an event or a clear refusal. Nothing here does IO or
//! reads a clock: time arrives as arguments and in events.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::policy::{CheckVerdict, Ruling, judge};
use super::{Expiry, PluginRef, ReleaseSpec, Step};
use crate::domain::plugin::{
    Artifact, Decision, DecisionKind, GroupWeight, Observation, PluginFault, PrecheckResult,
    ReleaseContext, Target, TargetResult, Verdict, VerdictStatus,
};

/// Attempts of one deploy, traffic or rollback call before giving up.
pub const MAX_ATTEMPTS: u32 = 3;
/// Wait before the second attempt; doubled for each further one.
pub const RETRY_BACKOFF_MS: u64 = 2_000;

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Running,
    WaitingApproval,
    Paused,
    RollingBack,
    /// Rollback stopped before a step that cannot be undone; a human decides.
    Blocked,
    Succeeded,
    Failed,
    RolledBack,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Running,
        Status::WaitingApproval,
        Status::Paused,
        Status::RollingBack,
        Status::Blocked,
        Status::Succeeded,
        Status::Failed,
        Status::RolledBack,
        Status::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::WaitingApproval => "waiting-approval",
            Status::Paused => "paused",
            Status::RollingBack => "rolling-back",
            Status::Blocked => "blocked",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::RolledBack => "rolled-back",
            Status::Rejected => "rejected",
        }
    }

    /// Whether the release is over (a succeeded release can still be rolled
    /// back by a human).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::RolledBack | Status::Rejected
        )
    }
}

/// How a rollback unwinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackMode {
    /// Batch by batch in reverse, verifying as it goes.
    Regular,
    /// Every batch of a stage at once, without verification.
    Emergency,
}

/// A decision and everything it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub ruling: Ruling,
    pub reason: String,
    /// `default-policy`, or the policy plugin's `name@version`.
    pub by: String,
    pub stage: String,
    pub batch: Option<u32>,
    pub round: u32,
    /// The verdicts of the round decided on.
    pub inputs: Vec<CheckVerdict>,
    /// How many observations a policy plugin was given.
    pub observations: usize,
    pub at_ms: u64,
}

/// One approval or rejection at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub stage: String,
    pub by: String,
    pub approved: bool,
    pub comment: String,
    pub at_ms: u64,
}

/// Everything that happens to a release, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Started {
        by: String,
        at_ms: u64,
    },
    PrecheckDone {
        pc: usize,
        check: String,
        verdict: Verdict,
        forward_only: bool,
        at_ms: u64,
    },
    /// Journaled before the deployer is called, with the key it gets.
    DeployStarted {
        pc: usize,
        attempt: u32,
        key: String,
        at_ms: u64,
    },
    Deployed {
        pc: usize,
        attempt: u32,
        results: Vec<TargetResult>,
        at_ms: u64,
    },
    DeployFailed {
        pc: usize,
        attempt: u32,
        message: String,
        retryable: bool,
        at_ms: u64,
    },
    BakeStarted {
        pc: usize,
        until_ms: u64,
        at_ms: u64,
    },
    Verified {
        pc: usize,
        round: u32,
        verdicts: Vec<CheckVerdict>,
        at_ms: u64,
    },
    Decided {
        pc: usize,
        decision: DecisionRecord,
    },
    TrafficShifted {
        pc: usize,
        weights: Vec<GroupWeight>,
        at_ms: u64,
    },
    TrafficFailed {
        pc: usize,
        attempt: u32,
        message: String,
        retryable: bool,
        at_ms: u64,
    },
    GateOpened {
        pc: usize,
        expires_at_ms: Option<u64>,
        at_ms: u64,
    },
    /// An emergency release passes its gates.
    GateSkipped {
        pc: usize,
        at_ms: u64,
    },
    Approved {
        pc: usize,
        by: String,
        comment: String,
        at_ms: u64,
    },
    Rejected {
        pc: usize,
        by: String,
        comment: String,
        at_ms: u64,
    },
    GateExpired {
        pc: usize,
        at_ms: u64,
    },
    Paused {
        by: String,
        reason: String,
        at_ms: u64,
    },
    Resumed {
        by: String,
        at_ms: u64,
    },
    RollbackStarted {
        by: String,
        reason: String,
        mode: RollbackMode,
        force: bool,
        at_ms: u64,
    },
    TrafficRestored {
        stage: usize,
        weights: Vec<GroupWeight>,
        at_ms: u64,
    },
    /// Journaled before the deployer's rollback is called.
    RollbackBatchStarted {
        pcs: Vec<usize>,
        attempt: u32,
        key: String,
        at_ms: u64,
    },
    RolledBackBatch {
        pcs: Vec<usize>,
        attempt: u32,
        results: Vec<TargetResult>,
        at_ms: u64,
    },
    RollbackFailed {
        pcs: Vec<usize>,
        attempt: u32,
        message: String,
        retryable: bool,
        at_ms: u64,
    },
    RollbackVerified {
        pcs: Vec<usize>,
        verdicts: Vec<CheckVerdict>,
        at_ms: u64,
    },
    Blocked {
        reason: String,
        at_ms: u64,
    },
    Finished {
        status: Status,
        reason: String,
        at_ms: u64,
    },
}

impl Event {
    /// The event's name, as journaled and streamed.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::PrecheckDone { .. } => "precheck-done",
            Event::DeployStarted { .. } => "deploy-started",
            Event::Deployed { .. } => "deployed",
            Event::DeployFailed { .. } => "deploy-failed",
            Event::BakeStarted { .. } => "bake-started",
            Event::Verified { .. } => "verified",
            Event::Decided { .. } => "decided",
            Event::TrafficShifted { .. } => "traffic-shifted",
            Event::TrafficFailed { .. } => "traffic-failed",
            Event::GateOpened { .. } => "gate-opened",
            Event::GateSkipped { .. } => "gate-skipped",
            Event::Approved { .. } => "approved",
            Event::Rejected { .. } => "rejected",
            Event::GateExpired { .. } => "gate-expired",
            Event::Paused { .. } => "paused",
            Event::Resumed { .. } => "resumed",
            Event::RollbackStarted { .. } => "rollback-started",
            Event::TrafficRestored { .. } => "traffic-restored",
            Event::RollbackBatchStarted { .. } => "rollback-batch-started",
            Event::RolledBackBatch { .. } => "rolled-back-batch",
            Event::RollbackFailed { .. } => "rollback-failed",
            Event::RollbackVerified { .. } => "rollback-verified",
            Event::Blocked { .. } => "blocked",
            Event::Finished { .. } => "finished",
        }
    }

    pub fn at_ms(&self) -> u64 {
        match self {
            Event::Decided { decision, .. } => decision.at_ms,
            Event::Started { at_ms, .. }
            | Event::PrecheckDone { at_ms, .. }
            | Event::DeployStarted { at_ms, .. }
            | Event::Deployed { at_ms, .. }
            | Event::DeployFailed { at_ms, .. }
            | Event::BakeStarted { at_ms, .. }
            | Event::Verified { at_ms, .. }
            | Event::TrafficShifted { at_ms, .. }
            | Event::TrafficFailed { at_ms, .. }
            | Event::GateOpened { at_ms, .. }
            | Event::GateSkipped { at_ms, .. }
            | Event::Approved { at_ms, .. }
            | Event::Rejected { at_ms, .. }
            | Event::GateExpired { at_ms, .. }
            | Event::Paused { at_ms, .. }
            | Event::Resumed { at_ms, .. }
            | Event::RollbackStarted { at_ms, .. }
            | Event::TrafficRestored { at_ms, .. }
            | Event::RollbackBatchStarted { at_ms, .. }
            | Event::RolledBackBatch { at_ms, .. }
            | Event::RollbackFailed { at_ms, .. }
            | Event::RollbackVerified { at_ms, .. }
            | Event::Blocked { at_ms, .. }
            | Event::Finished { at_ms, .. } => *at_ms,
        }
    }
}

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
    /// The deploy call under way, with its key.
    pub in_flight: Option<(usize, u32, String)>,
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
    /// Events applied.
    pub events: u64,
}

/// What the engine should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Journal this event; nothing needs calling.
    Record(Event),
    /// Call plugins, then hand the outcome to [`State::conclude`].
    Call(Work),
    /// Nothing to do until this instant, or until a human acts (`None`).
    Wait(Option<u64>),
    /// The release is over.
    Done,
}

/// Plugin work the engine carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Precheck {
        pc: usize,
        plugin: PluginRef,
        ctx: ReleaseContext,
        artifacts: Vec<Artifact>,
    },
    Deploy {
        pc: usize,
        attempt: u32,
        key: String,
        plugin: PluginRef,
        ctx: ReleaseContext,
        targets: Vec<Target>,
    },
    /// One round: every check over the targets.
    Verify {
        pc: usize,
        round: u32,
        checks: Vec<(PluginRef, ReleaseContext)>,
        targets: Vec<Target>,
    },
    Decide {
        pc: usize,
        plugin: PluginRef,
        ctx: ReleaseContext,
        observations: Vec<Observation>,
    },
    Shift {
        pc: usize,
        attempt: u32,
        plugin: PluginRef,
        ctx: ReleaseContext,
        weights: Vec<GroupWeight>,
    },
    RestoreTraffic {
        stage: usize,
        attempt: u32,
        plugin: PluginRef,
        ctx: ReleaseContext,
        weights: Vec<GroupWeight>,
    },
    Rollback {
        pcs: Vec<usize>,
        attempt: u32,
        key: String,
        plugin: PluginRef,
        ctx: ReleaseContext,
        targets: Vec<Target>,
    },
    RollbackVerify {
        pcs: Vec<usize>,
        checks: Vec<(PluginRef, ReleaseContext)>,
        targets: Vec<Target>,
    },
}

/// What plugin work produced. Plugin faults (traps, deadlines) arrive as
/// errors or as `error` verdicts, never as panics.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkOutcome {
    Precheck(Result<PrecheckResult, String>),
    Targets(Result<Vec<TargetResult>, PluginFault>),
    Verdicts(Vec<CheckVerdict>),
    Decision(Result<Decision, String>),
    Done(Result<(), PluginFault>),
}

/// Who asks for something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
    pub admin: bool,
}

/// What a human can ask of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Approve {
        comment: String,
    },
    Reject {
        comment: String,
    },
    Pause {
        reason: String,
    },
    Resume,
    Rollback {
        mode: RollbackMode,
        force: bool,
        reason: String,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// Stable code, such as `release.not_waiting`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn refuse(code: &'static str, message: impl Into<String>) -> CommandError {
    CommandError {
        code,
        message: message.into(),
    }
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
        self.status.unwrap_or(Status::Running)
    }

    fn place(spec: &ReleaseSpec, pc: usize) -> String {
        let Some(step) = spec.steps.get(pc) else {
            return "at the end".to_string();
        };
        let stage = spec
            .stages
            .get(step.stage())
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        match step.batch() {
            Some(b) => format!("at stage {stage}, batch {b}"),
            None => format!("at stage {stage}"),
        }
    }

    fn advance(&mut self) {
        self.pc += 1;
        self.attempt = 1;
        self.round = 0;
        self.not_before_ms = None;
        self.bake_until_ms = None;
        self.next_check_ms = None;
        self.awaiting_decision = false;
        self.errors.clear();
    }

    fn start_rollback(
        &mut self,
        by: &str,
        reason: &str,
        mode: RollbackMode,
        force: bool,
        end: Status,
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
        });
    }

    fn step<'s>(&self, spec: &'s ReleaseSpec, pc: usize) -> Result<&'s Step, TransitionError> {
        spec.steps
            .get(pc)
            .ok_or_else(|| bad(format!("step {pc} does not exist")))
    }

    /// Refuses a step event unless it is for the current step and the
    /// release is moving forward.
    fn expect_step(&self, pc: usize, event: &str) -> Result<(), TransitionError> {
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
            );
        }
    }

    /// Applies one event, or says why it does not fit.
    pub fn apply(&mut self, spec: &ReleaseSpec, event: &Event) -> Result<(), TransitionError> {
        if self.status.is_none() && !matches!(event, Event::Started { .. }) {
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
                if !self.undo.contains(&Undo::Deploy { pc: *pc }) {
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
                let reason = format!("deploy failed {}: {message}", Self::place(spec, *pc));
                self.retry_or_roll_back(*at_ms, *attempt, *retryable, "engine", reason);
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
                for v in verdicts {
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
                self.start_rollback(by, &reason, RollbackMode::Regular, false, Status::Rejected);
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
                    ),
                    Some(Expiry::Rollback) => self.start_rollback(
                        "engine",
                        &reason,
                        RollbackMode::Regular,
                        false,
                        Status::RolledBack,
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
                    Status::Failed | Status::RolledBack | Status::Rejected
                ) {
                    return Err(bad(format!(
                        "cannot roll back a release that is {}",
                        status.as_str()
                    )));
                }
                if status == Status::Succeeded {
                    self.finished_ms = None;
                    self.outcome = None;
                }
                self.start_rollback(by, reason, *mode, *force, Status::RolledBack);
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
                if let Some(rb) = &mut self.rollback {
                    rb.attempt = 1;
                    rb.not_before_ms = None;
                }
            }
            Event::RollbackBatchStarted {
                pcs, attempt, key, ..
            } => {
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
                        self.undo
                            .retain(|u| !matches!(u, Undo::Deploy { pc } if pcs.contains(pc)));
                    }
                    Err(failed) => {
                        let reason = format!("rollback failed on {failed}");
                        self.rollback_retry(*attempt, false, reason, *at_ms);
                    }
                }
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
                if *status == Status::Succeeded {
                    self.succeeded = true;
                }
            }
        }
        self.events += 1;
        self.updated_ms = event.at_ms();
        Ok(())
    }

    fn observe(&mut self, spec: &ReleaseSpec, step: &Step, verdicts: &[CheckVerdict], at: u64) {
        let stage = spec.stages[step.stage()].name.clone();
        for v in verdicts {
            self.observations.push(Observation {
                check: v.check.clone(),
                stage: stage.clone(),
                batch: step.batch(),
                verdict: v.verdict.clone(),
                at_ms: at,
            });
        }
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
            self.outcome = Some(format!("{reason}; a human must act"));
        }
    }

    /// What to do now.
    pub fn next(&self, spec: &ReleaseSpec, now: u64) -> Action {
        let Some(status) = self.status else {
            return Action::Record(Event::Started {
                by: spec.started_by.clone(),
                at_ms: now,
            });
        };
        if status.is_terminal() {
            return Action::Done;
        }
        // A deploy under way finishes whatever happened meanwhile, so that
        // a rollback knows what it has to undo.
        if let Some((pc, attempt, key)) = &self.in_flight {
            return self.deploy_call(spec, *pc, *attempt, key.clone());
        }
        if let Some((status, reason)) = &self.ending {
            return Action::Record(Event::Finished {
                status: *status,
                reason: reason.clone(),
                at_ms: now,
            });
        }
        match status {
            Status::Paused | Status::Blocked => Action::Wait(None),
            Status::RollingBack => self.next_rollback(spec, now),
            Status::WaitingApproval => match &self.gate {
                Some(g) if !g.expired => match g.expires_at_ms {
                    Some(at) if now >= at => Action::Record(Event::GateExpired {
                        pc: g.pc,
                        at_ms: now,
                    }),
                    Some(at) => Action::Wait(Some(at)),
                    None => Action::Wait(None),
                },
                _ => Action::Wait(None),
            },
            _ => self.next_forward(spec, now),
        }
    }

    fn deploy_call(&self, spec: &ReleaseSpec, pc: usize, attempt: u32, key: String) -> Action {
        let Some(Step::Deploy {
            stage,
            batch,
            targets,
        }) = spec.steps.get(pc)
        else {
            return Action::Wait(None);
        };
        let Some(plugin) = spec.stages[*stage].deployer.clone() else {
            return Action::Wait(None);
        };
        Action::Call(Work::Deploy {
            pc,
            attempt,
            key,
            ctx: spec.context(*stage, Some(*batch), attempt, &plugin),
            plugin,
            targets: spec.targets_of(targets),
        })
    }

    fn checks(
        spec: &ReleaseSpec,
        stage: usize,
        batch: Option<u32>,
        attempt: u32,
    ) -> Vec<(PluginRef, ReleaseContext)> {
        spec.stages[stage]
            .verification
            .checks
            .iter()
            .map(|c| (c.clone(), spec.context(stage, batch, attempt, c)))
            .collect()
    }

    fn next_forward(&self, spec: &ReleaseSpec, now: u64) -> Action {
        let pc = self.pc;
        let Some(step) = spec.steps.get(pc) else {
            return Action::Record(Event::Finished {
                status: Status::Succeeded,
                reason: format!("all {} steps done", spec.steps.len()),
                at_ms: now,
            });
        };
        if let Some(at) = self.not_before_ms
            && now < at
        {
            return Action::Wait(Some(at));
        }
        match step {
            Step::Precheck { stage, plugin } => Action::Call(Work::Precheck {
                pc,
                plugin: plugin.clone(),
                ctx: spec.context(*stage, None, self.attempt, plugin),
                artifacts: spec.artifacts.clone(),
            }),
            Step::Deploy { .. } => Action::Record(Event::DeployStarted {
                pc,
                attempt: self.attempt,
                key: format!("{}/{pc}/{}", spec.id, self.attempt),
                at_ms: now,
            }),
            Step::Verify {
                stage,
                batch,
                targets,
                bake_ms,
                ..
            } => {
                if self.awaiting_decision {
                    if let Some(plugin) = &spec.stages[*stage].verification.policy {
                        return Action::Call(Work::Decide {
                            pc,
                            plugin: plugin.clone(),
                            ctx: spec.context(*stage, *batch, self.round, plugin),
                            observations: self.observations.clone(),
                        });
                    }
                    return Action::Wait(None);
                }
                if *bake_ms > 0 && self.bake_until_ms.is_none() {
                    return Action::Record(Event::BakeStarted {
                        pc,
                        until_ms: now + bake_ms,
                        at_ms: now,
                    });
                }
                let due = match (self.next_check_ms, self.bake_until_ms) {
                    (None, _) => now,
                    (Some(next), Some(until)) => next.min(until),
                    (Some(next), None) => next,
                };
                if now < due {
                    return Action::Wait(Some(due));
                }
                Action::Call(Work::Verify {
                    pc,
                    round: self.round,
                    checks: Self::checks(spec, *stage, *batch, self.round + 1),
                    targets: spec.targets_of(targets),
                })
            }
            Step::Shift { stage, percent } => {
                let s = &spec.stages[*stage];
                let Some(plugin) = s.traffic.clone() else {
                    return Action::Wait(None);
                };
                Action::Call(Work::Shift {
                    pc,
                    attempt: self.attempt,
                    ctx: spec.context(*stage, None, self.attempt, &plugin),
                    plugin,
                    weights: vec![
                        GroupWeight {
                            group: s.live_group.clone().unwrap_or_default(),
                            percent: 100 - percent,
                        },
                        GroupWeight {
                            group: s.idle_group.clone().unwrap_or_default(),
                            percent: *percent,
                        },
                    ],
                })
            }
            Step::Approval { stage } => {
                if spec.emergency {
                    return Action::Record(Event::GateSkipped { pc, at_ms: now });
                }
                let expires = spec.stages[*stage]
                    .gate
                    .as_ref()
                    .and_then(|g| g.expires_after_ms);
                Action::Record(Event::GateOpened {
                    pc,
                    expires_at_ms: expires.map(|ms| now + ms),
                    at_ms: now,
                })
            }
        }
    }

    fn next_rollback(&self, spec: &ReleaseSpec, now: u64) -> Action {
        let Some(rb) = &self.rollback else {
            return Action::Wait(None);
        };
        if let Some(pcs) = &rb.verify_pending {
            let stage = spec.steps[pcs[0]].stage();
            let targets: Vec<u32> = pcs
                .iter()
                .filter_map(|pc| match &spec.steps[*pc] {
                    Step::Deploy { targets, .. } => Some(targets.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            return Action::Call(Work::RollbackVerify {
                pcs: pcs.clone(),
                checks: Self::checks(spec, stage, spec.steps[pcs[0]].batch(), 1),
                targets: spec.targets_of(&targets),
            });
        }
        if let Some(at) = rb.not_before_ms
            && now < at
        {
            return Action::Wait(Some(at));
        }
        match self.undo.last() {
            None => Action::Record(Event::Finished {
                status: rb.end,
                reason: rb.reason.clone(),
                at_ms: now,
            }),
            Some(Undo::Traffic { stage, restore }) => {
                let Some(plugin) = spec.stages[*stage].traffic.clone() else {
                    return Action::Wait(None);
                };
                Action::Call(Work::RestoreTraffic {
                    stage: *stage,
                    attempt: rb.attempt,
                    ctx: spec.context(*stage, None, rb.attempt, &plugin),
                    plugin,
                    weights: restore.clone(),
                })
            }
            Some(Undo::Deploy { pc }) => {
                let stage = spec.steps[*pc].stage();
                let s = &spec.stages[stage];
                if !rb.force && (!s.reversible || self.forward_only) {
                    let why = if s.reversible {
                        "a precheck marked the release forward-only".to_string()
                    } else {
                        format!("stage {} cannot be undone", s.name)
                    };
                    return Action::Record(Event::Blocked {
                        reason: format!(
                            "rollback stopped before {}: {why}; roll back with force to pass it",
                            Self::place(spec, *pc)
                        ),
                        at_ms: now,
                    });
                }
                let pcs: Vec<usize> = match rb.mode {
                    RollbackMode::Regular => vec![*pc],
                    RollbackMode::Emergency => self
                        .undo
                        .iter()
                        .rev()
                        .map_while(|u| match u {
                            Undo::Deploy { pc } if spec.steps[*pc].stage() == stage => Some(*pc),
                            _ => None,
                        })
                        .collect(),
                };
                let key = format!("{}/rollback/{}/{}", spec.id, pcs[0], rb.attempt);
                match &rb.in_flight {
                    Some((in_pcs, attempt, key)) if *in_pcs == pcs && *attempt == rb.attempt => {
                        let Some(plugin) = s.deployer.clone() else {
                            return Action::Wait(None);
                        };
                        let targets: Vec<u32> = pcs
                            .iter()
                            .filter_map(|pc| match &spec.steps[*pc] {
                                Step::Deploy { targets, .. } => Some(targets.clone()),
                                _ => None,
                            })
                            .flatten()
                            .collect();
                        Action::Call(Work::Rollback {
                            pcs: pcs.clone(),
                            attempt: *attempt,
                            key: key.clone(),
                            ctx: spec.context(stage, spec.steps[pcs[0]].batch(), *attempt, &plugin),
                            plugin,
                            targets: spec.targets_of(&targets),
                        })
                    }
                    _ => Action::Record(Event::RollbackBatchStarted {
                        pcs,
                        attempt: rb.attempt,
                        key,
                        at_ms: now,
                    }),
                }
            }
        }
    }

    /// Turns the outcome of `work` into events.
    pub fn conclude(
        &self,
        spec: &ReleaseSpec,
        work: &Work,
        outcome: WorkOutcome,
        now: u64,
    ) -> Vec<Event> {
        match (work, outcome) {
            (Work::Precheck { pc, plugin, .. }, WorkOutcome::Precheck(result)) => {
                let (verdict, forward_only) = match result {
                    Ok(r) => (r.verdict, r.forward_only),
                    Err(message) => (
                        Verdict {
                            status: VerdictStatus::Error,
                            summary: message,
                            metrics: Vec::new(),
                        },
                        false,
                    ),
                };
                vec![Event::PrecheckDone {
                    pc: *pc,
                    check: plugin.label(),
                    verdict,
                    forward_only,
                    at_ms: now,
                }]
            }
            (Work::Deploy { pc, attempt, .. }, WorkOutcome::Targets(result)) => {
                vec![match result {
                    Ok(results) => Event::Deployed {
                        pc: *pc,
                        attempt: *attempt,
                        results,
                        at_ms: now,
                    },
                    Err(fault) => Event::DeployFailed {
                        pc: *pc,
                        attempt: *attempt,
                        message: fault.message,
                        retryable: fault.retryable,
                        at_ms: now,
                    },
                }]
            }
            (Work::Verify { pc, round, .. }, WorkOutcome::Verdicts(verdicts)) => {
                let mut events = vec![Event::Verified {
                    pc: *pc,
                    round: *round,
                    verdicts: verdicts.clone(),
                    at_ms: now,
                }];
                let stage = &spec.stages[spec.steps[*pc].stage()];
                if stage.verification.policy.is_none() {
                    let (ruling, reason) = judge(
                        &stage.verification,
                        &verdicts,
                        &self.errors,
                        self.failures
                            .get(&spec.steps[*pc].stage())
                            .copied()
                            .unwrap_or(0),
                        &Self::place(spec, *pc),
                    );
                    events.push(Event::Decided {
                        pc: *pc,
                        decision: DecisionRecord {
                            ruling,
                            reason,
                            by: "default-policy".to_string(),
                            stage: stage.name.clone(),
                            batch: spec.steps[*pc].batch(),
                            round: *round,
                            inputs: verdicts,
                            observations: 0,
                            at_ms: now,
                        },
                    });
                }
                events
            }
            (
                Work::Decide {
                    pc,
                    plugin,
                    observations,
                    ..
                },
                WorkOutcome::Decision(result),
            ) => {
                let (ruling, reason) = match result {
                    Ok(d) => (
                        match d.kind {
                            DecisionKind::Proceed => Ruling::Proceed,
                            DecisionKind::Pause => Ruling::Pause,
                            DecisionKind::Rollback => Ruling::Rollback,
                        },
                        d.reason,
                    ),
                    Err(message) => (
                        Ruling::Pause,
                        format!("the policy {} could not decide: {message}", plugin.label()),
                    ),
                };
                let round = self.round.saturating_sub(1);
                let inputs = self.last_round.clone();
                vec![Event::Decided {
                    pc: *pc,
                    decision: DecisionRecord {
                        ruling,
                        reason,
                        by: plugin.label(),
                        stage: spec.stages[spec.steps[*pc].stage()].name.clone(),
                        batch: spec.steps[*pc].batch(),
                        round,
                        inputs,
                        observations: observations.len(),
                        at_ms: now,
                    },
                }]
            }
            (
                Work::Shift {
                    pc,
                    attempt,
                    weights,
                    ..
                },
                WorkOutcome::Done(result),
            ) => vec![match result {
                Ok(()) => Event::TrafficShifted {
                    pc: *pc,
                    weights: weights.clone(),
                    at_ms: now,
                },
                Err(fault) => Event::TrafficFailed {
                    pc: *pc,
                    attempt: *attempt,
                    message: fault.message,
                    retryable: fault.retryable,
                    at_ms: now,
                },
            }],
            (
                Work::RestoreTraffic {
                    stage,
                    attempt,
                    weights,
                    ..
                },
                WorkOutcome::Done(result),
            ) => vec![match result {
                Ok(()) => Event::TrafficRestored {
                    stage: *stage,
                    weights: weights.clone(),
                    at_ms: now,
                },
                Err(fault) => Event::RollbackFailed {
                    pcs: Vec::new(),
                    attempt: *attempt,
                    message: format!("restoring traffic: {}", fault.message),
                    retryable: fault.retryable,
                    at_ms: now,
                },
            }],
            (Work::Rollback { pcs, attempt, .. }, WorkOutcome::Targets(result)) => {
                vec![match result {
                    Ok(results) => Event::RolledBackBatch {
                        pcs: pcs.clone(),
                        attempt: *attempt,
                        results,
                        at_ms: now,
                    },
                    Err(fault) => Event::RollbackFailed {
                        pcs: pcs.clone(),
                        attempt: *attempt,
                        message: fault.message,
                        retryable: fault.retryable,
                        at_ms: now,
                    },
                }]
            }
            (Work::RollbackVerify { pcs, .. }, WorkOutcome::Verdicts(verdicts)) => {
                vec![Event::RollbackVerified {
                    pcs: pcs.clone(),
                    verdicts,
                    at_ms: now,
                }]
            }
            (work, outcome) => {
                // A mismatch is a bug in the engine; make it visible and
                // stop the release rather than guess.
                vec![Event::Blocked {
                    reason: format!("internal: outcome {outcome:?} does not fit work {work:?}"),
                    at_ms: now,
                }]
            }
        }
    }

    /// Turns a human's request into an event, or says why it is refused.
    pub fn command(
        &self,
        spec: &ReleaseSpec,
        actor: &Actor,
        command: Command,
        now: u64,
    ) -> Result<Event, CommandError> {
        let status = self.status();
        let gate_command = matches!(command, Command::Approve { .. } | Command::Reject { .. });
        if gate_command && status != Status::WaitingApproval {
            return Err(refuse(
                "release.not_waiting",
                format!(
                    "the release is {}, not waiting for approval",
                    status.as_str()
                ),
            ));
        }
        match command {
            Command::Approve { comment } => {
                let gate = self
                    .gate
                    .as_ref()
                    .ok_or_else(|| refuse("release.not_waiting", "the release has no open gate"))?;
                self.may_decide_gate(spec, actor, gate)?;
                if gate.approvals.iter().any(|a| a.by == actor.name) {
                    return Err(refuse(
                        "release.already_approved",
                        format!("{} has already approved this gate", actor.name),
                    ));
                }
                Ok(Event::Approved {
                    pc: gate.pc,
                    by: actor.name.clone(),
                    comment,
                    at_ms: now,
                })
            }
            Command::Reject { comment } => {
                let gate = self
                    .gate
                    .as_ref()
                    .ok_or_else(|| refuse("release.not_waiting", "the release has no open gate"))?;
                self.may_decide_gate(spec, actor, gate)?;
                if comment.trim().is_empty() {
                    return Err(refuse(
                        "release.comment_required",
                        "comment: a rejection needs a comment saying why",
                    ));
                }
                Ok(Event::Rejected {
                    pc: gate.pc,
                    by: actor.name.clone(),
                    comment,
                    at_ms: now,
                })
            }
            Command::Pause { reason } => {
                if status != Status::Running {
                    return Err(refuse(
                        "release.not_running",
                        format!(
                            "only a running release can be paused; this one is {}",
                            status.as_str()
                        ),
                    ));
                }
                Ok(Event::Paused {
                    by: actor.name.clone(),
                    reason,
                    at_ms: now,
                })
            }
            Command::Resume => {
                if status != Status::Paused {
                    return Err(refuse(
                        "release.not_paused",
                        format!(
                            "only a paused release can be resumed; this one is {}",
                            status.as_str()
                        ),
                    ));
                }
                Ok(Event::Resumed {
                    by: actor.name.clone(),
                    at_ms: now,
                })
            }
            Command::Rollback {
                mode,
                force,
                reason,
            } => {
                match status {
                    Status::Failed | Status::RolledBack | Status::Rejected => {
                        return Err(refuse(
                            "release.finished",
                            format!(
                                "the release is {}; there is nothing to roll back",
                                status.as_str()
                            ),
                        ));
                    }
                    Status::RollingBack => {
                        let rb = self.rollback.as_ref();
                        if rb.is_some_and(|rb| rb.mode == mode && rb.force == force) {
                            return Err(refuse(
                                "release.rolling_back",
                                "the release is already rolling back",
                            ));
                        }
                    }
                    Status::Blocked if !force => {
                        return Err(refuse(
                            "release.blocked",
                            format!(
                                "{}; repeat the rollback with force",
                                self.outcome.clone().unwrap_or_default()
                            ),
                        ));
                    }
                    _ => {}
                }
                let reason = if reason.trim().is_empty() {
                    format!("{} rolled the release back", actor.name)
                } else {
                    format!("{} rolled the release back: {reason}", actor.name)
                };
                Ok(Event::RollbackStarted {
                    by: actor.name.clone(),
                    reason,
                    mode,
                    force,
                    at_ms: now,
                })
            }
        }
    }

    fn may_decide_gate(
        &self,
        spec: &ReleaseSpec,
        actor: &Actor,
        gate: &GateState,
    ) -> Result<(), CommandError> {
        let Some(rules) = spec.stages[spec.steps[gate.pc].stage()].gate.as_ref() else {
            return Ok(());
        };
        if !actor.admin && !rules.roles.is_empty() && !rules.roles.contains(&actor.role) {
            return Err(refuse(
                "release.forbidden_approver",
                format!(
                    "{} has role {}, and this gate needs one of: {}",
                    actor.name,
                    actor.role,
                    rules.roles.join(", ")
                ),
            ));
        }
        if !rules.starter_may_approve && actor.name == spec.started_by {
            return Err(refuse(
                "release.forbidden_approver",
                format!(
                    "{} started this release and may not decide its gates",
                    actor.name
                ),
            ));
        }
        Ok(())
    }
}
