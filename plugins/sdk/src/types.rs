//! The WIT types under their plain names, with constructors for the values a
//! plugin returns most (verdicts and decisions).

pub use crate::bindings::deployer::exports::greenlight::plugin0_1_0::deployer::TargetResult;
pub use crate::bindings::notifier::exports::greenlight::plugin0_1_0::notifier::ReleaseEvent;
pub use crate::bindings::platform::greenlight::plugin0_1_0::types::{
    Decision, DecisionKind, Metric, Observation, PluginError, ReleaseContext, Target, Verdict,
    VerdictStatus,
};
pub use crate::bindings::precheck::exports::greenlight::plugin0_1_0::precheck::{
    Artifact, PrecheckResult,
};
pub use crate::bindings::traffic::exports::greenlight::plugin0_1_0::traffic::GroupWeight;

impl Verdict {
    /// A verdict with no metrics yet.
    pub fn new(status: VerdictStatus, summary: impl Into<String>) -> Verdict {
        Verdict {
            status,
            summary: summary.into(),
            metrics: Vec::new(),
        }
    }

    /// Everything checked is within bounds.
    pub fn pass(summary: impl Into<String>) -> Verdict {
        Verdict::new(VerdictStatus::Pass, summary)
    }

    /// Something checked is out of bounds.
    pub fn fail(summary: impl Into<String>) -> Verdict {
        Verdict::new(VerdictStatus::Fail, summary)
    }

    /// The evidence is not enough to say pass or fail.
    pub fn inconclusive(summary: impl Into<String>) -> Verdict {
        Verdict::new(VerdictStatus::Inconclusive, summary)
    }

    /// There was nothing to measure.
    pub fn no_data(summary: impl Into<String>) -> Verdict {
        Verdict::new(VerdictStatus::NoData, summary)
    }

    /// The check itself could not run.
    pub fn error(summary: impl Into<String>) -> Verdict {
        Verdict::new(VerdictStatus::Error, summary)
    }

    /// Adds one measurement. A non-finite value is left out, since the host
    /// refuses verdicts that carry one.
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Verdict {
        self.push_metric(name, value);
        self
    }

    /// Adds one measurement in place; see [`Verdict::metric`].
    pub fn push_metric(&mut self, name: impl Into<String>, value: f64) {
        if value.is_finite() {
            self.metrics.push(Metric {
                name: name.into(),
                value,
            });
        }
    }
}

impl Decision {
    /// Carry on with the release.
    pub fn proceed(reason: impl Into<String>) -> Decision {
        Decision {
            kind: DecisionKind::Proceed,
            reason: reason.into(),
        }
    }

    /// Pause the release and ask a human.
    pub fn pause(reason: impl Into<String>) -> Decision {
        Decision {
            kind: DecisionKind::Pause,
            reason: reason.into(),
        }
    }

    /// Roll the release back at once.
    pub fn rollback(reason: impl Into<String>) -> Decision {
        Decision {
            kind: DecisionKind::Rollback,
            reason: reason.into(),
        }
    }
}

impl TargetResult {
    /// The target now runs the requested version.
    pub fn ok(target: &Target, message: impl Into<String>) -> TargetResult {
        TargetResult {
            target_id: target.id.clone(),
            ok: true,
            message: message.into(),
        }
    }

    /// The target does not run the requested version.
    pub fn failed(target: &Target, message: impl Into<String>) -> TargetResult {
        TargetResult {
            target_id: target.id.clone(),
            ok: false,
            message: message.into(),
        }
    }
}

impl GroupWeight {
    /// A group's share of traffic.
    pub fn new(group: impl Into<String>, percent: u8) -> GroupWeight {
        GroupWeight {
            group: group.into(),
            percent,
        }
    }
}
