//! What a release does next, and how the outcome of plugin work becomes
//! events.

use super::answers::deployer_answer;
use super::event::{DecisionRecord, Event, ProgressOf, RollbackMode, Status, UnhealthyTarget};
use super::evidence;
use super::machine::{State, Undo};
use super::policy::CheckVerdict;
use super::{PluginRef, ReleaseSpec, Step};
use crate::domain::plugin::{
    Artifact, Decision, GroupWeight, Observation, PluginFault, PrecheckResult, Progress,
    ReleaseContext, Target, TargetResult, Verdict, VerdictStatus,
};

/// What the engine should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Journal this event; nothing needs calling.
    Record(Event),
    /// Call plugins, then hand the outcome to [`State::conclude`]. Boxed:
    /// plugin work is several times the size of an event.
    Call(Box<Work>),
    /// Nothing to do until this instant, or until a human acts (`None`).
    Wait(Option<u64>),
    /// The release is over.
    Done,
}

fn call(work: Work) -> Action {
    Action::Call(Box::new(work))
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
    /// Checks each target of a batch, one call per target.
    HealthCheck {
        pc: usize,
        plugin: PluginRef,
        ctx: ReleaseContext,
        targets: Vec<Target>,
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

impl Work {
    /// Whether the work only observes: prechecks, health checks, check
    /// rounds and policy decisions change nothing outside the plugin's own
    /// scoped store, so running one again after a crash is harmless. Such
    /// work may start while the events before it are still being made
    /// durable; work that changes targets or traffic may not.
    pub fn observes_only(&self) -> bool {
        match self {
            Work::Precheck { .. }
            | Work::HealthCheck { .. }
            | Work::Verify { .. }
            | Work::Decide { .. }
            | Work::RollbackVerify { .. } => true,
            Work::Deploy { .. }
            | Work::Shift { .. }
            | Work::RestoreTraffic { .. }
            | Work::Rollback { .. } => false,
        }
    }
}

/// What plugin work produced. Plugin faults (traps, deadlines) arrive as
/// errors or as `error` verdicts, never as panics.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkOutcome {
    Precheck(Result<PrecheckResult, String>),
    Targets(Result<Vec<TargetResult>, PluginFault>),
    Verdicts(Vec<CheckVerdict>),
    /// One verdict per target, by target id.
    TargetVerdicts(Vec<(String, Verdict)>),
    Decision(Result<Decision, String>),
    Done(Result<(), PluginFault>),
    /// A deploy, a rollback or a traffic shift is still under way.
    InProgress(Progress),
}

impl State {
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
            let of = ProgressOf::Deploy {
                pc: *pc,
                attempt: *attempt,
            };
            if let Some(wait) = self.progress_wait(spec, &of, spec.steps[*pc].stage(), now) {
                return wait;
            }
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
        call(Work::Deploy {
            pc,
            attempt,
            key,
            ctx: spec.context(*stage, Some(*batch), attempt, &plugin),
            plugin,
            targets: spec.targets_except(targets, &self.skipped),
        })
    }

    /// The checks of a stage with their contexts; after a batch, they are
    /// told when it finished deploying (or rolling back).
    fn checks(
        &self,
        spec: &ReleaseSpec,
        stage: usize,
        batch: Option<u32>,
        attempt: u32,
    ) -> Vec<(PluginRef, ReleaseContext)> {
        let deployed_at_ms = self.deployed_at_ms.filter(|_| batch.is_some());
        spec.stages[stage]
            .verification
            .checks
            .iter()
            .map(|c| {
                let mut ctx = spec.context(stage, batch, attempt, c);
                ctx.deployed_at_ms = deployed_at_ms;
                (c.clone(), ctx)
            })
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
            Step::Precheck { stage, plugin } => call(Work::Precheck {
                pc,
                plugin: plugin.clone(),
                ctx: spec.context(*stage, None, self.attempt, plugin),
                artifacts: spec.artifacts.clone(),
            }),
            Step::Deploy {
                stage,
                batch,
                targets,
            } if self.health_checked != Some(pc) && spec.stages[*stage].health_check.is_some() => {
                let Some(plugin) = spec.stages[*stage].health_check.clone() else {
                    return Action::Wait(None);
                };
                call(Work::HealthCheck {
                    pc,
                    ctx: spec.context(*stage, Some(*batch), self.attempt, &plugin),
                    plugin,
                    targets: spec.targets_except(targets, &self.skipped),
                })
            }
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
                        return call(Work::Decide {
                            pc,
                            plugin: plugin.clone(),
                            ctx: spec.context(*stage, *batch, self.round, plugin),
                            // A shadow check's verdicts never decide.
                            observations: self
                                .observations
                                .iter()
                                .filter(|o| !o.shadow)
                                .cloned()
                                .collect(),
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
                call(Work::Verify {
                    pc,
                    round: self.round,
                    checks: self.checks(spec, *stage, *batch, self.round + 1),
                    targets: spec.targets_except(targets, &self.skipped),
                })
            }
            Step::Shift { stage, percent } => {
                let of = ProgressOf::Shift {
                    pc,
                    attempt: self.attempt,
                };
                if let Some(wait) = self.progress_wait(spec, &of, *stage, now) {
                    return wait;
                }
                let s = &spec.stages[*stage];
                let Some(plugin) = s.traffic.clone() else {
                    return Action::Wait(None);
                };
                call(Work::Shift {
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
            return call(Work::RollbackVerify {
                pcs: pcs.clone(),
                checks: self.checks(spec, stage, spec.steps[pcs[0]].batch(), 1),
                targets: spec.targets_except(&targets, &self.skipped),
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
                let of = ProgressOf::RestoreTraffic {
                    stage: *stage,
                    attempt: rb.attempt,
                };
                if let Some(wait) = self.progress_wait(spec, &of, *stage, now) {
                    return wait;
                }
                let Some(plugin) = spec.stages[*stage].traffic.clone() else {
                    return Action::Wait(None);
                };
                call(Work::RestoreTraffic {
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
                            "rollback stopped before {}: {why}; roll back with force to pass it, or, as an admin, abandon the release to free its environment",
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
                        let of = ProgressOf::Rollback {
                            pcs: pcs.clone(),
                            attempt: *attempt,
                        };
                        if let Some(wait) = self.progress_wait(spec, &of, stage, now) {
                            return wait;
                        }
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
                        call(Work::Rollback {
                            pcs: pcs.clone(),
                            attempt: *attempt,
                            key: key.clone(),
                            ctx: spec.context(stage, spec.steps[pcs[0]].batch(), *attempt, &plugin),
                            plugin,
                            targets: spec.targets_except(&targets, &self.skipped),
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

    /// While plugin work is in progress: nothing until it is time to ask
    /// again, or, once the stage's progress deadline has passed, the work's
    /// failure, which the stage's failure rules then handle like any other.
    /// `None` when it is time to ask (or the work never reported
    /// progress).
    fn progress_wait(
        &self,
        spec: &ReleaseSpec,
        of: &ProgressOf,
        stage: usize,
        now: u64,
    ) -> Option<Action> {
        let p = self.progress.as_ref().filter(|p| p.of == *of)?;
        let allowed = spec.stages[stage].progress_deadline_ms;
        let deadline = p.since_ms.saturating_add(allowed);
        if now >= deadline {
            let message = format!(
                "still in progress when the stage's progress deadline of {} passed ({})",
                duration_text(allowed),
                p.note
            );
            return Some(Action::Record(match of.clone() {
                ProgressOf::Deploy { pc, attempt } => Event::DeployFailed {
                    pc,
                    attempt,
                    message,
                    retryable: false,
                    at_ms: now,
                },
                ProgressOf::Shift { pc, attempt } => Event::TrafficFailed {
                    pc,
                    attempt,
                    message,
                    retryable: false,
                    at_ms: now,
                },
                ProgressOf::Rollback { pcs, attempt } => Event::RollbackFailed {
                    pcs,
                    attempt,
                    message,
                    retryable: false,
                    at_ms: now,
                },
                ProgressOf::RestoreTraffic { attempt, .. } => Event::RollbackFailed {
                    pcs: Vec::new(),
                    attempt,
                    message: format!("restoring traffic: {message}"),
                    retryable: false,
                    at_ms: now,
                },
            }));
        }
        (now < p.ask_at_ms).then(|| Action::Wait(Some(p.ask_at_ms.min(deadline))))
    }

    /// Keeps a progress answer that says nothing new out of the journal:
    /// when `events` is one progress report of the work already under way
    /// with the same note, only the time to ask again moves, in memory
    /// (after a restart the work is asked about at once, which a plugin
    /// answers the same way). Returns whether it did so.
    pub fn note_unchanged_progress(&mut self, events: &[Event]) -> bool {
        let [
            Event::Progressed {
                of,
                note,
                ask_at_ms,
                ..
            },
        ] = events
        else {
            return false;
        };
        match &mut self.progress {
            Some(p) if p.of == *of && p.note == *note => {
                p.ask_at_ms = *ask_at_ms;
                true
            }
            _ => false,
        }
    }

    /// Turns the outcome of `work` into events. What a deployer answered is
    /// first checked against what it was asked (see [`deployer_answer`]).
    pub fn conclude(
        &self,
        spec: &ReleaseSpec,
        work: &Work,
        outcome: WorkOutcome,
        now: u64,
    ) -> Vec<Event> {
        if let (Some(of), WorkOutcome::InProgress(progress)) = (progress_of(work), &outcome) {
            let since_ms = self
                .progress
                .as_ref()
                .filter(|p| p.of == of)
                .map_or(now, |p| p.since_ms);
            return vec![Event::Progressed {
                of,
                note: bounded_note(&progress.note),
                since_ms,
                ask_at_ms: now.saturating_add(progress.ask_after_ms()),
                at_ms: now,
            }];
        }
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
            (Work::HealthCheck { pc, .. }, WorkOutcome::TargetVerdicts(verdicts)) => {
                vec![Event::TargetsChecked {
                    pc: *pc,
                    unhealthy: verdicts
                        .into_iter()
                        .filter(|(_, v)| v.status != VerdictStatus::Pass)
                        .map(|(target, v)| UnhealthyTarget {
                            target,
                            summary: format!("{}: {}", v.status.as_str(), v.summary),
                        })
                        .collect(),
                    at_ms: now,
                }]
            }
            (
                Work::Deploy {
                    pc,
                    attempt,
                    plugin,
                    targets,
                    ..
                },
                WorkOutcome::Targets(result),
            ) => {
                let result = result.and_then(|r| deployer_answer(plugin, targets, r));
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
                    let (ruling, reason, verdicts) = evidence::default_ruling(
                        &stage.verification,
                        &verdicts,
                        &self.errors,
                        self.failures
                            .get(&spec.steps[*pc].stage())
                            .copied()
                            .unwrap_or(0),
                        &Self::place(spec, *pc),
                        self.bake_left(now),
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
                let round = self.round.saturating_sub(1);
                let stage = &spec.stages[spec.steps[*pc].stage()];
                let (ruling, reason, by, inputs) = evidence::plugin_ruling(
                    &stage.verification.checks,
                    &self.last_round,
                    result,
                    &plugin.label(),
                    &Self::place(spec, *pc),
                    self.bake_left(now),
                );
                vec![Event::Decided {
                    pc: *pc,
                    decision: DecisionRecord {
                        ruling,
                        reason,
                        by,
                        stage: stage.name.clone(),
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
            (
                Work::Rollback {
                    pcs,
                    attempt,
                    plugin,
                    targets,
                    ..
                },
                WorkOutcome::Targets(result),
            ) => {
                let result = result.and_then(|r| deployer_answer(plugin, targets, r));
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
}

/// The long-running work a piece of plugin work is, if it may answer in
/// progress.
fn progress_of(work: &Work) -> Option<ProgressOf> {
    match work {
        Work::Deploy { pc, attempt, .. } => Some(ProgressOf::Deploy {
            pc: *pc,
            attempt: *attempt,
        }),
        Work::Shift { pc, attempt, .. } => Some(ProgressOf::Shift {
            pc: *pc,
            attempt: *attempt,
        }),
        Work::Rollback { pcs, attempt, .. } => Some(ProgressOf::Rollback {
            pcs: pcs.clone(),
            attempt: *attempt,
        }),
        Work::RestoreTraffic { stage, attempt, .. } => Some(ProgressOf::RestoreTraffic {
            stage: *stage,
            attempt: *attempt,
        }),
        _ => None,
    }
}

/// The longest progress note journaled, in bytes.
const MAX_NOTE_BYTES: usize = 300;

/// A plugin's progress note, cut to [`MAX_NOTE_BYTES`] at a character
/// boundary.
fn bounded_note(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_string();
    }
    let mut end = MAX_NOTE_BYTES;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// A duration as a release manager reads it: `10m`, `90s`, `1h 30m`.
fn duration_text(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}
