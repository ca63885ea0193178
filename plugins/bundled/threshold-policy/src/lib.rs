//! `threshold-policy`, a bundled rollback policy: a hard breach rolls the
//! release back, a soft breach pauses it for a human, and hysteresis keeps
//! one noisy reading from doing either.
//!
//! Each observation is classified as hard, soft, clean or skipped:
//! - hard: the verdict is `fail`, or a metric breaches its `{metric}.hard`
//!   threshold;
//! - soft: the verdict is `inconclusive`, or a metric breaches its
//!   `{metric}.soft` threshold;
//! - skipped: `error` and `no-data` verdicts (the check could not measure),
//!   which neither extend nor end a streak; `no_data = soft` counts no data
//!   as soft instead;
//! - clean: anything else, which ends a streak.
//!
//! Per check, the newest observations are read backwards: `hard_after`
//! consecutive hard ones (default 1) roll back; `soft_after` consecutive soft
//! or hard ones (default 3) pause. Thresholds use the syntax of
//! [`greenlight_plugin_sdk::threshold`]: `error_rate.hard = "> 0.05"`,
//! `error_rate.soft = "> 1%"`, `availability.hard = "< 0.99"`.

use std::collections::BTreeMap;

use greenlight_plugin_sdk::threshold::{Bounds, Breach};
use greenlight_plugin_sdk::{
    Decision, Error, Observation, Params, ReleaseContext, RollbackPolicy, VerdictStatus,
};

struct ThresholdPolicy;

/// The policy's settings, from the flow's parameters.
struct Settings {
    hard_after: usize,
    soft_after: usize,
    no_data_is_soft: bool,
    bounds: BTreeMap<String, Bounds>,
}

impl Settings {
    fn from_params(ctx: &ReleaseContext, observations: &[Observation]) -> Result<Settings, Error> {
        let hard_after: usize = ctx.param_or("hard_after", 1)?;
        let soft_after: usize = ctx.param_or("soft_after", 3)?;
        if hard_after == 0 || soft_after == 0 {
            return Err(Error::new(
                "parameters `hard_after` and `soft_after` must be at least 1",
            ));
        }
        let no_data_is_soft = match ctx.param_str("no_data").unwrap_or("skip") {
            "skip" => false,
            "soft" => true,
            other => {
                return Err(Error::new(format!(
                    "parameter `no_data`: `{other}` is not `skip` or `soft`"
                )));
            }
        };
        let mut bounds = BTreeMap::new();
        for m in observations.iter().flat_map(|o| &o.verdict.metrics) {
            if !bounds.contains_key(&m.name)
                && let Some(b) = Bounds::from_params(ctx, &m.name)?
            {
                bounds.insert(m.name.clone(), b);
            }
        }
        Ok(Settings {
            hard_after,
            soft_after,
            no_data_is_soft,
            bounds,
        })
    }

    /// How bad one observation is and why; `None` when it is skipped.
    fn classify(&self, o: &Observation) -> Option<(Breach, String)> {
        let mut worst = match o.verdict.status {
            VerdictStatus::Fail => (Breach::Hard, "failed".to_string()),
            VerdictStatus::Inconclusive => (Breach::Soft, "was inconclusive".to_string()),
            VerdictStatus::NoData if self.no_data_is_soft => {
                (Breach::Soft, "had no data".to_string())
            }
            VerdictStatus::NoData | VerdictStatus::Error => return None,
            VerdictStatus::Pass => (Breach::None, "passed".to_string()),
        };
        for m in &o.verdict.metrics {
            let Some(bounds) = self.bounds.get(&m.name) else {
                continue;
            };
            let level = bounds.classify(m.value);
            if level > worst.0
                && let Some(t) = bounds.breached_by(m.value)
            {
                worst = (level, format!("{} {} {t}", m.name, m.value));
            }
        }
        Some(worst)
    }
}

/// Decides from every observation, oldest first.
fn decide(settings: &Settings, observations: &[Observation]) -> Decision {
    let mut by_check: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
    for o in observations {
        by_check.entry(o.check.as_str()).or_default().push(o);
    }
    let mut pause = None;
    let mut watching = Vec::new();
    for (check, seen) in by_check {
        let (mut hard, mut soft, mut latest) = (0, 0, None);
        let mut hard_run = true;
        for o in seen.iter().rev() {
            let Some((level, why)) = settings.classify(o) else {
                continue;
            };
            if level == Breach::None {
                break;
            }
            latest.get_or_insert_with(|| (why, place(o)));
            hard_run &= level == Breach::Hard;
            hard += usize::from(hard_run);
            soft += 1;
        }
        let Some((why, at)) = latest else {
            continue;
        };
        if hard >= settings.hard_after {
            return Decision::rollback(format!(
                "hard breach: {check} {why} {at} ({hard} in a row, rollback after {})",
                settings.hard_after
            ));
        }
        if soft >= settings.soft_after {
            pause.get_or_insert_with(|| {
                format!(
                    "soft breach: {check} {why} {at} ({soft} in a row, pause after {})",
                    settings.soft_after
                )
            });
        } else {
            watching.push(format!(
                "{check} {why} ({soft} of {} before a pause)",
                settings.soft_after
            ));
        }
    }
    match (pause, watching.is_empty()) {
        (Some(reason), _) => Decision::pause(reason),
        (None, true) => {
            Decision::proceed(format!("no breach in {} observations", observations.len()))
        }
        (None, false) => Decision::proceed(format!("within hysteresis: {}", watching.join("; "))),
    }
}

/// Where an observation was made, for people: batches are numbered from 1
/// there, though the host counts them from 0.
fn place(o: &Observation) -> String {
    match o.batch {
        Some(b) => format!("at stage {} batch {}", o.stage, b.saturating_add(1)),
        None => format!("at stage {}", o.stage),
    }
}

impl RollbackPolicy for ThresholdPolicy {
    fn decide(ctx: &ReleaseContext, observations: &[Observation]) -> Result<Decision, Error> {
        let settings = Settings::from_params(ctx, observations)?;
        Ok(decide(&settings, observations))
    }
}

greenlight_plugin_sdk::export_rollback_policy!(ThresholdPolicy);

#[cfg(test)]
mod tests {
    use greenlight_plugin_sdk::{DecisionKind, Verdict};

    use super::*;

    fn settings(hard_after: usize, soft_after: usize) -> Settings {
        let mut bounds = BTreeMap::new();
        bounds.insert(
            "error_rate".to_string(),
            Bounds {
                soft: Some("> 1%".parse().unwrap()),
                hard: Some("> 5%".parse().unwrap()),
            },
        );
        Settings {
            hard_after,
            soft_after,
            no_data_is_soft: false,
            bounds,
        }
    }

    fn obs(check: &str, status: VerdictStatus, error_rate: f64) -> Observation {
        Observation {
            check: check.into(),
            stage: "canary".into(),
            batch: Some(0),
            verdict: Verdict::new(status, "").metric("error_rate", error_rate),
            at_ms: 0,
        }
    }

    fn kind(d: &Decision) -> DecisionKind {
        d.kind
    }

    #[test]
    fn a_hard_breach_rolls_back_at_once() {
        let d = decide(
            &settings(1, 3),
            &[obs("metrics", VerdictStatus::Pass, 0.07)],
        );
        assert!(matches!(kind(&d), DecisionKind::Rollback), "{}", d.reason);
        assert_eq!(
            d.reason,
            "hard breach: metrics error_rate 0.07 > 0.05 at stage canary batch 1 (1 in a row, rollback after 1)"
        );
        let failed = decide(&settings(1, 3), &[obs("health", VerdictStatus::Fail, 0.0)]);
        assert!(matches!(kind(&failed), DecisionKind::Rollback));
    }

    #[test]
    fn a_soft_breach_pauses_only_once_it_persists() {
        let s = settings(1, 3);
        let soft = || obs("metrics", VerdictStatus::Pass, 0.02);
        let two = decide(&s, &[soft(), soft()]);
        assert!(matches!(kind(&two), DecisionKind::Proceed));
        assert_eq!(
            two.reason,
            "within hysteresis: metrics error_rate 0.02 > 0.01 (2 of 3 before a pause)"
        );
        let three = decide(&s, &[soft(), soft(), soft()]);
        assert!(
            matches!(kind(&three), DecisionKind::Pause),
            "{}",
            three.reason
        );
    }

    #[test]
    fn a_clean_reading_ends_a_streak_and_missing_data_does_not() {
        let s = settings(2, 3);
        let soft = || obs("metrics", VerdictStatus::Pass, 0.02);
        let clean = obs("metrics", VerdictStatus::Pass, 0.001);
        let gap = obs("metrics", VerdictStatus::NoData, 0.0);
        let broken = decide(&s, &[soft(), soft(), clean, soft()]);
        assert!(matches!(kind(&broken), DecisionKind::Proceed));
        let bridged = decide(&s, &[soft(), gap.clone(), soft(), gap, soft()]);
        assert!(matches!(kind(&bridged), DecisionKind::Pause));
    }

    #[test]
    fn hard_after_counts_only_consecutive_hard_breaches() {
        let s = settings(2, 5);
        let hard = || obs("metrics", VerdictStatus::Pass, 0.09);
        let soft = obs("metrics", VerdictStatus::Pass, 0.02);
        assert!(matches!(
            kind(&decide(&s, &[hard(), soft.clone()])),
            DecisionKind::Proceed
        ));
        assert!(matches!(
            kind(&decide(&s, &[soft, hard(), hard()])),
            DecisionKind::Rollback
        ));
    }

    #[test]
    fn checks_keep_separate_streaks() {
        let s = settings(1, 2);
        let d = decide(
            &s,
            &[
                obs("a", VerdictStatus::Inconclusive, 0.0),
                obs("b", VerdictStatus::Pass, 0.0),
                obs("a", VerdictStatus::Inconclusive, 0.0),
            ],
        );
        assert!(matches!(kind(&d), DecisionKind::Pause));
        assert!(
            d.reason.starts_with("soft breach: a was inconclusive"),
            "{}",
            d.reason
        );
    }
}
