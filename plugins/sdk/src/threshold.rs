//! Thresholds as flows write them (`> 0.05`, `<= 99.5`, `5%`), and the soft
//! and hard bounds of one metric.
//!
//! A threshold is an optional comparison (`>`, `>=`, `<`, `<=`; `>` when
//! left out) and a number, optionally followed by `%` to mean hundredths:
//! `5%` is `> 0.05`. A value *breaches* the threshold when the comparison
//! holds: with `error_rate.hard = "> 0.05"`, an error rate of 0.07 breaches.

use std::fmt;
use std::str::FromStr;

use crate::context::Params;
use crate::error::Error;
use crate::types::ReleaseContext;

/// The comparison of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Above,
    /// `>=`
    AtLeast,
    /// `<`
    Below,
    /// `<=`
    AtMost,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::AtLeast => ">=",
            Op::Below => "<",
            Op::AtMost => "<=",
        }
    }
}

/// A limit a measured value must not breach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub op: Op,
    pub limit: f64,
}

impl Threshold {
    /// Whether `value` breaches the threshold.
    pub fn breached(&self, value: f64) -> bool {
        match self.op {
            Op::Above => value > self.limit,
            Op::AtLeast => value >= self.limit,
            Op::Below => value < self.limit,
            Op::AtMost => value <= self.limit,
        }
    }

    /// Whether high values are the bad ones (`>`, `>=`).
    pub fn high_is_bad(&self) -> bool {
        matches!(self.op, Op::Above | Op::AtLeast)
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Threshold, String> {
        let s = s.trim();
        let (op, rest) = [
            (">=", Op::AtLeast),
            ("<=", Op::AtMost),
            (">", Op::Above),
            ("<", Op::Below),
        ]
        .into_iter()
        .find_map(|(text, op)| s.strip_prefix(text).map(|rest| (op, rest)))
        .unwrap_or((Op::Above, s));
        let rest = rest.trim();
        let (number, scale) = match rest.strip_suffix('%') {
            Some(number) => (number.trim(), 100.0),
            None => (rest, 1.0),
        };
        let limit: f64 = number
            .parse()
            .map_err(|_| format!("expected `[>|>=|<|<=] NUMBER[%]`, got `{s}`"))?;
        if !limit.is_finite() {
            return Err(format!("the limit in `{s}` is not a finite number"));
        }
        Ok(Threshold {
            op,
            limit: limit / scale,
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.limit)
    }
}

/// How far a value is out of bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Breach {
    /// Within bounds.
    None,
    /// Past the soft threshold: worth a human's look.
    Soft,
    /// Past the hard threshold: roll back.
    Hard,
}

/// The soft and hard thresholds of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub soft: Option<Threshold>,
    pub hard: Option<Threshold>,
}

impl Bounds {
    /// Reads `{name}.soft` and `{name}.hard` from the parameters; `None`
    /// when neither is set.
    pub fn from_params(ctx: &ReleaseContext, name: &str) -> Result<Option<Bounds>, Error> {
        let soft = ctx.param::<Threshold>(&format!("{name}.soft"))?;
        let hard = ctx.param::<Threshold>(&format!("{name}.hard"))?;
        Ok((soft.is_some() || hard.is_some()).then_some(Bounds { soft, hard }))
    }

    /// How far `value` is out of bounds.
    pub fn classify(&self, value: f64) -> Breach {
        if self.hard.is_some_and(|t| t.breached(value)) {
            Breach::Hard
        } else if self.soft.is_some_and(|t| t.breached(value)) {
            Breach::Soft
        } else {
            Breach::None
        }
    }

    /// The threshold `value` breaches, the hard one first.
    pub fn breached_by(&self, value: f64) -> Option<Threshold> {
        [self.hard, self.soft]
            .into_iter()
            .flatten()
            .find(|t| t.breached(value))
    }

    /// Of two measurements, the one closer to a breach (the larger when
    /// high values are bad).
    pub fn worse(&self, a: f64, b: f64) -> f64 {
        let high_is_bad = self.hard.or(self.soft).is_none_or(|t| t.high_is_bad());
        if high_is_bad == (a >= b) { a } else { b }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Threshold {
        s.parse().unwrap()
    }

    #[test]
    fn thresholds_parse_with_an_optional_comparison_and_percent() {
        assert_eq!(
            t("> 0.05"),
            Threshold {
                op: Op::Above,
                limit: 0.05
            }
        );
        assert_eq!(t("500").op, Op::Above);
        assert_eq!(t(">=500").op, Op::AtLeast);
        assert_eq!(t("<= 99.5").op, Op::AtMost);
        assert_eq!(t("5%").limit, 0.05);
        assert_eq!(t("< 90 %").op, Op::Below);
        let e = "fast".parse::<Threshold>().unwrap_err();
        assert_eq!(e, "expected `[>|>=|<|<=] NUMBER[%]`, got `fast`");
        assert!("> inf".parse::<Threshold>().is_err());
    }

    #[test]
    fn breaches_follow_the_comparison() {
        assert!(t("> 0.05").breached(0.07));
        assert!(!t("> 0.05").breached(0.05));
        assert!(t(">= 0.05").breached(0.05));
        assert!(t("< 0.99").breached(0.9));
        assert!(!t("<= 0.99").breached(1.0));
    }

    #[test]
    fn bounds_classify_hard_before_soft() {
        let b = Bounds {
            soft: Some(t("> 0.01")),
            hard: Some(t("> 0.05")),
        };
        assert_eq!(b.classify(0.001), Breach::None);
        assert_eq!(b.classify(0.02), Breach::Soft);
        assert_eq!(b.classify(0.5), Breach::Hard);
        assert_eq!(b.breached_by(0.5), Some(t("> 0.05")));
        assert_eq!(b.worse(0.1, 0.2), 0.2);
        let low = Bounds {
            soft: None,
            hard: Some(t("< 0.9")),
        };
        assert_eq!(low.worse(0.95, 0.5), 0.5);
    }
}
