//! What plugins are and what they are called with: kinds, calls and their outputs.
//!
//! These types mirror the WIT package `greenlight:plugin@0.1.0` without
//! depending on wasmtime, so the engine can reason about plugin calls and
//! tests can build them without a runtime.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a plugin: which world of the WIT package it implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginKind {
    /// Gates a release before anything is deployed.
    Precheck,
    /// Deploys versions to targets and rolls them back.
    Deployer,
    /// Shifts traffic between groups.
    Traffic,
    /// Verifies a stage, batch or bake period.
    Check,
    /// Decides proceed / pause / roll back.
    RollbackPolicy,
    /// Is told of release events.
    Notifier,
}

impl PluginKind {
    /// Every kind, in a stable order.
    pub const ALL: [PluginKind; 6] = [
        PluginKind::Precheck,
        PluginKind::Deployer,
        PluginKind::Traffic,
        PluginKind::Check,
        PluginKind::RollbackPolicy,
        PluginKind::Notifier,
    ];

    /// The kind's name, which is also the name of the interface it exports.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Precheck => "precheck",
            PluginKind::Deployer => "deployer",
            PluginKind::Traffic => "traffic",
            PluginKind::Check => "check",
            PluginKind::RollbackPolicy => "rollback-policy",
            PluginKind::Notifier => "notifier",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown plugin kind `{s}`"))
    }
}

/// A machine that runs an application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub address: String,
    pub group: String,
    pub labels: Vec<(String, String)>,
    /// How to reach the target beyond its address, in keys its kind of
    /// target defines (a Kubernetes workload's `cluster`, `namespace`,
    /// `kind`, `name`, `containers`). Plugins of interface 0.1.0 do not
    /// see them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

impl Target {
    /// The value of one attribute, if the target has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a plugin is told about the release it works for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseContext {
    pub release_id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub stage: String,
    pub batch: Option<u32>,
    pub attempt: u32,
    pub parameters: Vec<(String, String)>,
    /// For a check after a batch: when the batch finished deploying.
    pub deployed_at_ms: Option<u64>,
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictStatus {
    Pass,
    Fail,
    Inconclusive,
    NoData,
    Error,
}

impl VerdictStatus {
    /// The status as written in the WIT package and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictStatus::Pass => "pass",
            VerdictStatus::Fail => "fail",
            VerdictStatus::Inconclusive => "inconclusive",
            VerdictStatus::NoData => "no-data",
            VerdictStatus::Error => "error",
        }
    }
}

impl FromStr for VerdictStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            VerdictStatus::Pass,
            VerdictStatus::Fail,
            VerdictStatus::Inconclusive,
            VerdictStatus::NoData,
            VerdictStatus::Error,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| format!("unknown verdict status `{s}`"))
    }
}

/// One named measurement, with what it was judged against (each optional;
/// absent from what is stored when unknown, so older records read alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// In a comparison, the baseline's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The samples the value stands on, and the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_samples: Option<u64>,
    /// The range that passes; either end may be open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_high: Option<f64>,
    /// How this metric alone was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VerdictStatus>,
    /// One short line about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Metric {
    /// Whether anything beside the name and the value is known.
    pub fn has_evidence(&self) -> bool {
        self.baseline.is_some()
            || self.samples.is_some()
            || self.baseline_samples.is_some()
            || self.allowed_low.is_some()
            || self.allowed_high.is_some()
            || self.status.is_some()
            || self.detail.is_some()
    }

    /// A name and a value, with no evidence beside.
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
}

/// A check's verdict with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: VerdictStatus,
    pub summary: String,
    pub metrics: Vec<Metric>,
}

/// One verdict observed so far in a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub check: String,
    pub stage: String,
    pub batch: Option<u32>,
    pub verdict: Verdict,
    pub at_ms: u64,
    /// From a shadow check: shown with the release, never handed to a
    /// policy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// Taken while verifying a rollback, not the release going forward.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

/// What a rollback policy decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    Proceed,
    Pause,
    Rollback,
}

impl DecisionKind {
    /// The decision as written in the WIT package and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Proceed => "proceed",
            DecisionKind::Pause => "pause",
            DecisionKind::Rollback => "rollback",
        }
    }
}

/// A rollback policy's decision with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub kind: DecisionKind,
    pub reason: String,
}

/// A release artifact handed to prechecks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Artifact {
    pub kind: String,
    pub name: String,
    pub content: String,
}

/// A precheck's result.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecheckResult {
    pub verdict: Verdict,
    pub forward_only: bool,
}

/// What happened on one target during a deploy or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetResult {
    pub target_id: String,
    pub ok: bool,
    pub message: String,
}

/// The share of traffic a group receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupWeight {
    pub group: String,
    pub percent: u8,
}

/// One thing that happened to a release, for notifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEvent {
    pub kind: String,
    pub message: String,
    pub at_ms: u64,
}

/// How far long-running work has come, when a plugin answers that it is
/// not done yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// One line a release manager reads (`3 of 10 replicas updated`).
    pub note: String,
    /// When the plugin wants to be asked again, in milliseconds from now.
    pub ask_again_after_ms: u32,
}

impl Progress {
    /// The soonest the host asks again.
    pub const MIN_ASK_MS: u64 = 100;
    /// The latest the host asks again.
    pub const MAX_ASK_MS: u64 = 60_000;

    /// When to ask again, within the host's bounds, in milliseconds from
    /// now.
    pub fn ask_after_ms(&self) -> u64 {
        u64::from(self.ask_again_after_ms).clamp(Self::MIN_ASK_MS, Self::MAX_ASK_MS)
    }
}

/// An error a plugin reports about its own work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFault {
    pub message: String,
    pub retryable: bool,
}

/// One call into a plugin: which export, with which arguments.
#[derive(Debug, Clone)]
pub enum Call {
    Precheck {
        ctx: ReleaseContext,
        artifacts: Vec<Artifact>,
    },
    Deploy {
        ctx: ReleaseContext,
        targets: Vec<Target>,
        idempotency_key: String,
    },
    Rollback {
        ctx: ReleaseContext,
        targets: Vec<Target>,
        idempotency_key: String,
    },
    SetWeights {
        ctx: ReleaseContext,
        weights: Vec<GroupWeight>,
    },
    CurrentWeights {
        ctx: ReleaseContext,
    },
    Verify {
        ctx: ReleaseContext,
        targets: Vec<Target>,
    },
    Decide {
        ctx: ReleaseContext,
        observations: Vec<Observation>,
    },
    Notify {
        ctx: ReleaseContext,
        event: ReleaseEvent,
    },
}

impl Call {
    /// The plugin kind that can answer this call.
    pub fn kind(&self) -> PluginKind {
        match self {
            Call::Precheck { .. } => PluginKind::Precheck,
            Call::Deploy { .. } | Call::Rollback { .. } => PluginKind::Deployer,
            Call::SetWeights { .. } | Call::CurrentWeights { .. } => PluginKind::Traffic,
            Call::Verify { .. } => PluginKind::Check,
            Call::Decide { .. } => PluginKind::RollbackPolicy,
            Call::Notify { .. } => PluginKind::Notifier,
        }
    }

    /// The name of the exported function this call invokes.
    pub fn function(&self) -> &'static str {
        match self {
            Call::Precheck { .. } => "run",
            Call::Deploy { .. } => "deploy",
            Call::Rollback { .. } => "rollback",
            Call::SetWeights { .. } => "set-weights",
            Call::CurrentWeights { .. } => "current-weights",
            Call::Verify { .. } => "verify",
            Call::Decide { .. } => "decide",
            Call::Notify { .. } => "notify",
        }
    }

    /// The targets the call is about; none for calls that carry none.
    pub fn targets(&self) -> &[Target] {
        match self {
            Call::Deploy { targets, .. }
            | Call::Rollback { targets, .. }
            | Call::Verify { targets, .. } => targets,
            _ => &[],
        }
    }

    /// The release context the call carries.
    pub fn context(&self) -> &ReleaseContext {
        match self {
            Call::Precheck { ctx, .. }
            | Call::Deploy { ctx, .. }
            | Call::Rollback { ctx, .. }
            | Call::SetWeights { ctx, .. }
            | Call::CurrentWeights { ctx }
            | Call::Verify { ctx, .. }
            | Call::Decide { ctx, .. }
            | Call::Notify { ctx, .. } => ctx,
        }
    }
}

/// What a plugin call returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Precheck(PrecheckResult),
    Targets(Result<Vec<TargetResult>, PluginFault>),
    Done(Result<(), PluginFault>),
    Weights(Result<Vec<GroupWeight>, PluginFault>),
    Verdict(Verdict),
    Decision(Decision),
    /// A deploy, a rollback or a traffic shift (interface 0.2.0) is still
    /// under way.
    InProgress(Progress),
}

impl Output {
    /// Approximate size of the output in bytes, used to enforce the output cap.
    pub fn size_bytes(&self) -> usize {
        fn verdict(v: &Verdict) -> usize {
            let metric =
                |m: &Metric| m.name.len() + 8 + m.detail.as_ref().map_or(0, String::len) + 48;
            v.summary.len() + v.metrics.iter().map(metric).sum::<usize>()
        }
        fn fault(f: &PluginFault) -> usize {
            f.message.len() + 1
        }
        match self {
            Output::Precheck(p) => verdict(&p.verdict) + 1,
            Output::Targets(Ok(ts)) => ts
                .iter()
                .map(|t| t.target_id.len() + t.message.len() + 1)
                .sum(),
            Output::Weights(Ok(ws)) => ws.iter().map(|w| w.group.len() + 1).sum(),
            Output::Targets(Err(f)) | Output::Done(Err(f)) | Output::Weights(Err(f)) => fault(f),
            Output::Done(Ok(())) => 0,
            Output::Verdict(v) => verdict(v),
            Output::Decision(d) => d.reason.len() + 1,
            Output::InProgress(p) => p.note.len() + 4,
        }
    }

    /// Checks what the plugin returned against what the WIT documents
    /// promise, naming the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        fn verdict(v: &Verdict) -> Result<(), String> {
            for m in &v.metrics {
                if m.name.is_empty() {
                    return Err("a metric has an empty name".into());
                }
                if !m.value.is_finite() {
                    return Err(format!("metric `{}` is not a finite number", m.name));
                }
                for (field, v) in [
                    ("baseline", m.baseline),
                    ("allowed-low", m.allowed_low),
                    ("allowed-high", m.allowed_high),
                ] {
                    if v.is_some_and(|v| !v.is_finite()) {
                        return Err(format!(
                            "metric `{}`: {field} is not a finite number",
                            m.name
                        ));
                    }
                }
                if let (Some(low), Some(high)) = (m.allowed_low, m.allowed_high)
                    && low > high
                {
                    return Err(format!(
                        "metric `{}`: allowed-low {low} is above allowed-high {high}",
                        m.name
                    ));
                }
            }
            Ok(())
        }
        match self {
            Output::Precheck(p) => verdict(&p.verdict),
            Output::Verdict(v) => verdict(v),
            Output::Weights(Ok(ws)) => {
                if let Some(w) = ws.iter().find(|w| w.percent > 100) {
                    return Err(format!(
                        "group `{}` has weight {} > 100",
                        w.group, w.percent
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in PluginKind::ALL {
            assert_eq!(kind.as_str().parse::<PluginKind>(), Ok(kind));
        }
        assert!("checks".parse::<PluginKind>().is_err());
    }

    #[test]
    fn a_nan_metric_is_malformed() {
        let out = Output::Verdict(Verdict {
            status: VerdictStatus::Pass,
            summary: "ok".into(),
            metrics: vec![Metric::new("bad", f64::NAN)],
        });
        assert_eq!(
            out.validate(),
            Err("metric `bad` is not a finite number".to_string())
        );
    }

    #[test]
    fn output_size_counts_the_summary() {
        let out = Output::Verdict(Verdict {
            status: VerdictStatus::Pass,
            summary: "x".repeat(1000),
            metrics: vec![],
        });
        assert_eq!(out.size_bytes(), 1000);
    }
}
