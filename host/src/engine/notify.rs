//! Telling a flow's notifier plugins of a release's events. Notices are sent
//! after the events are durable, each in a task of its own: a slow or
//! failing notifier never holds up or changes the release, and its failure
//! is logged and counted like any plugin call.

use crate::domain::plugin::{Call, ReleaseEvent};
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
        Event::Finished { status, reason, .. } => {
            format!("{}{}", status.as_str(), said(reason))
        }
        _ => format!("now {}", status.as_str()),
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
    if spec.notify.is_empty() || !spec.notify_on.iter().any(|e| e == event.name()) {
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
                Ok(Err(e)) => format!("{}: {e}", e.kind.code()),
                Err(e) => e.to_string(),
            };
            tracing::warn!(%release, plugin = %plugin.label(), error = %failure,
                "A notifier was not told of a release event.");
        });
    }
}
