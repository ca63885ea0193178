//! Conversions between the domain's plugin types and the generated bindings.

use super::bindings::types as wit;
use super::bindings::{deployer, notifier, precheck, traffic};
use crate::domain::plugin as d;

type WitArtifact = precheck::exports::greenlight::plugin0_1_0::precheck::Artifact;
type WitPrecheckResult = precheck::exports::greenlight::plugin0_1_0::precheck::PrecheckResult;
type WitTargetResult = deployer::exports::greenlight::plugin0_1_0::deployer::TargetResult;
type WitGroupWeight = traffic::exports::greenlight::plugin0_1_0::traffic::GroupWeight;
type WitReleaseEvent = notifier::exports::greenlight::plugin0_1_0::notifier::ReleaseEvent;

pub(super) fn context(c: &d::ReleaseContext) -> wit::ReleaseContext {
    wit::ReleaseContext {
        release_id: c.release_id.clone(),
        application: c.application.clone(),
        environment: c.environment.clone(),
        version: c.version.clone(),
        previous_version: c.previous_version.clone(),
        stage: c.stage.clone(),
        batch: c.batch,
        attempt: c.attempt,
        parameters: c.parameters.clone(),
    }
}

pub(super) fn targets(ts: &[d::Target]) -> Vec<wit::Target> {
    ts.iter()
        .map(|t| wit::Target {
            id: t.id.clone(),
            address: t.address.clone(),
            group: t.group.clone(),
            labels: t.labels.clone(),
        })
        .collect()
}

pub(super) fn artifacts(a: &[d::Artifact]) -> Vec<WitArtifact> {
    a.iter()
        .map(|a| WitArtifact {
            kind: a.kind.clone(),
            name: a.name.clone(),
            content: a.content.clone(),
        })
        .collect()
}

fn status_to_wit(s: d::VerdictStatus) -> wit::VerdictStatus {
    match s {
        d::VerdictStatus::Pass => wit::VerdictStatus::Pass,
        d::VerdictStatus::Fail => wit::VerdictStatus::Fail,
        d::VerdictStatus::Inconclusive => wit::VerdictStatus::Inconclusive,
        d::VerdictStatus::NoData => wit::VerdictStatus::NoData,
        d::VerdictStatus::Error => wit::VerdictStatus::Error,
    }
}

fn status_from_wit(s: wit::VerdictStatus) -> d::VerdictStatus {
    match s {
        wit::VerdictStatus::Pass => d::VerdictStatus::Pass,
        wit::VerdictStatus::Fail => d::VerdictStatus::Fail,
        wit::VerdictStatus::Inconclusive => d::VerdictStatus::Inconclusive,
        wit::VerdictStatus::NoData => d::VerdictStatus::NoData,
        wit::VerdictStatus::Error => d::VerdictStatus::Error,
    }
}

fn verdict_to_wit(v: &d::Verdict) -> wit::Verdict {
    wit::Verdict {
        status: status_to_wit(v.status),
        summary: v.summary.clone(),
        metrics: v
            .metrics
            .iter()
            .map(|m| wit::Metric {
                name: m.name.clone(),
                value: m.value,
            })
            .collect(),
    }
}

pub(super) fn verdict(v: wit::Verdict) -> d::Verdict {
    d::Verdict {
        status: status_from_wit(v.status),
        summary: v.summary,
        metrics: v
            .metrics
            .into_iter()
            .map(|m| d::Metric {
                name: m.name,
                value: m.value,
            })
            .collect(),
    }
}

pub(super) fn observations(os: &[d::Observation]) -> Vec<wit::Observation> {
    os.iter()
        .map(|o| wit::Observation {
            check: o.check.clone(),
            stage: o.stage.clone(),
            batch: o.batch,
            verdict: verdict_to_wit(&o.verdict),
            at_ms: o.at_ms,
        })
        .collect()
}

pub(super) fn decision(d: wit::Decision) -> d::Decision {
    d::Decision {
        kind: match d.kind {
            wit::DecisionKind::Proceed => d::DecisionKind::Proceed,
            wit::DecisionKind::Pause => d::DecisionKind::Pause,
            wit::DecisionKind::Rollback => d::DecisionKind::Rollback,
        },
        reason: d.reason,
    }
}

pub(super) fn precheck_result(r: WitPrecheckResult) -> d::PrecheckResult {
    d::PrecheckResult {
        verdict: verdict(r.verdict),
        forward_only: r.forward_only,
    }
}

pub(super) fn fault(e: wit::PluginError) -> d::PluginFault {
    d::PluginFault {
        message: e.message,
        retryable: e.retryable,
    }
}

pub(super) fn target_results(
    r: Result<Vec<WitTargetResult>, wit::PluginError>,
) -> Result<Vec<d::TargetResult>, d::PluginFault> {
    r.map(|rs| {
        rs.into_iter()
            .map(|t| d::TargetResult {
                target_id: t.target_id,
                ok: t.ok,
                message: t.message,
            })
            .collect()
    })
    .map_err(fault)
}

pub(super) fn weights_to_wit(ws: &[d::GroupWeight]) -> Vec<WitGroupWeight> {
    ws.iter()
        .map(|w| WitGroupWeight {
            group: w.group.clone(),
            percent: w.percent,
        })
        .collect()
}

pub(super) fn weights(
    r: Result<Vec<WitGroupWeight>, wit::PluginError>,
) -> Result<Vec<d::GroupWeight>, d::PluginFault> {
    r.map(|ws| {
        ws.into_iter()
            .map(|w| d::GroupWeight {
                group: w.group,
                percent: w.percent,
            })
            .collect()
    })
    .map_err(fault)
}

pub(super) fn event(e: &d::ReleaseEvent) -> WitReleaseEvent {
    WitReleaseEvent {
        kind: e.kind.clone(),
        message: e.message.clone(),
        at_ms: e.at_ms,
    }
}
