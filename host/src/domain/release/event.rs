//! What a release journals: its statuses and events, and the records
//! decisions and approvals leave behind.

use serde::{Deserialize, Serialize};

use super::policy::{CheckVerdict, Ruling};
use crate::domain::plugin::{GroupWeight, TargetResult, Verdict};

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting for the environment's active release to finish.
    Queued,
    Running,
    WaitingApproval,
    Paused,
    RollingBack,
    /// Rollback stopped before a step that cannot be undone; a human decides.
    Blocked,
    Succeeded,
    Failed,
    RolledBack,
    Rejected,
    /// Ended by an admin where it stood, without finishing or undoing its
    /// work: the environment is freed and what runs there is unknown.
    Abandoned,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Queued,
        Status::Running,
        Status::WaitingApproval,
        Status::Paused,
        Status::RollingBack,
        Status::Blocked,
        Status::Succeeded,
        Status::Failed,
        Status::RolledBack,
        Status::Rejected,
        Status::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::WaitingApproval => "waiting-approval",
            Status::Paused => "paused",
            Status::RollingBack => "rolling-back",
            Status::Blocked => "blocked",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::RolledBack => "rolled-back",
            Status::Rejected => "rejected",
            Status::Abandoned => "abandoned",
        }
    }

    /// Whether the release is over (a succeeded release can still be rolled
    /// back by a human).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded
                | Status::Failed
                | Status::RolledBack
                | Status::Rejected
                | Status::Abandoned
        )
    }
}

/// How a rollback unwinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackMode {
    /// Batch by batch in reverse, verifying as it goes.
    Regular,
    /// Every batch of a stage at once, without verification.
    Emergency,
}

/// A decision and everything it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub ruling: Ruling,
    pub reason: String,
    /// `default-policy`, or the policy plugin's `name@version`.
    pub by: String,
    pub stage: String,
    pub batch: Option<u32>,
    pub round: u32,
    /// The verdicts of the round decided on.
    pub inputs: Vec<CheckVerdict>,
    /// How many observations a policy plugin was given.
    pub observations: usize,
    pub at_ms: u64,
}

/// A target found unhealthy before its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnhealthyTarget {
    pub target: String,
    pub summary: String,
}

/// One approval or rejection at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub stage: String,
    pub by: String,
    pub approved: bool,
    pub comment: String,
    pub at_ms: u64,
}

/// The long-running plugin work a progress report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "work", rename_all = "kebab-case")]
pub enum ProgressOf {
    /// A deploy of one batch, by step and attempt.
    Deploy { pc: usize, attempt: u32 },
    /// A traffic shift, by step and attempt.
    Shift { pc: usize, attempt: u32 },
    /// The rollback of batches, by their steps and the attempt.
    Rollback { pcs: Vec<usize>, attempt: u32 },
    /// Putting a stage's traffic back during a rollback.
    RestoreTraffic { stage: usize, attempt: u32 },
}

/// Everything that happens to a release, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Started {
        by: String,
        at_ms: u64,
    },
    PrecheckDone {
        pc: usize,
        check: String,
        verdict: Verdict,
        forward_only: bool,
        at_ms: u64,
    },
    /// Each target of a batch was checked before the batch; these were not
    /// healthy.
    TargetsChecked {
        pc: usize,
        unhealthy: Vec<UnhealthyTarget>,
        at_ms: u64,
    },
    /// Journaled before the deployer is called, with the key it gets.
    DeployStarted {
        pc: usize,
        attempt: u32,
        key: String,
        at_ms: u64,
    },
    Deployed {
        pc: usize,
        attempt: u32,
        results: Vec<TargetResult>,
        at_ms: u64,
    },
    DeployFailed {
        pc: usize,
        attempt: u32,
        message: String,
        retryable: bool,
        at_ms: u64,
    },
    /// A plugin answered that its work is still under way (interface
    /// 0.2.0). Journaled when the note changes; the same work is asked
    /// about again at `ask_at_ms`, with the same idempotency key.
    Progressed {
        of: ProgressOf,
        note: String,
        /// When the plugin first answered in progress for this work; the
        /// stage's progress deadline counts from here.
        since_ms: u64,
        ask_at_ms: u64,
        at_ms: u64,
    },
    BakeStarted {
        pc: usize,
        until_ms: u64,
        at_ms: u64,
    },
    Verified {
        pc: usize,
        round: u32,
        verdicts: Vec<CheckVerdict>,
        at_ms: u64,
    },
    Decided {
        pc: usize,
        decision: DecisionRecord,
    },
    TrafficShifted {
        pc: usize,
        weights: Vec<GroupWeight>,
        at_ms: u64,
    },
    TrafficFailed {
        pc: usize,
        attempt: u32,
        message: String,
        retryable: bool,
        at_ms: u64,
    },
    GateOpened {
        pc: usize,
        expires_at_ms: Option<u64>,
        at_ms: u64,
    },
    /// An emergency release passes its gates.
    GateSkipped {
        pc: usize,
        at_ms: u64,
    },
    Approved {
        pc: usize,
        by: String,
        comment: String,
        at_ms: u64,
    },
    Rejected {
        pc: usize,
        by: String,
        comment: String,
        at_ms: u64,
    },
    GateExpired {
        pc: usize,
        at_ms: u64,
    },
    Paused {
        by: String,
        reason: String,
        at_ms: u64,
    },
    Resumed {
        by: String,
        at_ms: u64,
    },
    RollbackStarted {
        by: String,
        reason: String,
        mode: RollbackMode,
        force: bool,
        at_ms: u64,
    },
    TrafficRestored {
        stage: usize,
        weights: Vec<GroupWeight>,
        at_ms: u64,
    },
    /// Journaled before the deployer's rollback is called.
    RollbackBatchStarted {
        pcs: Vec<usize>,
        attempt: u32,
        key: String,
        at_ms: u64,
    },
    RolledBackBatch {
        pcs: Vec<usize>,
        attempt: u32,
        results: Vec<TargetResult>,
        at_ms: u64,
    },
    RollbackFailed {
        pcs: Vec<usize>,
        attempt: u32,
        message: String,
        retryable: bool,
        at_ms: u64,
    },
    RollbackVerified {
        pcs: Vec<usize>,
        verdicts: Vec<CheckVerdict>,
        at_ms: u64,
    },
    Blocked {
        reason: String,
        at_ms: u64,
    },
    Finished {
        status: Status,
        reason: String,
        at_ms: u64,
    },
}

impl Event {
    /// The event's name, as journaled and streamed.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::PrecheckDone { .. } => "precheck-done",
            Event::TargetsChecked { .. } => "targets-checked",
            Event::DeployStarted { .. } => "deploy-started",
            Event::Deployed { .. } => "deployed",
            Event::DeployFailed { .. } => "deploy-failed",
            Event::Progressed { .. } => "progressed",
            Event::BakeStarted { .. } => "bake-started",
            Event::Verified { .. } => "verified",
            Event::Decided { .. } => "decided",
            Event::TrafficShifted { .. } => "traffic-shifted",
            Event::TrafficFailed { .. } => "traffic-failed",
            Event::GateOpened { .. } => "gate-opened",
            Event::GateSkipped { .. } => "gate-skipped",
            Event::Approved { .. } => "approved",
            Event::Rejected { .. } => "rejected",
            Event::GateExpired { .. } => "gate-expired",
            Event::Paused { .. } => "paused",
            Event::Resumed { .. } => "resumed",
            Event::RollbackStarted { .. } => "rollback-started",
            Event::TrafficRestored { .. } => "traffic-restored",
            Event::RollbackBatchStarted { .. } => "rollback-batch-started",
            Event::RolledBackBatch { .. } => "rolled-back-batch",
            Event::RollbackFailed { .. } => "rollback-failed",
            Event::RollbackVerified { .. } => "rollback-verified",
            Event::Blocked { .. } => "blocked",
            Event::Finished { .. } => "finished",
        }
    }

    pub fn at_ms(&self) -> u64 {
        match self {
            Event::Decided { decision, .. } => decision.at_ms,
            Event::Started { at_ms, .. }
            | Event::PrecheckDone { at_ms, .. }
            | Event::TargetsChecked { at_ms, .. }
            | Event::DeployStarted { at_ms, .. }
            | Event::Deployed { at_ms, .. }
            | Event::DeployFailed { at_ms, .. }
            | Event::Progressed { at_ms, .. }
            | Event::BakeStarted { at_ms, .. }
            | Event::Verified { at_ms, .. }
            | Event::TrafficShifted { at_ms, .. }
            | Event::TrafficFailed { at_ms, .. }
            | Event::GateOpened { at_ms, .. }
            | Event::GateSkipped { at_ms, .. }
            | Event::Approved { at_ms, .. }
            | Event::Rejected { at_ms, .. }
            | Event::GateExpired { at_ms, .. }
            | Event::Paused { at_ms, .. }
            | Event::Resumed { at_ms, .. }
            | Event::RollbackStarted { at_ms, .. }
            | Event::TrafficRestored { at_ms, .. }
            | Event::RollbackBatchStarted { at_ms, .. }
            | Event::RolledBackBatch { at_ms, .. }
            | Event::RollbackFailed { at_ms, .. }
            | Event::RollbackVerified { at_ms, .. }
            | Event::Blocked { at_ms, .. }
            | Event::Finished { at_ms, .. } => *at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::flow::{DEFAULT_NOTIFY_ON, EVENT_NAMES};
    use crate::domain::plugin::VerdictStatus;

    /// One event of every kind.
    fn one_of_each() -> Vec<Event> {
        let verdict = Verdict {
            status: VerdictStatus::Pass,
            summary: String::new(),
            metrics: Vec::new(),
        };
        let decision = DecisionRecord {
            ruling: Ruling::Proceed,
            reason: String::new(),
            by: "default-policy".into(),
            stage: "canary".into(),
            batch: Some(0),
            round: 0,
            inputs: Vec::new(),
            observations: 0,
            at_ms: 0,
        };
        let (by, reason, message, key) =
            (String::new(), String::new(), String::new(), String::new());
        let at_ms = 0;
        vec![
            Event::Started {
                by: by.clone(),
                at_ms,
            },
            Event::PrecheckDone {
                pc: 0,
                check: "c".into(),
                verdict,
                forward_only: false,
                at_ms,
            },
            Event::TargetsChecked {
                pc: 0,
                unhealthy: Vec::new(),
                at_ms,
            },
            Event::DeployStarted {
                pc: 0,
                attempt: 0,
                key: key.clone(),
                at_ms,
            },
            Event::Deployed {
                pc: 0,
                attempt: 0,
                results: Vec::new(),
                at_ms,
            },
            Event::DeployFailed {
                pc: 0,
                attempt: 0,
                message: message.clone(),
                retryable: true,
                at_ms,
            },
            Event::Progressed {
                of: ProgressOf::Deploy { pc: 0, attempt: 1 },
                note: String::new(),
                since_ms: 0,
                ask_at_ms: 0,
                at_ms,
            },
            Event::BakeStarted {
                pc: 0,
                until_ms: 0,
                at_ms,
            },
            Event::Verified {
                pc: 0,
                round: 0,
                verdicts: Vec::new(),
                at_ms,
            },
            Event::Decided { pc: 0, decision },
            Event::TrafficShifted {
                pc: 0,
                weights: Vec::new(),
                at_ms,
            },
            Event::TrafficFailed {
                pc: 0,
                attempt: 0,
                message: message.clone(),
                retryable: true,
                at_ms,
            },
            Event::GateOpened {
                pc: 0,
                expires_at_ms: None,
                at_ms,
            },
            Event::GateSkipped { pc: 0, at_ms },
            Event::Approved {
                pc: 0,
                by: by.clone(),
                comment: String::new(),
                at_ms,
            },
            Event::Rejected {
                pc: 0,
                by: by.clone(),
                comment: String::new(),
                at_ms,
            },
            Event::GateExpired { pc: 0, at_ms },
            Event::Paused {
                by: by.clone(),
                reason: reason.clone(),
                at_ms,
            },
            Event::Resumed {
                by: by.clone(),
                at_ms,
            },
            Event::RollbackStarted {
                by,
                reason: reason.clone(),
                mode: RollbackMode::Regular,
                force: false,
                at_ms,
            },
            Event::TrafficRestored {
                stage: 0,
                weights: Vec::new(),
                at_ms,
            },
            Event::RollbackBatchStarted {
                pcs: vec![0],
                attempt: 0,
                key,
                at_ms,
            },
            Event::RolledBackBatch {
                pcs: vec![0],
                attempt: 0,
                results: Vec::new(),
                at_ms,
            },
            Event::RollbackFailed {
                pcs: vec![0],
                attempt: 0,
                message,
                retryable: true,
                at_ms,
            },
            Event::RollbackVerified {
                pcs: vec![0],
                verdicts: Vec::new(),
                at_ms,
            },
            Event::Blocked {
                reason: reason.clone(),
                at_ms,
            },
            Event::Finished {
                status: Status::Succeeded,
                reason,
                at_ms,
            },
        ]
    }

    /// Every variant of `Event` as the journal spells it, from serde's own
    /// list: its derive is generated from the enum, so a variant added to
    /// the enum is in this list without anyone writing it down.
    fn journaled_variants() -> BTreeSet<String> {
        let err = serde_json::from_value::<Event>(serde_json::json!({"event": "?"}))
            .unwrap_err()
            .to_string();
        let (_, expected) = err
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("serde did not list the variants: {err}"));
        expected
            .split(", ")
            .filter_map(|v| v.split('`').nth(1))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_event_a_flow_may_name_is_an_event_and_every_event_may_be_named() {
        let events = one_of_each();
        for event in &events {
            // The name flows and notifiers use is the one the journal keeps.
            let journaled = serde_json::to_value(event).unwrap();
            assert_eq!(journaled["event"], event.name(), "{event:?}");
        }
        let names: BTreeSet<String> = events.iter().map(|e| e.name().to_string()).collect();
        assert_eq!(names.len(), events.len(), "two examples of one kind");
        let variants = journaled_variants();
        assert!(
            names == variants,
            "the examples lack {:?}",
            variants.difference(&names).collect::<Vec<_>>()
        );

        let allowed: BTreeSet<String> = EVENT_NAMES.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            allowed.len(),
            EVENT_NAMES.len(),
            "EVENT_NAMES repeats a name"
        );
        assert!(
            allowed == names,
            "EVENT_NAMES lacks {:?} and names {:?}, which no event is",
            names.difference(&allowed).collect::<Vec<_>>(),
            allowed.difference(&names).collect::<Vec<_>>()
        );
        for name in DEFAULT_NOTIFY_ON {
            assert!(allowed.contains(*name), "the default `{name}` is no event");
        }
    }
}
