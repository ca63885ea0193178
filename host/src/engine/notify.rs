//! Telling a flow's notifier plugins of a release's events. Notices are sent
//! after the events are durable, each in a task of its own: a slow or
//! failing notifier never holds up or changes the release, and its failure
//! is logged and counted like any plugin call.

use crate::domain::plugin::{Call, ReleaseEvent};
use crate::domain::release::policy::Ruling;
use crate::domain::release::{Event, ReleaseSpec, Status};
use crate::registry::Registry;

/// What happened, in a line a person reads in a chat channel; the release
/// itself (application, environment, version) travels in the context.
pub(super) fn message(spec: &ReleaseSpec, event: &Event, status: Status) -> String {
    let gate = |pc: usize| {
        spec.steps
            .get(pc)
            .and_then(|s| spec.stages.get(s.stage()))
            .map_or("a gate".to_string(), |s| format!("`{}`", s.name))
    };
    let said = |comment: &str| {
        if comment.is_empty() {
            String::new()
        } else {
            format!(": {comment}")
        }
    };
    match event {
        Event::Started { by, .. } => format!("started by {by}"),
        Event::GateOpened { pc, .. } => format!("waiting for approval at {}", gate(*pc)),
        Event::Approved {
            pc, by, comment, ..
        } => {
            format!("{by} approved {}{}", gate(*pc), said(comment))
        }
        Event::Rejected {
            pc, by, comment, ..
        } => {
            format!("{by} rejected {}{}", gate(*pc), said(comment))
        }
        Event::Paused { by, reason, .. } => format!("paused by {by}{}", said(reason)),
        Event::Resumed { by, .. } => format!("resumed by {by}"),
        Event::RollbackStarted { by, reason, .. } => {
            format!("rolling back ({by}){}", said(reason))
        }
        Event::Blocked { reason, .. } => format!("blocked, needs a human: {reason}"),
        Event::Decided { decision, .. } => match decision.ruling {
            Ruling::Rollback => format!("rolling back: {}", decision.reason),
            Ruling::Pause => format!("paused for a human: {}", decision.reason),
            _ => format!("{}: {}", decision.ruling.as_str(), decision.reason),
        },
        Event::Finished { status, reason, .. } => {
            format!("{}{}", status.as_str(), said(reason))
        }
        _ => format!("now {}", status.as_str()),
    }
}

/// Whether a flow asking for `notify_on` wants to hear of `event`. A policy's
/// decision to roll back or pause is what a person hears of as the release
/// rolling back or pausing, so it counts as those events too.
pub(super) fn wanted(notify_on: &[String], event: &Event) -> bool {
    let asked = |name: &str| notify_on.iter().any(|e| e == name);
    match event {
        Event::Decided { decision, .. } => {
            asked("decided")
                || (decision.ruling == Ruling::Rollback && asked("rollback-started"))
                || (decision.ruling == Ruling::Pause && asked("paused"))
        }
        other => asked(other.name()),
    }
}

/// Sends one event to every notifier of the release that asked for it.
pub(super) fn send(
    registry: &Registry,
    work: &tokio::runtime::Handle,
    spec: &ReleaseSpec,
    event: &Event,
    status: Status,
) {
    if spec.notify.is_empty() || !wanted(&spec.notify_on, event) {
        return;
    }
    let notice = ReleaseEvent {
        kind: event.name().to_string(),
        message: message(spec, event, status),
        at_ms: event.at_ms(),
    };
    for plugin in &spec.notify {
        let registry = registry.clone();
        let plugin = plugin.clone();
        let ctx = spec.context(usize::MAX, None, 1, &plugin);
        let event = notice.clone();
        let release = spec.id.clone();
        work.spawn(async move {
            let call = Call::Notify { ctx, event };
            let failure = match registry.invoke(&plugin.plugin, &plugin.version, call).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(%release, plugin = %plugin.label(), error = %failure,
                "A notifier was not told of a release event.");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::release::DecisionRecord;

    fn decided(ruling: Ruling) -> Event {
        Event::Decided {
            pc: 3,
            decision: DecisionRecord {
                ruling,
                reason: "error_rate 7.2% > 5% at batch 2".into(),
                by: "default-policy".into(),
                stage: "rollout".into(),
                batch: Some(1),
                round: 1,
                inputs: Vec::new(),
                observations: 0,
                at_ms: 1,
            },
        }
    }

    #[test]
    fn a_policy_rolling_back_is_news_and_a_passing_round_is_not() {
        let defaults: Vec<String> = crate::domain::flow::DEFAULT_NOTIFY_ON
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(wanted(&defaults, &decided(Ruling::Rollback)));
        assert!(wanted(&defaults, &decided(Ruling::Pause)));
        assert!(!wanted(&defaults, &decided(Ruling::Proceed)));
        assert!(!wanted(
            &["finished".to_string()],
            &decided(Ruling::Rollback)
        ));
        assert!(wanted(&["decided".to_string()], &decided(Ruling::Proceed)));
        let spec = crate::domain::release::tests::sample_spec("r1");
        assert_eq!(
            message(&spec, &decided(Ruling::Rollback), Status::RollingBack),
            "rolling back: error_rate 7.2% > 5% at batch 2"
        );
    }
}
