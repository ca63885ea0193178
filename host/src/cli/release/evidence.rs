//! The evidence in `release show`: for each check whose latest verdict
//! judged its metrics one by one, a table of them (the canary's value
//! against the baseline's, the sample sizes, the range allowed, the
//! metric's status and detail) with the trend of the canary's value over
//! the rounds of that stage and batch.

use std::fmt::Write as _;

use super::view::{batch_suffix, table};
use crate::api::model::MetricDto;
use crate::api::release_model::{ObservationDto, ReleaseDto};

/// Rounds a trend shows; older ones are elided.
const TREND_ROUNDS: usize = 6;

/// A measurement in at most four significant digits (`0.0123`, `131.2`,
/// `12350`), in exponent form when very small or very large (`2.7e-11`),
/// as the web UI writes it.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs();
    if !(1e-4..1e7).contains(&magnitude) {
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let decimals = 3 - magnitude.log10().floor() as i32;
    if decimals <= 0 {
        let unit = 10f64.powi(-decimals);
        return format!("{:.0}", (v / unit).round() * unit);
    }
    let text = format!("{v:.prec$}", prec = decimals as usize);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `60 vs 58`, `60`, `- vs 58`, or `-`.
fn samples(m: &MetricDto) -> String {
    let canary = m.samples.map_or("-".to_string(), |n| n.to_string());
    match m.baseline_samples {
        Some(b) => format!("{canary} vs {b}"),
        None => canary,
    }
}

/// `0 .. 0.015`, `<= 132.1`, `>= 0.9`, or `-`.
fn allowed(m: &MetricDto) -> String {
    match (m.allowed_low, m.allowed_high) {
        (Some(lo), Some(hi)) => format!("{} .. {}", number(lo), number(hi)),
        (None, Some(hi)) => format!("<= {}", number(hi)),
        (Some(lo), None) => format!(">= {}", number(lo)),
        (None, None) => "-".to_string(),
    }
}

/// A metric's canary values over the rounds, oldest first:
/// `0.012 → 0.013 → 0.017`.
fn trend(name: &str, rounds: &[&ObservationDto]) -> String {
    let values: Vec<String> = rounds
        .iter()
        .filter_map(|o| o.verdict.metrics.get(name))
        .map(|v| number(*v))
        .collect();
    let skipped = values.len().saturating_sub(TREND_ROUNDS);
    let shown = values[skipped..].join(" → ");
    if skipped > 0 {
        format!("… → {shown}")
    } else {
        shown
    }
}

/// The section, or nothing when no check's latest verdict has evidence.
pub fn section(r: &ReleaseDto) -> String {
    let mut latest: Vec<&ObservationDto> = Vec::new();
    for o in &r.verdicts {
        match latest
            .iter_mut()
            .find(|l| l.verdict.check == o.verdict.check)
        {
            Some(l) => *l = o,
            None => latest.push(o),
        }
    }
    let mut out = String::new();
    for last in latest
        .into_iter()
        .filter(|o| !o.verdict.evidence.is_empty())
    {
        if out.is_empty() {
            out.push_str("\nEvidence (latest round of each check)\n");
        }
        let rounds: Vec<&ObservationDto> = r
            .verdicts
            .iter()
            .filter(|o| {
                o.verdict.check == last.verdict.check
                    && o.stage == last.stage
                    && o.batch == last.batch
            })
            .collect();
        let summary = match last.verdict.summary.as_str() {
            "" => String::new(),
            s => format!(": {s}"),
        };
        let _ = writeln!(
            out,
            "  {}{} at {}{}, round {}: {}{summary}",
            last.verdict.check,
            if last.verdict.shadow {
                " (in the shadow: never decides)"
            } else {
                ""
            },
            last.stage,
            batch_suffix(last.batch),
            rounds.len(),
            last.verdict.status
        );
        let rows: Vec<Vec<String>> = last
            .verdict
            .evidence
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    number(m.value),
                    m.baseline.map_or("-".to_string(), number),
                    samples(m),
                    allowed(m),
                    m.status.clone().unwrap_or_else(|| "-".to_string()),
                    trend(&m.name, &rounds),
                    m.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let headers = [
            "METRIC", "CANARY", "BASELINE", "SAMPLES", "ALLOWED", "STATUS", "TREND", "DETAIL",
        ];
        for line in table(&headers, &rows).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_significant_digits() {
        let cases = [
            (0.012, "0.012"),
            (131.2, "131.2"),
            (12_345.0, "12350"),
            (999.96, "1000"),
            (2.7e-11, "2.7e-11"),
            (1.5e8, "1.5e8"),
            (-0.5, "-0.5"),
            (0.0, "0"),
            (30.0, "30"),
            (f64::NAN, "-"),
        ];
        for (v, want) in cases {
            assert_eq!(number(v), want, "{v}");
        }
    }

    #[test]
    fn ranges_and_sample_sizes_say_which_ends_are_known() {
        let mut m = MetricDto {
            name: "error_rate".into(),
            value: 0.017,
            baseline: None,
            samples: Some(60),
            baseline_samples: Some(58),
            allowed_low: Some(0.0),
            allowed_high: Some(0.015),
            status: None,
            detail: None,
        };
        assert_eq!(
            (samples(&m), allowed(&m)),
            ("60 vs 58".into(), "0 .. 0.015".into())
        );
        m.allowed_low = None;
        m.baseline_samples = None;
        assert_eq!((samples(&m), allowed(&m)), ("60".into(), "<= 0.015".into()));
        m.allowed_high = None;
        m.allowed_low = Some(0.9);
        m.samples = None;
        assert_eq!((samples(&m), allowed(&m)), ("-".into(), ">= 0.9".into()));
    }
}
