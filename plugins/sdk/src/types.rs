//! The WIT types under their plain names, with constructors for the values a
//! plugin returns most (verdicts, decisions, and the state of long-running
//! work).
//!
//! [`Work`] and [`Shift`] are the generated variants themselves, not copies:
//! a deployer returns `Work::Done(results)` or `Work::in_progress(note,
//! after)`, a traffic plugin `Shift::Done` or `Shift::in_progress(note,
//! after)`, and the export glue hands them to the host as they are.

use std::time::Duration;

pub use crate::bindings::deployer::exports::greenlight::plugin0_2_0::deployer::{
    TargetResult, Work,
};
pub use crate::bindings::notifier::exports::greenlight::plugin0_2_0::notifier::ReleaseEvent;
pub use crate::bindings::platform::greenlight::plugin0_2_0::types::{
    Decision, DecisionKind, Metric, Observation, PluginError, Progress, ReleaseContext, Target,
    Verdict, VerdictStatus,
};
pub use crate::bindings::precheck::exports::greenlight::plugin0_2_0::precheck::{
    Artifact, PrecheckResult,
};
pub use crate::bindings::traffic::exports::greenlight::plugin0_2_0::traffic::{GroupWeight, Shift};

impl Target {
    /// The value of one of the target's attributes (`cluster`, `namespace`,
    /// `kind`, `name`, `containers` for a Kubernetes workload), or `None`
    /// when the target does not carry it. Keys are compared exactly; when a
    /// key appears more than once the first value is returned.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Progress {
    /// How far the work has come, and when the host should ask again.
    /// `ask_again_after` is kept in whole milliseconds, saturating at
    /// `u32::MAX` (about 49 days); the host asks no sooner than 100 ms and
    /// no later than 60 s whatever is asked for.
    pub fn new(note: impl Into<String>, ask_again_after: Duration) -> Progress {
        Progress {
            note: note.into(),
            ask_again_after_ms: u32::try_from(ask_again_after.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// When the plugin asked the host to ask again, as a [`Duration`].
    pub fn ask_again_after(&self) -> Duration {
        Duration::from_millis(u64::from(self.ask_again_after_ms))
    }
}

impl Work {
    /// The work was started and is not finished (a rollout under way): the
    /// host asks again with the same idempotency key after
    /// `ask_again_after`, which is kept as [`Progress::new`] keeps it.
    pub fn in_progress(note: impl Into<String>, ask_again_after: Duration) -> Work {
        Work::InProgress(Progress::new(note, ask_again_after))
    }
}

impl From<Vec<TargetResult>> for Work {
    /// Finished work: what happened on each target.
    fn from(results: Vec<TargetResult>) -> Work {
        Work::Done(results)
    }
}

impl Shift {
    /// The new weights are still being applied (a load balancer
    /// converging): the host asks again with the same weights after
    /// `ask_again_after`, which is kept as [`Progress::new`] keeps it.
    pub fn in_progress(note: impl Into<String>, ask_again_after: Duration) -> Shift {
        Shift::InProgress(Progress::new(note, ask_again_after))
    }
}

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
        self.push(Metric::new(name, value));
    }

    /// Adds a measurement with its evidence ([`Metric::new`] and its
    /// builders); one whose value is not finite is left out, and so are
    /// evidence numbers that are not.
    pub fn with(mut self, metric: Metric) -> Verdict {
        self.push(metric);
        self
    }

    /// Adds a measurement with its evidence in place; see [`Verdict::with`].
    pub fn push(&mut self, mut metric: Metric) {
        if !metric.value.is_finite() {
            return;
        }
        for bound in [
            &mut metric.baseline,
            &mut metric.allowed_low,
            &mut metric.allowed_high,
        ] {
            if bound.is_some_and(|v| !v.is_finite()) {
                *bound = None;
            }
        }
        self.metrics.push(metric);
    }
}

impl Metric {
    /// A measurement with no evidence yet.
    pub fn new(name: impl Into<String>, value: f64) -> Metric {
        Metric {
            name: name.into(),
            value,
            baseline: None,
            samples: None,
            baseline_samples: None,
            allowed_low: None,
            allowed_high: None,
            status: None,
            detail: None,
        }
    }

    /// The baseline's value, in a comparison.
    pub fn baseline(mut self, value: f64) -> Metric {
        self.baseline = Some(value);
        self
    }

    /// How many samples the value and the baseline's stand on.
    pub fn samples(mut self, canary: u64, baseline: Option<u64>) -> Metric {
        self.samples = Some(canary);
        self.baseline_samples = baseline;
        self
    }

    /// The range that passes; either end may be open.
    pub fn allowed(mut self, low: Option<f64>, high: Option<f64>) -> Metric {
        self.allowed_low = low;
        self.allowed_high = high;
        self
    }

    /// How this metric alone was judged, with one line about it.
    pub fn judged(mut self, status: VerdictStatus, detail: impl Into<String>) -> Metric {
        self.status = Some(status);
        self.detail = Some(detail.into());
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(attributes: &[(&str, &str)]) -> Target {
        Target {
            id: "web-1".into(),
            address: "10.0.0.1:8080".into(),
            group: String::new(),
            labels: vec![("zone".into(), "eu-1".into())],
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn attribute_finds_a_key_the_target_carries() {
        let t = target(&[
            ("cluster", "https://k8s.example:6443"),
            ("namespace", "shop"),
        ]);
        assert_eq!(t.attribute("namespace"), Some("shop"));
        assert_eq!(t.attribute("cluster"), Some("https://k8s.example:6443"));
    }

    #[test]
    fn attribute_is_none_for_a_key_the_target_lacks() {
        let t = target(&[("namespace", "shop")]);
        assert_eq!(t.attribute("name"), None);
        assert_eq!(t.attribute("Namespace"), None);
        // Labels are not attributes.
        assert_eq!(t.attribute("zone"), None);
        assert_eq!(target(&[]).attribute("namespace"), None);
    }

    #[test]
    fn attribute_answers_the_first_of_a_repeated_key() {
        let t = target(&[("kind", "Deployment"), ("kind", "StatefulSet")]);
        assert_eq!(t.attribute("kind"), Some("Deployment"));
    }

    #[test]
    fn progress_keeps_whole_milliseconds() {
        let p = Progress::new("3 of 10 replicas updated", Duration::from_millis(2_500));
        assert_eq!(p.note, "3 of 10 replicas updated");
        assert_eq!(p.ask_again_after_ms, 2_500);
        assert_eq!(p.ask_again_after(), Duration::from_millis(2_500));
        assert_eq!(
            Progress::new("", Duration::from_micros(1_999)).ask_again_after_ms,
            1
        );
    }

    #[test]
    fn progress_saturates_at_the_largest_u32() {
        let max = u64::from(u32::MAX);
        assert_eq!(
            Progress::new("", Duration::from_millis(max)).ask_again_after_ms,
            u32::MAX
        );
        assert_eq!(
            Progress::new("", Duration::from_millis(max + 1)).ask_again_after_ms,
            u32::MAX
        );
        assert_eq!(
            Progress::new("", Duration::MAX).ask_again_after_ms,
            u32::MAX
        );
    }

    #[test]
    fn work_in_progress_carries_the_note_and_the_wait() {
        match Work::in_progress("2 of 4 pods ready", Duration::from_secs(5)) {
            Work::InProgress(p) => {
                assert_eq!(p.note, "2 of 4 pods ready");
                assert_eq!(p.ask_again_after_ms, 5_000);
            }
            Work::Done(_) => panic!("in progress answered done"),
        }
        match Work::in_progress("", Duration::from_secs(u64::MAX)) {
            Work::InProgress(p) => assert_eq!(p.ask_again_after_ms, u32::MAX),
            Work::Done(_) => panic!("in progress answered done"),
        }
    }

    #[test]
    fn results_become_finished_work() {
        let web1 = target(&[]);
        let results = vec![
            TargetResult::ok(&web1, "deployed"),
            TargetResult::failed(&web1, "never healthy"),
        ];
        match Work::from(results) {
            Work::Done(r) => {
                assert_eq!(r.len(), 2);
                assert_eq!(r[0].target_id, "web-1");
                assert!(r[0].ok);
                assert_eq!(r[0].message, "deployed");
                assert!(!r[1].ok);
                assert_eq!(r[1].message, "never healthy");
            }
            Work::InProgress(_) => panic!("results answered in progress"),
        }
        let empty: Work = Vec::new().into();
        assert!(matches!(empty, Work::Done(r) if r.is_empty()));
    }

    #[test]
    fn shift_in_progress_carries_the_note_and_the_wait() {
        match Shift::in_progress("1 of 3 balancers converged", Duration::from_millis(750)) {
            Shift::InProgress(p) => {
                assert_eq!(p.note, "1 of 3 balancers converged");
                assert_eq!(p.ask_again_after_ms, 750);
            }
            Shift::Done => panic!("in progress answered done"),
        }
        assert!(matches!(
            Shift::in_progress("", Duration::MAX),
            Shift::InProgress(Progress {
                ask_again_after_ms: u32::MAX,
                ..
            })
        ));
    }
}
