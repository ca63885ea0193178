//! Judging a canary: each metric classified from the Mann–Whitney test of
//! its canary and baseline samples, then a score over weighted groups of
//! metrics, mapped to a verdict (as Kayenta's judge does).

use crate::stats::{self, MannWhitney};

/// Which change of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A rise is bad: latency, errors.
    Increase,
    /// A fall is bad: throughput, hit ratio.
    Decrease,
    /// Either is.
    Either,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "increase" => Some(Direction::Increase),
            "decrease" => Some(Direction::Decrease),
            "either" => Some(Direction::Either),
            _ => None,
        }
    }
}

/// What to make of a metric without enough samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoData {
    /// Left out of the score.
    Ignore,
    /// Counted as failing.
    Fail,
}

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub direction: Direction,
    /// The relative change of the median tolerated in the bad direction
    /// even when it is significant (0.1 for 10%).
    pub allowed: f64,
    /// A failing critical metric fails the canary whatever the score.
    pub critical: bool,
    pub group: String,
    pub no_data: NoData,
}

/// How the whole canary is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// Group weights; a group not named weighs 1.
    pub weights: Vec<(String, f64)>,
    /// Scores from here up pass (0 to 100).
    pub pass: f64,
    /// Scores from here up are inconclusive; below, the canary fails.
    pub marginal: f64,
    pub confidence: f64,
    /// Fewer samples than this on either side are no data.
    pub min_samples: usize,
}

/// How a metric came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// No change beyond what is allowed in the bad direction.
    Pass,
    /// Significantly higher than the baseline, by more than allowed.
    High,
    /// Significantly lower, by more than allowed.
    Low,
    /// Too few samples to say.
    NoData,
}

/// One metric's outcome, with the evidence behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub rule: Rule,
    pub class: Class,
    /// Whether the class is the bad one for the metric's direction.
    pub bad: bool,
    pub test: Option<MannWhitney>,
    pub canary_median: Option<f64>,
    pub baseline_median: Option<f64>,
    pub n_canary: usize,
    pub n_baseline: usize,
}

impl Judged {
    /// The shift and its interval relative to the baseline's median, when
    /// that median is not zero.
    pub fn relative(&self) -> Option<(f64, f64, f64)> {
        let t = self.test.as_ref()?;
        let base = self.baseline_median?.abs();
        (base > 0.0).then(|| (t.shift / base, t.low / base, t.high / base))
    }

    /// The canary medians that pass: the baseline's, moved by what is
    /// allowed in each bad direction.
    pub fn allowed_range(&self) -> (Option<f64>, Option<f64>) {
        let Some(base) = self.baseline_median else {
            return (None, None);
        };
        let room = base.abs() * self.rule.allowed;
        let up = matches!(self.rule.direction, Direction::Increase | Direction::Either);
        let down = matches!(self.rule.direction, Direction::Decrease | Direction::Either);
        (down.then_some(base - room), up.then_some(base + room))
    }
}

/// Classifies one metric from its samples.
pub fn classify(rule: &Rule, canary: &[f64], baseline: &[f64], scoring: &Scoring) -> Judged {
    let (n_canary, n_baseline) = (canary.len(), baseline.len());
    let mut judged = Judged {
        rule: rule.clone(),
        class: Class::NoData,
        bad: rule.no_data == NoData::Fail,
        test: None,
        canary_median: stats::median(canary),
        baseline_median: stats::median(baseline),
        n_canary,
        n_baseline,
    };
    if n_canary < scoring.min_samples || n_baseline < scoring.min_samples {
        return judged;
    }
    let Some(test) = stats::mann_whitney(canary, baseline, scoring.confidence) else {
        return judged;
    };
    let base = judged.baseline_median.unwrap_or(0.0).abs();
    // Beyond what is allowed: relative to the baseline's median, or for a
    // baseline of zero, any shift at all.
    let beyond = |shift: f64| {
        if base > 0.0 {
            shift.abs() / base > rule.allowed
        } else {
            shift != 0.0
        }
    };
    judged.class = if test.low > 0.0 && beyond(test.shift) {
        Class::High
    } else if test.high < 0.0 && beyond(test.shift) {
        Class::Low
    } else {
        Class::Pass
    };
    judged.bad = matches!(
        (judged.class, rule.direction),
        (Class::High, Direction::Increase | Direction::Either)
            | (Class::Low, Direction::Decrease | Direction::Either)
    );
    judged.test = Some(test);
    judged
}

/// The canary's verdict over every metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 0 to 100; `None` when no metric counted.
    pub score: Option<f64>,
    pub status: Status,
    /// The critical metrics that failed.
    pub critical_failures: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Inconclusive,
    Fail,
    NoData,
}

/// Scores the metrics: per group, the share of its counted metrics that
/// passed, weighted over the groups that counted any.
pub fn score(judged: &[Judged], scoring: &Scoring) -> Outcome {
    let counted = |j: &&Judged| j.class != Class::NoData || j.rule.no_data == NoData::Fail;
    let mut groups: Vec<(&str, usize, usize)> = Vec::new();
    for j in judged.iter().filter(counted) {
        let group = j.rule.group.as_str();
        let passed = usize::from(!j.bad);
        match groups.iter_mut().find(|(g, _, _)| *g == group) {
            Some((_, n, ok)) => {
                *n += 1;
                *ok += passed;
            }
            None => groups.push((group, 1, passed)),
        }
    }
    let critical_failures: Vec<String> = judged
        .iter()
        .filter(|j| j.rule.critical && j.bad)
        .map(|j| j.rule.name.clone())
        .collect();
    let weight = |g: &str| {
        scoring
            .weights
            .iter()
            .find(|(name, _)| name == g)
            .map_or(1.0, |(_, w)| *w)
    };
    let total: f64 = groups.iter().map(|(g, _, _)| weight(g)).sum();
    let score = (!groups.is_empty() && total > 0.0).then(|| {
        100.0
            * groups
                .iter()
                .map(|(g, n, ok)| weight(g) * *ok as f64 / *n as f64)
                .sum::<f64>()
            / total
    });
    let status = match score {
        None => Status::NoData,
        Some(_) if !critical_failures.is_empty() => Status::Fail,
        Some(s) if s >= scoring.pass => Status::Pass,
        Some(s) if s >= scoring.marginal => Status::Inconclusive,
        Some(_) => Status::Fail,
    };
    Outcome {
        score,
        status,
        critical_failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, direction: Direction) -> Rule {
        Rule {
            name: name.into(),
            direction,
            allowed: 0.1,
            critical: false,
            group: name.into(),
            no_data: NoData::Ignore,
        }
    }

    fn scoring() -> Scoring {
        Scoring {
            weights: Vec::new(),
            pass: 95.0,
            marginal: 75.0,
            confidence: 0.95,
            min_samples: 10,
        }
    }

    /// Baseline latencies around 100, and a canary `factor` times slower.
    fn latencies(factor: f64) -> (Vec<f64>, Vec<f64>) {
        let base: Vec<f64> = (0..40).map(|i| 95.0 + (i * 7 % 11) as f64).collect();
        let canary = base.iter().map(|v| v * factor).collect();
        (canary, base)
    }

    #[test]
    fn a_slower_canary_is_high_and_bad_for_a_metric_that_must_not_rise() {
        let (canary, base) = latencies(1.3);
        let j = classify(
            &rule("latency", Direction::Increase),
            &canary,
            &base,
            &scoring(),
        );
        assert_eq!((j.class, j.bad), (Class::High, true));
        let (shift, low, high) = j.relative().unwrap();
        assert!(
            shift > 0.25 && low > 0.2 && high < 0.4,
            "{shift} {low} {high}"
        );
        assert_eq!(j.allowed_range(), (None, Some(110.0)));
        // The same change where only a fall is bad passes.
        let j = classify(
            &rule("rps", Direction::Decrease),
            &canary,
            &base,
            &scoring(),
        );
        assert_eq!((j.class, j.bad), (Class::High, false));
    }

    #[test]
    fn a_significant_change_within_the_allowance_passes() {
        let (canary, base) = latencies(1.05);
        let j = classify(
            &rule("latency", Direction::Either),
            &canary,
            &base,
            &scoring(),
        );
        assert!(j.test.as_ref().unwrap().low > 0.0, "significant");
        assert_eq!((j.class, j.bad), (Class::Pass, false));
        let (canary, base) = latencies(0.7);
        let j = classify(
            &rule("latency", Direction::Either),
            &canary,
            &base,
            &scoring(),
        );
        assert_eq!((j.class, j.bad), (Class::Low, true));
    }

    #[test]
    fn too_few_samples_are_no_data_and_count_only_when_asked() {
        let (canary, base) = latencies(1.3);
        let few = &canary[..5];
        let mut r = rule("latency", Direction::Increase);
        let j = classify(&r, few, &base, &scoring());
        assert_eq!((j.class, j.bad, j.n_canary), (Class::NoData, false, 5));
        let outcome = score(&[j], &scoring());
        assert_eq!((outcome.status, outcome.score), (Status::NoData, None));
        r.no_data = NoData::Fail;
        let j = classify(&r, few, &base, &scoring());
        let outcome = score(&[j], &scoring());
        assert_eq!((outcome.status, outcome.score), (Status::Fail, Some(0.0)));
    }

    #[test]
    fn groups_weigh_their_share_and_critical_metrics_fail_outright() {
        let (bad, base) = latencies(1.3);
        let (same, _) = latencies(1.0);
        let s = Scoring {
            weights: vec![("latency".into(), 3.0), ("errors".into(), 1.0)],
            ..scoring()
        };
        let mut latency = rule("latency", Direction::Increase);
        let mut p99 = rule("p99", Direction::Increase);
        p99.group = "latency".into();
        let errors = rule("errors", Direction::Increase);
        let judged = [
            classify(&latency, &bad, &base, &s),
            classify(&p99, &same, &base, &s),
            classify(&errors, &same, &base, &s),
        ];
        // latency: 1 of 2 passed, weight 3; errors: 1 of 1, weight 1.
        let outcome = score(&judged, &s);
        assert_eq!(outcome.score, Some(100.0 * (3.0 * 0.5 + 1.0) / 4.0));
        assert_eq!(outcome.status, Status::Fail);
        let lenient = Scoring {
            pass: 60.0,
            marginal: 50.0,
            ..s.clone()
        };
        assert_eq!(score(&judged, &lenient).status, Status::Pass);
        latency.critical = true;
        let judged = [
            classify(&latency, &bad, &base, &lenient),
            classify(&errors, &same, &base, &lenient),
        ];
        let outcome = score(&judged, &lenient);
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.critical_failures, ["latency"]);
        let marginal = Scoring {
            pass: 95.0,
            marginal: 60.0,
            ..s
        };
        latency.critical = false;
        let judged = [
            classify(&latency, &bad, &base, &marginal),
            classify(&errors, &same, &base, &marginal),
        ];
        // latency (weight 3) failed, errors (weight 1) passed: 25.
        let outcome = score(&judged, &marginal);
        assert_eq!((outcome.score, outcome.status), (Some(25.0), Status::Fail));
        let even = Scoring {
            weights: Vec::new(),
            ..marginal
        };
        // Unweighted, the same is 50: still below the marginal 60.
        assert_eq!(score(&judged, &even).score, Some(50.0));
    }

    #[test]
    fn a_zero_baseline_counts_any_significant_shift() {
        let base = vec![0.0; 20];
        let canary: Vec<f64> = (0..20).map(|i| if i < 12 { 0.01 } else { 0.0 }).collect();
        let j = classify(
            &rule("errors", Direction::Increase),
            &canary,
            &base,
            &scoring(),
        );
        assert_eq!(j.relative(), None);
        assert_eq!(j.class, Class::Pass, "the median shift is 0: {:?}", j.test);
        let canary = vec![0.02; 20];
        let j = classify(
            &rule("errors", Direction::Increase),
            &canary,
            &base,
            &scoring(),
        );
        assert_eq!((j.class, j.bad), (Class::High, true));
    }
}
