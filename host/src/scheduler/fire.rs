//! Handling a schedule's due fires: each is journaled before its release
//! starts, and the release id is journaled with it, so that a crash at any
//! point neither fires twice nor loses the fire.

use super::{Shared, version};
use crate::domain::release::{Actor, Command, RollbackMode, Status};
use crate::domain::schedule::{
    Cron, Decision, Fire, Outcome, Overlap, Schedule, SkipReason, VersionSource, due,
};
use crate::engine::{self, StartOptions, StartRequest};
use crate::store::AuditEntry;

/// Who a schedule's releases and rollbacks are by.
pub fn actor(schedule: &str) -> Actor {
    Actor {
        name: format!("schedule:{schedule}"),
        role: "scheduler".to_string(),
        admin: false,
    }
}

/// Handles a schedule's journaled fire whose release has not started (a
/// crash came between), then every fire due now. Returns the newest fire
/// handled, or `cursor_ms` when none was.
pub(super) async fn run(shared: &Shared, schedule: &Schedule, cron: &Cron, cursor_ms: u64) -> u64 {
    let mut cursor = cursor_ms;
    match shared.store.last_fire(&schedule.name) {
        Ok(Some(fire)) if matches!(fire.outcome, Outcome::Pending { .. }) => {
            cursor = cursor.max(fire.at_ms);
            start(shared, schedule, fire).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(schedule = %schedule.name, error = %e, "The schedule's journal cannot be read.");
            return cursor;
        }
    }
    let now = shared.clock.now_ms();
    for (at_ms, decision) in due(cron, schedule.missed, cursor, now, shared.options.grace_ms) {
        match decision {
            Decision::Run => fire(shared, schedule, at_ms).await,
            Decision::Skip(message) => {
                let fire = Fire {
                    schedule: schedule.name.clone(),
                    at_ms,
                    fired_ms: now,
                    version: None,
                    outcome: Outcome::Skipped {
                        reason: SkipReason::Missed,
                        message,
                    },
                };
                if !finish(shared, schedule, fire).await {
                    return cursor;
                }
            }
        }
        cursor = at_ms;
    }
    cursor
}

/// One fire that is to run: skipped inside a freeze window, or while the
/// previous release runs under the `skip` overlap policy; otherwise
/// journaled with the id its release will have, then started.
async fn fire(shared: &Shared, schedule: &Schedule, at_ms: u64) {
    let now = shared.clock.now_ms();
    let mut fire = Fire {
        schedule: schedule.name.clone(),
        at_ms,
        fired_ms: now,
        version: None,
        outcome: Outcome::Pending {
            release: engine::new_id(now),
        },
    };
    let skip = match skip_reason(shared, schedule, now).await {
        Ok(None) => None,
        Ok(Some((reason, message))) => Some(Outcome::Skipped { reason, message }),
        Err(message) => Some(Outcome::Failed { message }),
    };
    if let Some(outcome) = skip {
        fire.outcome = outcome;
        finish(shared, schedule, fire).await;
        return;
    }
    let journaled = match shared.store.put_fire(&fire) {
        Ok(()) => shared.store.sync().await,
        Err(e) => Err(e),
    };
    if let Err(e) = journaled {
        // Nothing started: the fire is not journaled, so it is still due and
        // the missed-run policy decides about it when the store is back.
        tracing::error!(schedule = %schedule.name, error = %e, "A fire cannot be journaled.");
        return;
    }
    start(shared, schedule, fire).await;
}

/// Why a fire does not start now: a freeze window, or the overlap policy.
async fn skip_reason(
    shared: &Shared,
    schedule: &Schedule,
    now: u64,
) -> Result<Option<(SkipReason, String)>, String> {
    let (app, env) = (&schedule.application, &schedule.environment);
    if let Some(why) = shared
        .engine
        .frozen(app, env, now)
        .map_err(|e| e.to_string())?
    {
        return Ok(Some((SkipReason::Frozen, why)));
    }
    let active = shared
        .store
        .active_release(app, env)
        .map_err(|e| e.to_string())?;
    match active {
        Some(release) if schedule.overlap == Overlap::Skip => Ok(Some((
            SkipReason::Overlap,
            format!("release {release} still runs in {app}/{env} (overlap policy skip)"),
        ))),
        _ => Ok(None),
    }
}

/// Starts the release of a journaled fire, unless it started before a
/// crash, and journals the outcome.
async fn start(shared: &Shared, schedule: &Schedule, mut fire: Fire) {
    let Outcome::Pending { release } = fire.outcome.clone() else {
        return;
    };
    fire.outcome = match shared.store.release_summary(&release) {
        Ok(Some(summary)) => {
            fire.version = Some(summary.version.clone());
            Outcome::Started {
                release,
                queued: summary.status == Status::Queued,
            }
        }
        Ok(None) => launch(shared, schedule, &mut fire, release).await,
        Err(e) => {
            tracing::error!(schedule = %schedule.name, error = %e, "A fire's release cannot be read.");
            return;
        }
    };
    finish(shared, schedule, fire).await;
}

/// Resolves the version, supersedes the running release when the policy
/// says so, and starts the release as the API would, with the schedule as
/// the actor.
async fn launch(shared: &Shared, schedule: &Schedule, fire: &mut Fire, id: String) -> Outcome {
    let version = match &schedule.version {
        VersionSource::Fixed { version } => version.clone(),
        VersionSource::Url { url } => match async {
            version::check_origin(&shared.origins, url)?;
            version::resolve(&shared.http, url).await
        }
        .await
        {
            Ok(v) => v,
            Err(message) => return Outcome::Failed { message },
        },
    };
    fire.version = Some(version.clone());
    let actor = actor(&schedule.name);
    if schedule.overlap == Overlap::Supersede {
        supersede(shared, schedule, &actor, fire.at_ms).await;
    }
    let request = StartRequest {
        application: schedule.application.clone(),
        environment: schedule.environment.clone(),
        version,
        flow: schedule.flow.clone(),
        flow_version: schedule.flow_version,
        emergency: false,
        artifacts: Vec::new(),
        train: None,
    };
    let options = StartOptions {
        id: Some(id.clone()),
        queue: schedule.overlap != Overlap::Skip,
        override_freeze: false,
    };
    match shared
        .engine
        .start_release_with(request, &actor, options)
        .await
    {
        Ok((_, state)) => Outcome::Started {
            release: id,
            // A queued release has no events yet.
            queued: state.events == 0,
        },
        Err(engine::Error::Frozen(message)) => Outcome::Skipped {
            reason: SkipReason::Frozen,
            message,
        },
        Err(e @ engine::Error::Busy { .. }) => Outcome::Skipped {
            reason: SkipReason::Overlap,
            message: e.to_string(),
        },
        Err(e) => Outcome::Failed {
            message: format!("the release cannot start: {e}"),
        },
    }
}

/// Rolls back the environment's running release if this schedule started
/// it; a release someone else started is left alone and the new one queues
/// behind it.
async fn supersede(shared: &Shared, schedule: &Schedule, actor: &Actor, at_ms: u64) {
    let active = shared
        .store
        .active_release(&schedule.application, &schedule.environment);
    let Ok(Some(running)) = active else {
        return;
    };
    let ours = shared
        .store
        .release_spec(&running)
        .ok()
        .flatten()
        .is_some_and(|spec| spec.started_by == actor.name);
    if !ours {
        return;
    }
    let command = Command::Rollback {
        mode: RollbackMode::Regular,
        force: false,
        reason: format!("superseded by the fire of {at_ms}"),
    };
    if let Err(e) = shared.engine.command(&running, actor, command).await {
        tracing::warn!(schedule = %schedule.name, release = %running, error = %e,
            "The superseded release cannot be rolled back; the new one queues behind it.");
    }
}

/// Journals a fire's outcome durably, then tells the audit log, the
/// metrics and subscribers. Returns whether it was journaled.
async fn finish(shared: &Shared, schedule: &Schedule, fire: Fire) -> bool {
    let written = match shared.store.put_fire(&fire) {
        Ok(()) => shared.store.sync().await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::error!(schedule = %schedule.name, error = %e, "A fire's outcome cannot be journaled.");
        return false;
    }
    let (outcome, code, message) = match &fire.outcome {
        Outcome::Started { .. } | Outcome::Pending { .. } => {
            shared.metrics.schedule_fire(fire.outcome.as_str());
            ("allowed", None, None)
        }
        Outcome::Skipped { reason, message } => {
            shared.metrics.schedule_skip(reason.as_str());
            (
                "refused",
                Some(format!("schedule.skipped.{}", reason.as_str())),
                Some(message.clone()),
            )
        }
        Outcome::Failed { message } => {
            shared.metrics.schedule_fire("failed");
            (
                "refused",
                Some("schedule.failed".to_string()),
                Some(message.clone()),
            )
        }
    };
    tracing::info!(schedule = %schedule.name, at_ms = fire.at_ms, outcome = fire.outcome.as_str(),
        release = fire.outcome.release().unwrap_or("-"), "Schedule fired.");
    let entry = AuditEntry {
        seq: 0,
        at_ms: fire.fired_ms,
        actor: actor(&schedule.name).name,
        role: Some("scheduler".to_string()),
        action: "FIRE schedule".to_string(),
        target: format!("/api/v1/schedules/{}", schedule.name),
        from: None,
        outcome: outcome.to_string(),
        status: 0,
        code,
        release: fire.outcome.release().map(str::to_string),
        comment: Some(match message {
            Some(m) => format!("fire of {}: {m}", fire.at_ms),
            None => format!("fire of {}", fire.at_ms),
        }),
    };
    if let Err(e) = shared.store.append_audit(&entry) {
        tracing::error!(schedule = %schedule.name, error = %e, "An audit entry cannot be written.");
    }
    let _ = shared.fires.send(fire);
    true
}
