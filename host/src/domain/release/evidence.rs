//! Whether a round of checks showed anything. A round in which every check
//! answered `no-data` or `error` measured nothing: it was verified by
//! nothing, and no release passes on it unless its flow says each of those
//! checks may have nothing to say (`evidence = "optional"`). The default
//! policy pauses on such a round; so does the engine when a policy plugin
//! would let it pass.

use std::collections::BTreeMap;

use super::event::DecisionRecord;
use super::policy::{CheckVerdict, Ruling, judge};
use super::{PluginRef, Verification};
use crate::domain::plugin::{Decision, DecisionKind, VerdictStatus};

/// Who holds a release that a policy plugin would pass on no evidence.
pub const ENGINE: &str = "engine";

fn measured_nothing(v: &CheckVerdict) -> bool {
    matches!(
        v.verdict.status,
        VerdictStatus::NoData | VerdictStatus::Error
    )
}

/// What a round verified by nothing returned (`all 3 checks returned no
/// data`), or `None` when some check measured something, or there was no
/// check to ask.
pub fn nothing(round: &[CheckVerdict]) -> Option<String> {
    if round.is_empty() || !round.iter().all(measured_nothing) {
        return None;
    }
    let errors = round
        .iter()
        .filter(|v| v.verdict.status == VerdictStatus::Error)
        .count();
    let what = match (errors, round.len() - errors) {
        (0, _) => "no data",
        (_, 0) if round.len() == 1 => "an error",
        (_, 0) => "errors",
        _ => "no data or errors",
    };
    Some(match round {
        [only] => format!("its only check, {}, returned {what}", only.check),
        _ => format!("all {} checks returned {what}", round.len()),
    })
}

/// Whether the flow lets this round pass though it measured nothing: every
/// check that answered is marked `evidence = "optional"`. The round's
/// verdicts are in the order of the stage's checks.
pub fn allowed(checks: &[PluginRef], round: &[CheckVerdict]) -> bool {
    (0..round.len()).all(|i| checks.get(i).is_some_and(|c| c.evidence_optional))
}

/// The part of a round that decides: the verdicts of the checks that are
/// not shadows (`shadow = true` in the flow), with those checks, in the
/// stage's order. A shadow check runs, and its verdicts are journaled and
/// shown, but they never count.
pub fn deciding(
    checks: &[PluginRef],
    round: &[CheckVerdict],
) -> (Vec<PluginRef>, Vec<CheckVerdict>) {
    (
        checks.iter().filter(|c| !c.shadow).cloned().collect(),
        round.iter().filter(|v| !v.shadow).cloned().collect(),
    )
}

/// What a pause becomes during a bake. A canary's data comes in over its
/// bake: a round early in it may find too little to judge (a check saying
/// `no-data` while its window since the deploy is short, or every check
/// measuring nothing). That is no reason to stop: the bake goes on, and its
/// last round, at the end of the bake, is held to the rule of evidence.
/// Only a pause taken for want of data is waived, and only while the bake
/// runs; an inconclusive or failed verdict pauses as ever.
pub fn while_baking(
    round: &[CheckVerdict],
    ruling: Ruling,
    reason: String,
    bake_left_ms: u64,
) -> (Ruling, String) {
    let wanting_data = round
        .iter()
        .any(|v| v.verdict.status == VerdictStatus::NoData)
        && round.iter().all(|v| {
            matches!(
                v.verdict.status,
                VerdictStatus::Pass | VerdictStatus::NoData | VerdictStatus::Error
            )
        });
    if ruling != Ruling::Pause || bake_left_ms == 0 || !wanting_data {
        return (ruling, reason);
    }
    (
        Ruling::Proceed,
        format!(
            "{reason}; not yet a reason to stop: the bake goes on for {}s, and its last round must have evidence",
            bake_left_ms.div_ceil(1000)
        ),
    )
}

/// What a policy plugin's ruling on a round becomes. A round verified by
/// nothing does not proceed unless the flow allows it: the release pauses
/// for a human, whatever the plugin made of the evidence it was given. A
/// pause or a rollback stands; a proceed the flow allows says what it
/// stood on.
pub fn hold(
    checks: &[PluginRef],
    round: &[CheckVerdict],
    ruling: Ruling,
    reason: String,
    by: &str,
    place: &str,
) -> (Ruling, String, String) {
    match nothing(round) {
        Some(what) if ruling == Ruling::Proceed && !allowed(checks, round) => (
            Ruling::Pause,
            format!("verified by nothing {place}: {what}; {by} would have proceeded: {reason}"),
            ENGINE.to_string(),
        ),
        Some(what) if ruling == Ruling::Proceed => (
            ruling,
            format!("{reason} (verified by nothing: {what}, which the flow allows)"),
            by.to_string(),
        ),
        _ => (ruling, reason, by.to_string()),
    }
}

/// The default policy's ruling on a round of a stage verified as
/// `verification` says, with the verdicts that decided it: `errors` and
/// `failures` are the counts before the round, `bake_left_ms` what is left
/// of the bake when the round ends.
pub fn default_ruling(
    verification: &Verification,
    round: &[CheckVerdict],
    errors: &BTreeMap<String, u32>,
    failures: u32,
    place: &str,
    bake_left_ms: u64,
) -> (Ruling, String, Vec<CheckVerdict>) {
    let (checks, verdicts) = deciding(&verification.checks, round);
    let verification = Verification {
        checks,
        ..verification.clone()
    };
    let (ruling, reason) = judge(&verification, &verdicts, errors, failures, place);
    let (ruling, reason) = while_baking(&verdicts, ruling, reason, bake_left_ms);
    (ruling, reason, verdicts)
}

/// What a policy plugin's answer on a round comes to: its decision held to
/// the rule of evidence (and, when the engine holds it, to the bake), or a
/// pause when it could not decide. Gives the ruling, its reason, who made
/// it and the verdicts that decided it.
pub fn plugin_ruling(
    checks: &[PluginRef],
    round: &[CheckVerdict],
    answer: Result<Decision, String>,
    plugin: &str,
    place: &str,
    bake_left_ms: u64,
) -> (Ruling, String, String, Vec<CheckVerdict>) {
    let (ruling, reason) = match answer {
        Ok(d) => (
            match d.kind {
                DecisionKind::Proceed => Ruling::Proceed,
                DecisionKind::Pause => Ruling::Pause,
                DecisionKind::Rollback => Ruling::Rollback,
            },
            d.reason,
        ),
        Err(message) => (
            Ruling::Pause,
            format!("the policy {plugin} could not decide: {message}"),
        ),
    };
    let (checks, inputs) = deciding(checks, round);
    let (ruling, reason, by) = hold(&checks, &inputs, ruling, reason, plugin, place);
    // The engine's own hold waits for the end of a bake; a plugin's pause
    // stands.
    let (ruling, reason) = if by == ENGINE {
        while_baking(&inputs, ruling, reason, bake_left_ms)
    } else {
        (ruling, reason)
    };
    (ruling, reason, by, inputs)
}

/// What a stage's decisions say about its evidence, when some round the
/// release went on from (proceeded, or paused for a human) was verified by
/// nothing: `verified by nothing: all 3 checks returned no data`, or `…
/// in 1 of 4 rounds: …` when others measured something. Retried rounds
/// are asked again, and a rollback goes no further; neither counts.
pub fn stage_note<'a>(decisions: impl IntoIterator<Item = &'a DecisionRecord>) -> Option<String> {
    let mut rounds = 0;
    let mut unverified = Vec::new();
    for d in decisions {
        if matches!(d.ruling, Ruling::Proceed | Ruling::Pause) {
            rounds += 1;
            unverified.extend(nothing(&d.inputs));
        }
    }
    let last = unverified.last()?;
    Some(if unverified.len() == rounds {
        format!("verified by nothing: {last}")
    } else {
        format!(
            "verified by nothing in {} of {rounds} rounds: {last}",
            unverified.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plugin::Verdict;

    fn verdict(check: &str, status: VerdictStatus) -> CheckVerdict {
        CheckVerdict {
            check: check.to_string(),
            verdict: Verdict {
                status,
                summary: "no samples".into(),
                metrics: vec![],
            },
            shadow: false,
        }
    }

    fn round(statuses: &[VerdictStatus]) -> Vec<CheckVerdict> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| verdict(&format!("c{i}@1.0.0"), *s))
            .collect()
    }

    fn check(optional: bool) -> PluginRef {
        PluginRef {
            plugin: "c".into(),
            version: "1.0.0".into(),
            params: vec![],
            evidence_optional: optional,
            shadow: false,
        }
    }

    #[test]
    fn a_round_of_no_data_and_errors_measured_nothing() {
        use VerdictStatus::*;
        let cases: &[(&[VerdictStatus], Option<&str>)] = &[
            (
                &[NoData, NoData, NoData],
                Some("all 3 checks returned no data"),
            ),
            (&[Error, Error], Some("all 2 checks returned errors")),
            (
                &[NoData, Error],
                Some("all 2 checks returned no data or errors"),
            ),
            (
                &[NoData],
                Some("its only check, c0@1.0.0, returned no data"),
            ),
            (
                &[Error],
                Some("its only check, c0@1.0.0, returned an error"),
            ),
            (&[NoData, Pass], None),
            (&[Inconclusive, NoData], None),
            (&[Fail, Error], None),
            (&[], None),
        ];
        for (statuses, expected) in cases {
            assert_eq!(
                nothing(&round(statuses)).as_deref(),
                *expected,
                "{statuses:?}"
            );
        }
    }

    #[test]
    fn only_a_round_whose_checks_are_all_optional_may_pass_on_nothing() {
        let quiet = round(&[VerdictStatus::NoData, VerdictStatus::NoData]);
        assert!(allowed(&[check(true), check(true)], &quiet));
        assert!(!allowed(&[check(true), check(false)], &quiet));
        assert!(!allowed(&[check(true)], &quiet), "a check the flow lacks");
    }

    #[test]
    fn a_plugin_that_would_pass_on_nothing_is_held_for_a_human() {
        let quiet = round(&[VerdictStatus::NoData, VerdictStatus::Error]);
        let required = [check(false), check(false)];
        let (ruling, reason, by) = hold(
            &required,
            &quiet,
            Ruling::Proceed,
            "no breach in 2 observations".into(),
            "threshold@1.0.0",
            "at stage rollout, batch 1",
        );
        assert_eq!(ruling, Ruling::Pause);
        assert_eq!(
            reason,
            "verified by nothing at stage rollout, batch 1: all 2 checks returned no data or \
             errors; threshold@1.0.0 would have proceeded: no breach in 2 observations"
        );
        assert_eq!(by, ENGINE);

        // A rollback or pause stands; a round with evidence is the plugin's.
        for ruling in [Ruling::Rollback, Ruling::Pause] {
            let held = hold(&required, &quiet, ruling, "r".into(), "p", "here");
            assert_eq!(held, (ruling, "r".to_string(), "p".to_string()));
        }
        let seen = round(&[VerdictStatus::Pass, VerdictStatus::NoData]);
        let held = hold(&required, &seen, Ruling::Proceed, "r".into(), "p", "here");
        assert_eq!(held.0, Ruling::Proceed);

        // A flow that allows it passes, saying on what.
        let optional = [check(true), check(true)];
        let (ruling, reason, by) = hold(
            &optional,
            &quiet,
            Ruling::Proceed,
            "fine".into(),
            "p",
            "here",
        );
        assert_eq!(ruling, Ruling::Proceed);
        assert_eq!(
            reason,
            "fine (verified by nothing: all 2 checks returned no data or errors, which the flow allows)"
        );
        assert_eq!(by, "p");
    }

    fn decided(ruling: Ruling, statuses: &[VerdictStatus]) -> DecisionRecord {
        DecisionRecord {
            ruling,
            reason: String::new(),
            by: "default-policy".into(),
            stage: "rollout".into(),
            batch: Some(0),
            round: 0,
            inputs: round(statuses),
            observations: 0,
            at_ms: 0,
        }
    }

    #[test]
    fn a_stage_says_how_much_of_it_was_verified_by_nothing() {
        use VerdictStatus::*;
        let quiet = decided(Ruling::Pause, &[NoData, NoData, NoData]);
        let passed = decided(Ruling::Proceed, &[Pass, Pass, Pass]);
        let retried = decided(Ruling::Retry, &[Error, Error, Error]);
        assert_eq!(
            stage_note([&retried, &quiet]).as_deref(),
            Some("verified by nothing: all 3 checks returned no data")
        );
        assert_eq!(
            stage_note([&quiet, &passed]).as_deref(),
            Some("verified by nothing in 1 of 2 rounds: all 3 checks returned no data")
        );
        assert_eq!(stage_note([&passed, &retried]), None);
        assert_eq!(stage_note([]), None);
    }

    #[test]
    fn a_bake_waits_for_data_but_not_for_doubt() {
        use VerdictStatus::*;
        let pause = |statuses: &[VerdictStatus], left_ms: u64| {
            while_baking(&round(statuses), Ruling::Pause, "held".into(), left_ms)
        };
        let (ruling, reason) = pause(&[NoData, Pass], 14_200);
        assert_eq!(ruling, Ruling::Proceed);
        assert_eq!(
            reason,
            "held; not yet a reason to stop: the bake goes on for 15s, and its last round must have evidence"
        );
        assert_eq!(pause(&[NoData, NoData], 1).0, Ruling::Proceed);
        assert_eq!(pause(&[NoData, Error], 1).0, Ruling::Proceed);
        // At the end of the bake the rule of evidence holds.
        assert_eq!(pause(&[NoData, Pass], 0), (Ruling::Pause, "held".into()));
        // Doubt and failure are not a want of data.
        assert_eq!(pause(&[NoData, Inconclusive], 9_000).0, Ruling::Pause);
        assert_eq!(pause(&[NoData, Fail], 9_000).0, Ruling::Pause);
        assert_eq!(pause(&[Error], 9_000).0, Ruling::Pause);
        // Only pauses are waived.
        let rollback = while_baking(&round(&[NoData]), Ruling::Rollback, "r".into(), 9_000);
        assert_eq!(rollback.0, Ruling::Rollback);
    }
}
