//! Conversions between the domain's plugin types and the bindings of
//! `greenlight:plugin@0.2.0`. Work in progress: what the check and the
//! deployer need.

use super::bindings::deployer_v2;
use super::bindings::v2::types as wit;
use crate::domain::plugin as d;

type WitWork = deployer_v2::exports::greenlight::plugin0_2_0::deployer::Work;

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

/// Targets as 0.2.0 has them. The inventory has no attributes yet, so
/// they go empty.
pub(super) fn targets(ts: &[d::Target]) -> Vec<wit::Target> {
    ts.iter()
        .map(|t| wit::Target {
            id: t.id.clone(),
            address: t.address.clone(),
            group: t.group.clone(),
            labels: t.labels.clone(),
            attributes: Vec::new(),
        })
        .collect()
}

pub(super) fn verdict(v: wit::Verdict) -> d::Verdict {
    d::Verdict {
        status: match v.status {
            wit::VerdictStatus::Pass => d::VerdictStatus::Pass,
            wit::VerdictStatus::Fail => d::VerdictStatus::Fail,
            wit::VerdictStatus::Inconclusive => d::VerdictStatus::Inconclusive,
            wit::VerdictStatus::NoData => d::VerdictStatus::NoData,
            wit::VerdictStatus::Error => d::VerdictStatus::Error,
        },
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

fn fault(e: wit::PluginError) -> d::PluginFault {
    d::PluginFault {
        message: e.message,
        retryable: e.retryable,
    }
}

/// A deploy's or rollback's answer. Work still in progress cannot be
/// followed until the engine asks again; until then it is a fault that
/// says so, and may be retried.
pub(super) fn work(
    r: Result<WitWork, wit::PluginError>,
) -> Result<Vec<d::TargetResult>, d::PluginFault> {
    match r.map_err(fault)? {
        WitWork::Done(results) => Ok(results
            .into_iter()
            .map(|t| d::TargetResult {
                target_id: t.target_id,
                ok: t.ok,
                message: t.message,
            })
            .collect()),
        WitWork::InProgress(p) => Err(d::PluginFault {
            message: format!(
                "the deployer answered that its work is in progress ({}); following progress is not built yet",
                p.note
            ),
            retryable: true,
        }),
    }
}
