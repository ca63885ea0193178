//! Carrying out a release's plugin work through the registry. A plugin's
//! failure (trap, deadline, missing plugin) becomes data the state machine
//! acts on, never an error of the engine.

use tokio::task::JoinSet;

use crate::domain::plugin::{
    Call, GroupWeight, Output, PluginFault, Progress, ReleaseContext, Target, Verdict,
    VerdictStatus,
};
use crate::domain::recording::{CallRecording, CheckRecording};
use crate::domain::release::policy::CheckVerdict;
use crate::domain::release::{PluginRef, Work, WorkOutcome, answers};
use crate::plugins::{ErrorKind, Tape, Taped};
use crate::registry::Registry;

/// Calls one plugin; a failure to run it is a fault with a message naming
/// what went wrong. Deadlines, traps and instantiation failures may pass on
/// a second attempt; the rest will not.
async fn call(registry: &Registry, plugin: &PluginRef, call: Call) -> Result<Output, PluginFault> {
    taped_call(registry, plugin, call, Tape::Live).await.0
}

/// [`call`], recording what the plugin sees of the world or answering it
/// from a recording, as `tape` says.
pub(super) async fn taped_call(
    registry: &Registry,
    plugin: &PluginRef,
    call: Call,
    tape: Tape,
) -> (Result<Output, PluginFault>, Taped) {
    match registry
        .invoke_taped(&plugin.plugin, &plugin.version, call, tape)
        .await
    {
        Ok((Ok(invocation), taped)) => (Ok(invocation.output), taped),
        Ok((Err(e), taped)) => (
            Err(PluginFault {
                // The error's own text starts with its code already.
                message: format!("{} {e}", plugin.label()),
                retryable: matches!(
                    e.kind,
                    ErrorKind::DeadlineExceeded | ErrorKind::Trap | ErrorKind::Instantiation
                ),
            }),
            taped,
        ),
        Err(e) => (
            Err(PluginFault {
                message: format!("{}: {e}", plugin.label()),
                retryable: false,
            }),
            Taped::default(),
        ),
    }
}

fn unexpected(plugin: &PluginRef, output: &Output) -> PluginFault {
    PluginFault {
        message: format!(
            "{} answered with an unexpected output: {output:?}",
            plugin.label()
        ),
        retryable: false,
    }
}

/// Runs every check over the targets at once and collects the verdicts in
/// the order the flow lists the checks; with `record`, also what each check
/// saw of the world.
async fn verify(
    registry: &Registry,
    checks: &[(PluginRef, ReleaseContext)],
    targets: &[Target],
    record: bool,
) -> (Vec<CheckVerdict>, Vec<CheckRecording>) {
    let mut set = JoinSet::new();
    for (i, (plugin, ctx)) in checks.iter().cloned().enumerate() {
        let registry = registry.clone();
        let targets = targets.to_vec();
        let tape = if record { Tape::Record } else { Tape::Live };
        set.spawn(async move {
            let kept = record.then(|| recording_of(&plugin, &ctx, &targets, None));
            let (answer, taped) =
                taped_call(&registry, &plugin, Call::Verify { ctx, targets }, tape).await;
            let verdict = verdict_of(&plugin, answer);
            let kept = kept.map(|mut kept| {
                kept.call = taped.recording.unwrap_or_else(|| CallRecording {
                    incomplete: Some("the check did not run".to_string()),
                    ..Default::default()
                });
                kept
            });
            (
                i,
                CheckVerdict {
                    check: plugin.label(),
                    verdict,
                    shadow: plugin.shadow,
                },
                kept,
            )
        });
    }
    let mut verdicts = Vec::with_capacity(checks.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(v) => verdicts.push(v),
            Err(e) => tracing::error!(error = %e, "A check task failed."),
        }
    }
    verdicts.sort_by_key(|(i, _, _)| *i);
    // A check whose task died still counts, as an error, and its round is
    // not replayable.
    let mut out = Vec::with_capacity(checks.len());
    let mut recordings = Vec::new();
    let mut found = verdicts.into_iter().peekable();
    for (i, (plugin, ctx)) in checks.iter().enumerate() {
        match found.next_if(|(j, _, _)| *j == i) {
            Some((_, v, kept)) => {
                out.push(v);
                recordings.extend(kept);
            }
            None => {
                out.push(CheckVerdict {
                    check: plugin.label(),
                    verdict: error_verdict("the check's task failed".to_string()),
                    shadow: plugin.shadow,
                });
                if record {
                    let why = "the check's task failed".to_string();
                    recordings.push(recording_of(plugin, ctx, targets, Some(why)));
                }
            }
        }
    }
    (out, recordings)
}

/// The recording of a check call about to be made (or that could not be
/// made, and why), with the context it is made in.
fn recording_of(
    plugin: &PluginRef,
    ctx: &ReleaseContext,
    targets: &[Target],
    failed: Option<String>,
) -> CheckRecording {
    CheckRecording {
        check: plugin.label(),
        stage: ctx.stage.clone(),
        batch: ctx.batch,
        attempt: ctx.attempt,
        deployed_at_ms: ctx.deployed_at_ms,
        targets: targets.iter().map(|t| t.id.clone()).collect(),
        call: CallRecording {
            incomplete: failed,
            ..Default::default()
        },
    }
}

/// The verdict a check's answer comes to.
pub(super) fn verdict_of(plugin: &PluginRef, answer: Result<Output, PluginFault>) -> Verdict {
    match answer {
        Ok(Output::Verdict(v)) => v,
        Ok(other) => error_verdict(unexpected(plugin, &other).message),
        Err(fault) => error_verdict(fault.message),
    }
}

pub(super) fn error_verdict(summary: String) -> Verdict {
    Verdict {
        status: VerdictStatus::Error,
        summary,
        metrics: Vec::new(),
    }
}

/// Checks each target on its own, all at once: one verdict per target.
async fn check_each(
    registry: &Registry,
    plugin: &PluginRef,
    ctx: &crate::domain::plugin::ReleaseContext,
    targets: &[Target],
) -> Vec<(String, Verdict)> {
    let mut set = JoinSet::new();
    for target in targets.iter().cloned() {
        let (registry, plugin, ctx) = (registry.clone(), plugin.clone(), ctx.clone());
        set.spawn(async move {
            let id = target.id.clone();
            let targets = vec![target];
            let answer = call(&registry, &plugin, Call::Verify { ctx, targets }).await;
            (id, verdict_of(&plugin, answer))
        });
    }
    let mut verdicts = Vec::with_capacity(targets.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(v) = joined {
            verdicts.push(v);
        }
    }
    // A target whose check task died is reported unhealthy.
    for t in targets {
        if !verdicts.iter().any(|(id, _)| *id == t.id) {
            verdicts.push((
                t.id.clone(),
                error_verdict("the check's task failed".to_string()),
            ));
        }
    }
    verdicts.sort_by_key(|(id, _)| targets.iter().position(|t| t.id == *id));
    verdicts
}

/// Carries out one piece of plugin work, with the recordings of a check
/// round's calls (empty for other work).
pub async fn perform(registry: &Registry, work: &Work) -> (WorkOutcome, Vec<CheckRecording>) {
    match work {
        Work::Verify {
            checks, targets, ..
        } => {
            let (verdicts, recordings) = verify(registry, checks, targets, true).await;
            (WorkOutcome::Verdicts(verdicts), recordings)
        }
        other => (perform_other(registry, other).await, Vec::new()),
    }
}

/// Carries out plugin work other than a check round.
async fn perform_other(registry: &Registry, work: &Work) -> WorkOutcome {
    match work {
        Work::HealthCheck {
            plugin,
            ctx,
            targets,
            ..
        } => WorkOutcome::TargetVerdicts(check_each(registry, plugin, ctx, targets).await),
        Work::Precheck {
            plugin,
            ctx,
            artifacts,
            ..
        } => {
            let c = Call::Precheck {
                ctx: ctx.clone(),
                artifacts: artifacts.clone(),
            };
            WorkOutcome::Precheck(match call(registry, plugin, c).await {
                Ok(Output::Precheck(r)) => Ok(r),
                Ok(other) => Err(unexpected(plugin, &other).message),
                Err(fault) => Err(fault.message),
            })
        }
        Work::Deploy {
            key,
            plugin,
            ctx,
            targets,
            ..
        }
        | Work::Rollback {
            key,
            plugin,
            ctx,
            targets,
            ..
        } => {
            let (ctx, targets, idempotency_key) = (ctx.clone(), targets.clone(), key.clone());
            let c = if matches!(work, Work::Deploy { .. }) {
                Call::Deploy {
                    ctx,
                    targets,
                    idempotency_key,
                }
            } else {
                Call::Rollback {
                    ctx,
                    targets,
                    idempotency_key,
                }
            };
            match call(registry, plugin, c).await {
                Ok(Output::Targets(r)) => WorkOutcome::Targets(r),
                Ok(Output::InProgress(p)) => WorkOutcome::InProgress(p),
                Ok(other) => WorkOutcome::Targets(Err(unexpected(plugin, &other))),
                Err(fault) => WorkOutcome::Targets(Err(fault)),
            }
        }
        Work::Verify {
            checks, targets, ..
        }
        | Work::RollbackVerify {
            checks, targets, ..
        } => WorkOutcome::Verdicts(verify(registry, checks, targets, false).await.0),
        Work::Decide {
            plugin,
            ctx,
            observations,
            ..
        } => {
            let c = Call::Decide {
                ctx: ctx.clone(),
                observations: observations.clone(),
            };
            WorkOutcome::Decision(match call(registry, plugin, c).await {
                Ok(Output::Decision(d)) => Ok(d),
                Ok(other) => Err(unexpected(plugin, &other).message),
                Err(fault) => Err(fault.message),
            })
        }
        Work::Shift {
            plugin,
            ctx,
            weights,
            ..
        }
        | Work::RestoreTraffic {
            plugin,
            ctx,
            weights,
            ..
        } => match shift(registry, plugin, ctx, weights).await {
            Ok(Shifted::Done) => WorkOutcome::Done(Ok(())),
            Ok(Shifted::InProgress(p)) => WorkOutcome::InProgress(p),
            Err(fault) => WorkOutcome::Done(Err(fault)),
        },
    }
}

/// Where a shift of traffic stands.
enum Shifted {
    Done,
    InProgress(Progress),
}

/// Sets a traffic plugin's weights, then reads them back: a shift counts
/// only once the weights in force are the ones set. A shift still being
/// applied is read back once the plugin says it is done.
async fn shift(
    registry: &Registry,
    plugin: &PluginRef,
    ctx: &ReleaseContext,
    weights: &[GroupWeight],
) -> Result<Shifted, PluginFault> {
    let set = Call::SetWeights {
        ctx: ctx.clone(),
        weights: weights.to_vec(),
    };
    match call(registry, plugin, set).await? {
        Output::Done(r) => r?,
        Output::InProgress(p) => return Ok(Shifted::InProgress(p)),
        other => return Err(unexpected(plugin, &other)),
    }
    let read = Call::CurrentWeights { ctx: ctx.clone() };
    match call(registry, plugin, read).await? {
        Output::Weights(read) => {
            answers::traffic_readback(plugin, weights, &read?).map(|()| Shifted::Done)
        }
        other => Err(unexpected(plugin, &other)),
    }
}
