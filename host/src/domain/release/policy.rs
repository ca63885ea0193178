//! The default verdict policy, used when a stage names no rollback-policy
//! plugin. It follows the practice of the better progressive-delivery tools:
//! a failure limit, a consecutive-error limit, no data counted as
//! inconclusive, and inconclusive evidence paused for a human. A round in
//! which every check measured nothing pauses as verified by nothing (see
//! [`super::evidence`]), unless the flow allows it of all of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Verification;
use super::evidence;
use crate::domain::plugin::{Verdict, VerdictStatus};

/// One check's verdict in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckVerdict {
    /// `name@version` of the check.
    pub check: String,
    pub verdict: Verdict,
    /// From a check the flow marks `shadow = true`: journaled and shown,
    /// never counted in a decision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// What a release does after a round of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ruling {
    /// Carry on.
    Proceed,
    /// A check could not run; run the round again after a while.
    Retry,
    /// Soft breach: stop and ask a human.
    Pause,
    /// Hard breach: roll back at once.
    Rollback,
}

impl Ruling {
    pub fn as_str(self) -> &'static str {
        match self {
            Ruling::Proceed => "proceed",
            Ruling::Retry => "retry",
            Ruling::Pause => "pause",
            Ruling::Rollback => "rollback",
        }
    }
}

fn evidence(v: &CheckVerdict) -> String {
    let metrics: Vec<String> = v
        .verdict
        .metrics
        .iter()
        .map(|m| format!("{}={}", m.name, m.value))
        .collect();
    let summary = v.verdict.summary.trim();
    match (summary.is_empty(), metrics.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {summary}"),
        (true, false) => format!(" ({})", metrics.join(", ")),
        (false, false) => format!(": {summary} ({})", metrics.join(", ")),
    }
}

/// Rules on one round. `errors` holds each check's consecutive errors before
/// this round, `failures` the failed verdicts earlier in the stage; `place`
/// says where the round ran (`at stage rollout, batch 2`).
pub fn judge(
    verification: &Verification,
    round: &[CheckVerdict],
    errors: &BTreeMap<String, u32>,
    failures: u32,
    place: &str,
) -> (Ruling, String) {
    let failed: Vec<&CheckVerdict> = round
        .iter()
        .filter(|v| v.verdict.status == VerdictStatus::Fail)
        .collect();
    let total_failures = failures + failed.len() as u32;
    if let Some(first) = failed.first()
        && total_failures > verification.failure_limit
    {
        return (
            Ruling::Rollback,
            format!("{} failed {place}{}", first.check, evidence(first)),
        );
    }
    let mut retry = None;
    for v in round
        .iter()
        .filter(|v| v.verdict.status == VerdictStatus::Error)
    {
        let consecutive = errors.get(&v.check).copied().unwrap_or(0) + 1;
        if consecutive > verification.error_limit {
            return (
                Ruling::Rollback,
                format!(
                    "{} errored {consecutive} times in a row {place}{}",
                    v.check,
                    evidence(v)
                ),
            );
        }
        retry.get_or_insert_with(|| {
            format!(
                "{} errored {place} ({consecutive} of {} tolerated in a row){}",
                v.check,
                verification.error_limit,
                evidence(v)
            )
        });
    }
    // A check the flow marks `evidence = "optional"` may have no data.
    let optional = |i: usize| {
        verification
            .checks
            .get(i)
            .is_some_and(|c| c.evidence_optional)
    };
    let doubtful = round
        .iter()
        .enumerate()
        .find(|(i, v)| match v.verdict.status {
            VerdictStatus::Inconclusive => true,
            VerdictStatus::NoData => !optional(*i),
            _ => false,
        });
    let nothing = evidence::nothing(round);
    if let Some((_, v)) = doubtful {
        if let Some(what) = nothing {
            return (
                Ruling::Pause,
                format!("verified by nothing {place}: {what}"),
            );
        }
        let what = if v.verdict.status == VerdictStatus::NoData {
            "had no data"
        } else {
            "was inconclusive"
        };
        return (
            Ruling::Pause,
            format!("{} {what} {place}{}", v.check, evidence(v)),
        );
    }
    if let Some(reason) = retry {
        return (Ruling::Retry, reason);
    }
    // Only checks marked optional are left, none of them measuring.
    if let Some(what) = nothing {
        return (
            Ruling::Proceed,
            format!("verified by nothing {place}: {what}, which the flow allows"),
        );
    }
    if let Some(first) = failed.first() {
        return (
            Ruling::Proceed,
            format!(
                "{} failed {place}{}, within the failure limit of {}",
                first.check,
                evidence(first),
                verification.failure_limit
            ),
        );
    }
    let passed = round
        .iter()
        .filter(|v| v.verdict.status == VerdictStatus::Pass)
        .count();
    let reason = match round.len() {
        0 => format!("no checks {place}"),
        n if passed < n => format!(
            "{passed} of {n} checks passed {place}; the rest had no data, which the flow allows"
        ),
        1 => format!("{} passed {place}", round[0].check),
        n => format!("all {n} checks passed {place}"),
    };
    (Ruling::Proceed, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plugin::Metric;

    fn verification(failure_limit: u32) -> Verification {
        Verification {
            checks: vec![],
            policy: None,
            failure_limit,
            error_limit: 4,
            retry_ms: 1_000,
        }
    }

    fn verdict(check: &str, status: VerdictStatus, summary: &str) -> CheckVerdict {
        CheckVerdict {
            check: check.to_string(),
            verdict: Verdict {
                status,
                summary: summary.to_string(),
                metrics: vec![Metric::new("error_rate", 0.072)],
            },
            shadow: false,
        }
    }

    #[test]
    fn rulings_follow_the_worst_verdict() {
        use VerdictStatus::*;
        let none = BTreeMap::new();
        let cases: &[(&[VerdictStatus], u32, Ruling)] = &[
            (&[Pass, Pass], 0, Ruling::Proceed),
            (&[Pass, Fail], 0, Ruling::Rollback),
            (&[Fail], 1, Ruling::Proceed),
            (&[Inconclusive, Pass], 0, Ruling::Pause),
            (&[NoData], 0, Ruling::Pause),
            (&[Error, Pass], 0, Ruling::Retry),
            (&[Error, Inconclusive], 0, Ruling::Pause),
            (&[Error, Fail], 0, Ruling::Rollback),
            (&[], 0, Ruling::Proceed),
        ];
        for (statuses, limit, expected) in cases {
            let round: Vec<CheckVerdict> = statuses
                .iter()
                .enumerate()
                .map(|(i, s)| verdict(&format!("c{i}@1.0.0"), *s, "x"))
                .collect();
            let (ruling, reason) = judge(&verification(*limit), &round, &none, 0, "at stage s");
            assert_eq!(ruling, *expected, "{statuses:?}: {reason}");
        }
    }

    /// A stage whose checks are optional (`true`) or required (`false`).
    fn checks(optional: &[bool]) -> Verification {
        let mut v = verification(0);
        v.checks = optional
            .iter()
            .enumerate()
            .map(|(i, o)| super::super::PluginRef {
                plugin: format!("c{i}"),
                version: "1.0.0".into(),
                params: vec![],
                evidence_optional: *o,
                shadow: false,
            })
            .collect();
        v
    }

    #[test]
    fn a_round_that_measured_nothing_pauses_as_verified_by_nothing() {
        use VerdictStatus::*;
        let none = BTreeMap::new();
        let cases: &[(&[bool], &[VerdictStatus], Ruling, &str)] = &[
            (
                &[false, false, false],
                &[NoData, NoData, NoData],
                Ruling::Pause,
                "verified by nothing at stage s: all 3 checks returned no data",
            ),
            (
                &[false, false],
                &[Error, NoData],
                Ruling::Pause,
                "verified by nothing at stage s: all 2 checks returned no data or errors",
            ),
            (
                &[true, false],
                &[NoData, NoData],
                Ruling::Pause,
                "verified by nothing at stage s: all 2 checks returned no data",
            ),
            // Errors are asked again first, and roll back past their limit.
            (
                &[false, false],
                &[Error, Error],
                Ruling::Retry,
                "c0@1.0.0 errored at stage s (1 of 4 tolerated in a row): x",
            ),
            // A flow may allow checks to have nothing to say.
            (
                &[true, true],
                &[NoData, NoData],
                Ruling::Proceed,
                "verified by nothing at stage s: all 2 checks returned no data, which the flow allows",
            ),
            (
                &[false, true],
                &[Pass, NoData],
                Ruling::Proceed,
                "1 of 2 checks passed at stage s; the rest had no data, which the flow allows",
            ),
            (
                &[true, false],
                &[Pass, NoData],
                Ruling::Pause,
                "c1@1.0.0 had no data at stage s: x",
            ),
        ];
        for (optional, statuses, ruling, reason) in cases {
            let round: Vec<CheckVerdict> = statuses
                .iter()
                .enumerate()
                .map(|(i, s)| CheckVerdict {
                    check: format!("c{i}@1.0.0"),
                    verdict: Verdict {
                        status: *s,
                        summary: "x".into(),
                        metrics: vec![],
                    },
                    shadow: false,
                })
                .collect();
            let got = judge(&checks(optional), &round, &none, 0, "at stage s");
            assert_eq!(
                got,
                (*ruling, reason.to_string()),
                "{optional:?} {statuses:?}"
            );
        }
    }

    #[test]
    fn the_fifth_consecutive_error_rolls_back() {
        let round = [verdict("probe@1.0.0", VerdictStatus::Error, "down")];
        let mut errors = BTreeMap::new();
        errors.insert("probe@1.0.0".to_string(), 3);
        assert_eq!(
            judge(&verification(0), &round, &errors, 0, "at stage s").0,
            Ruling::Retry
        );
        errors.insert("probe@1.0.0".to_string(), 4);
        let (ruling, reason) = judge(&verification(0), &round, &errors, 0, "at stage s");
        assert_eq!(ruling, Ruling::Rollback);
        assert!(reason.contains("errored 5 times in a row"), "{reason}");
    }

    #[test]
    fn reasons_carry_the_evidence() {
        let round = [verdict(
            "metrics@1.0.0",
            VerdictStatus::Fail,
            "error rate above 5%",
        )];
        let (_, reason) = judge(
            &verification(0),
            &round,
            &BTreeMap::new(),
            0,
            "at stage rollout, batch 2",
        );
        assert_eq!(
            reason,
            "metrics@1.0.0 failed at stage rollout, batch 2: error rate above 5% (error_rate=0.072)"
        );
    }
}
