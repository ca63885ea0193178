//! Replaying a past release's check rounds under a flow's rules: the rounds
//! its journal holds, and the counts the default policy keeps between them
//! (consecutive errors per check in a step, failures per stage), kept as
//! the release's state keeps them, so that a replay under the same flow
//! rules every round exactly as the release did.

use std::collections::BTreeMap;

use super::Verification;
use super::event::{DecisionRecord, Event};
use super::evidence;
use super::policy::{CheckVerdict, Ruling};
use crate::domain::plugin::VerdictStatus;

/// One check round of a past release, as its journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct PastRound {
    pub pc: usize,
    pub round: u32,
    /// When the round's verdicts were journaled.
    pub at_ms: u64,
    /// The end of the bake the round ran in, if any.
    pub bake_until_ms: Option<u64>,
    pub verdicts: Vec<CheckVerdict>,
    /// What was decided on the round, once it was.
    pub decision: Option<DecisionRecord>,
}

/// The forward check rounds of a journal, in order, each with its decision.
pub fn past_rounds(journal: &[Event]) -> Vec<PastRound> {
    let mut rounds: Vec<PastRound> = Vec::new();
    let mut bake: Option<(usize, u64)> = None;
    for event in journal {
        match event {
            Event::BakeStarted { pc, until_ms, .. } => bake = Some((*pc, *until_ms)),
            Event::Verified {
                pc,
                round,
                verdicts,
                at_ms,
            } => rounds.push(PastRound {
                pc: *pc,
                round: *round,
                at_ms: *at_ms,
                bake_until_ms: bake.filter(|(at, _)| at == pc).map(|(_, until)| until),
                verdicts: verdicts.clone(),
                decision: None,
            }),
            Event::Decided { pc, decision } => {
                if let Some(past) = rounds
                    .iter_mut()
                    .rev()
                    .find(|r| r.pc == *pc && r.round == decision.round)
                {
                    past.decision = Some(decision.clone());
                }
            }
            _ => {}
        }
    }
    rounds
}

/// The counts the default policy rules with, kept across replayed rounds.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    step: Option<usize>,
    /// Consecutive errors of each check in the current step.
    errors: BTreeMap<String, u32>,
    /// Failed verdicts per stage, by stage name.
    failures: BTreeMap<String, u32>,
}

impl Tally {
    /// Rules on a round of step `pc` in stage `stage` as the default
    /// policy would, then counts its verdicts as the release's state does.
    pub fn rule(
        &mut self,
        pc: usize,
        stage: &str,
        verification: &Verification,
        round: &[CheckVerdict],
        place: &str,
        bake_left_ms: u64,
    ) -> (Ruling, String) {
        self.enter(pc);
        let failures = self.failures.get(stage).copied().unwrap_or(0);
        let (ruling, reason, _) = evidence::default_ruling(
            verification,
            round,
            &self.errors,
            failures,
            place,
            bake_left_ms,
        );
        self.count(pc, stage, round);
        (ruling, reason)
    }

    /// Counts a round's verdicts: a shadow check's never count.
    pub fn count(&mut self, pc: usize, stage: &str, round: &[CheckVerdict]) {
        self.enter(pc);
        for v in round.iter().filter(|v| !v.shadow) {
            let count = self.errors.entry(v.check.clone()).or_default();
            if v.verdict.status == VerdictStatus::Error {
                *count += 1;
            } else {
                *count = 0;
            }
            if v.verdict.status == VerdictStatus::Fail {
                *self.failures.entry(stage.to_string()).or_default() += 1;
            }
        }
    }

    /// A new step starts with no errors counted.
    fn enter(&mut self, pc: usize) {
        if self.step != Some(pc) {
            self.step = Some(pc);
            self.errors.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plugin::Verdict;
    use crate::domain::release::PluginRef;

    fn verdict(status: VerdictStatus) -> Vec<CheckVerdict> {
        vec![CheckVerdict {
            check: "c@1.0.0".into(),
            verdict: Verdict {
                status,
                summary: status.as_str().into(),
                metrics: Vec::new(),
            },
            shadow: false,
        }]
    }

    fn verification(error_limit: u32) -> Verification {
        Verification {
            checks: vec![PluginRef {
                plugin: "c".into(),
                version: "1.0.0".into(),
                params: Vec::new(),
                evidence_optional: false,
                shadow: false,
            }],
            policy: None,
            failure_limit: 0,
            error_limit,
            retry_ms: 1000,
        }
    }

    #[test]
    fn errors_count_within_a_step_and_start_again_in_the_next() {
        let mut tally = Tally::default();
        let v = verification(1);
        let error = verdict(VerdictStatus::Error);
        let (first, _) = tally.rule(2, "s", &v, &error, "at stage s", 0);
        assert_eq!(first, Ruling::Retry);
        let (second, _) = tally.rule(2, "s", &v, &error, "at stage s", 0);
        assert_eq!(second, Ruling::Rollback);
        let (next_step, _) = tally.rule(3, "s", &v, &error, "at stage s", 0);
        assert_eq!(next_step, Ruling::Retry);
    }

    #[test]
    fn rounds_are_read_with_their_bake_and_decision() {
        let decided = |round| Event::Decided {
            pc: 1,
            decision: DecisionRecord {
                ruling: Ruling::Proceed,
                reason: "ok".into(),
                by: "default-policy".into(),
                stage: "s".into(),
                batch: None,
                round,
                inputs: Vec::new(),
                observations: 0,
                at_ms: 5,
            },
        };
        let journal = vec![
            Event::BakeStarted {
                pc: 1,
                until_ms: 100,
                at_ms: 1,
            },
            Event::Verified {
                pc: 1,
                round: 0,
                verdicts: verdict(VerdictStatus::Pass),
                at_ms: 5,
            },
            decided(0),
            Event::Verified {
                pc: 2,
                round: 0,
                verdicts: verdict(VerdictStatus::Pass),
                at_ms: 7,
            },
        ];
        let rounds = past_rounds(&journal);
        assert_eq!(rounds.len(), 2);
        assert_eq!(rounds[0].bake_until_ms, Some(100));
        assert!(rounds[0].decision.is_some());
        assert_eq!(rounds[1].bake_until_ms, None);
        assert!(rounds[1].decision.is_none());
    }
}
