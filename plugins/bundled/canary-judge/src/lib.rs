//! `canary-judge`, a bundled check: compares the canary's time series with
//! the baseline's, metric by metric, with a Mann–Whitney U test over the
//! window since the batch was deployed, and scores the canary as Kayenta's
//! judge does. Parameters are documented in `plugins/README.md`.
//!
//! For each metric it asks the metrics store for the samples of two
//! templated queries (`{name}.canary` and `{name}.baseline`, see the SDK's
//! `query` module), classifies the metric (pass, higher or lower than the
//! baseline by more than allowed, or no data), scores the groups of
//! metrics, and answers `pass`, `inconclusive` or `fail` by the score (or
//! `fail` at once for a critical metric), `no-data` when no metric had
//! enough samples. Every metric's evidence goes with the verdict: the
//! canary's and the baseline's medians, the sample sizes, the medians that
//! would pass, its class and the shift with its confidence interval.

pub mod judge;
pub mod provider;
pub mod stats;

use greenlight_plugin_sdk::platform::{config, time};
use greenlight_plugin_sdk::query::{self, Scope};
use greenlight_plugin_sdk::{
    Check, Error, Metric, Params, ReleaseContext, Target, Verdict, VerdictStatus,
};

use judge::{Class, Direction, Judged, NoData, Rule, Scoring, Status};
use provider::{Provider, Secret};

struct CanaryJudge;

/// One metric: how to judge it and the two queries that sample it.
struct MetricSpec {
    rule: Rule,
    canary: String,
    baseline: String,
}

/// Everything the parameters say.
struct Settings {
    provider: Provider,
    metrics: Vec<MetricSpec>,
    scoring: Scoring,
    step_s: u64,
    max_window_ms: u64,
    timeout_ms: u64,
}

/// `10s`, `5m`, `1h`, or plain seconds.
fn duration_ms(name: &str, raw: &str) -> Result<u64, Error> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = number.parse().map_err(|_| {
        Error::new(format!(
            "parameter `{name}`: `{raw}` is not a duration such as 30s, 5m or 1h"
        ))
    })?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(Error::new(format!(
                "parameter `{name}`: `{raw}` has unit `{unit}`; use ms, s, m or h"
            )));
        }
    };
    Ok(n.saturating_mul(unit_ms))
}

/// `10%` or `0.1`.
fn fraction(name: &str, raw: &str) -> Result<f64, Error> {
    let raw = raw.trim();
    let value = match raw.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => raw.parse::<f64>(),
    };
    match value {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(Error::new(format!(
            "parameter `{name}`: `{raw}` is not a share such as 10% or 0.1"
        ))),
    }
}

fn secret(name: &str, what: &str) -> Result<Secret, Error> {
    let value = config::secret(name).ok_or_else(|| {
        Error::new(format!(
            "the grant has no secret `{name}` ({what}); add it with `greenlight plugin grant \
             canary-judge --secret {name}=…`"
        ))
    })?;
    Ok(Secret {
        name: name.to_string(),
        value,
    })
}

fn provider(ctx: &ReleaseContext) -> Result<Provider, Error> {
    let kind: String = ctx.param_or("provider", "prometheus".to_string())?;
    let url: String = ctx.required("url")?;
    match kind.as_str() {
        "prometheus" => Ok(Provider::Prometheus { url }),
        "influxdb" => {
            let database: String = ctx.required("database")?;
            let credentials = match (
                ctx.param_str("username_secret"),
                ctx.param_str("password_secret"),
            ) {
                (None, None) => None,
                (Some(u), Some(p)) => Some((
                    secret(u, "the InfluxDB user")?,
                    secret(p, "the InfluxDB password")?,
                )),
                _ => {
                    return Err(Error::new(
                        "parameters `username_secret` and `password_secret` go together",
                    ));
                }
            };
            Ok(Provider::InfluxDb {
                url,
                database,
                credentials,
            })
        }
        "datadog" => {
            let api: String = ctx.param_or("api_key_secret", "datadog-api-key".to_string())?;
            let app: String = ctx.param_or(
                "application_key_secret",
                "datadog-application-key".to_string(),
            )?;
            Ok(Provider::Datadog {
                url,
                api_key: secret(&api, "the Datadog API key")?,
                application_key: secret(&app, "the Datadog application key")?,
            })
        }
        other => Err(Error::new(format!(
            "parameter `provider`: `{other}` is none of prometheus, influxdb, datadog"
        ))),
    }
}

fn metric_spec(ctx: &ReleaseContext, name: String) -> Result<MetricSpec, Error> {
    let param = |field: &str| ctx.param_str(&format!("{name}.{field}"));
    let query = |field: &str| {
        param(field).map(str::to_string).ok_or_else(|| {
            Error::new(format!(
                "metric `{name}` needs `{name}.canary` and `{name}.baseline`: the queries of the \
                 canary's samples and the baseline's (`{name}.{field}` is missing)"
            ))
        })
    };
    let direction = match param("direction") {
        None => Direction::Increase,
        Some(d) => Direction::parse(d).ok_or_else(|| {
            Error::new(format!(
                "parameter `{name}.direction`: `{d}` is none of increase, decrease, either"
            ))
        })?,
    };
    let no_data = match param("no_data") {
        None | Some("ignore") => NoData::Ignore,
        Some("fail") => NoData::Fail,
        Some(other) => {
            return Err(Error::new(format!(
                "parameter `{name}.no_data`: `{other}` is neither ignore nor fail"
            )));
        }
    };
    let critical = ctx
        .param::<bool>(&format!("{name}.critical"))?
        .unwrap_or(false);
    let allowed = match param("allowed") {
        Some(raw) => fraction(&format!("{name}.allowed"), raw)?,
        None => 0.0,
    };
    Ok(MetricSpec {
        canary: query("canary")?,
        baseline: query("baseline")?,
        rule: Rule {
            group: param("group").unwrap_or(&name).to_string(),
            name,
            direction,
            allowed,
            critical,
            no_data,
        },
    })
}

fn weights(ctx: &ReleaseContext) -> Result<Vec<(String, f64)>, Error> {
    ctx.param_list("group_weights")
        .into_iter()
        .map(|pair| {
            let parsed = pair
                .split_once('=')
                .and_then(|(g, w)| Some((g.trim().to_string(), w.trim().parse::<f64>().ok()?)));
            match parsed {
                Some((g, w)) if !g.is_empty() && w.is_finite() && w >= 0.0 => Ok((g, w)),
                _ => Err(Error::new(format!(
                    "parameter `group_weights`: `{pair}` is not GROUP=WEIGHT (latency=3)"
                ))),
            }
        })
        .collect()
}

impl Settings {
    fn read(ctx: &ReleaseContext) -> Result<Settings, Error> {
        let names = ctx.param_list("metrics");
        if names.is_empty() {
            return Err(Error::new(
                "parameter `metrics` is required: the comma-separated names to compare",
            ));
        }
        let metrics = names
            .into_iter()
            .map(|name| metric_spec(ctx, name))
            .collect::<Result<Vec<_>, _>>()?;
        let pass: f64 = ctx.param_or("pass_score", 95.0)?;
        let marginal: f64 = ctx.param_or("marginal_score", 75.0)?;
        if !(0.0..=100.0).contains(&marginal) || !(marginal..=100.0).contains(&pass) {
            return Err(Error::new(format!(
                "parameters `marginal_score` ({marginal}) and `pass_score` ({pass}) must be \
                 0 ≤ marginal ≤ pass ≤ 100"
            )));
        }
        let confidence: f64 = ctx.param_or("confidence", 0.95)?;
        if !(0.5..1.0).contains(&confidence) {
            return Err(Error::new(format!(
                "parameter `confidence`: {confidence} is not in [0.5, 1), such as 0.95"
            )));
        }
        let step_ms = duration_ms("step", ctx.param_str("step").unwrap_or("10s"))?;
        Ok(Settings {
            provider: provider(ctx)?,
            metrics,
            scoring: Scoring {
                weights: weights(ctx)?,
                pass,
                marginal,
                confidence,
                min_samples: ctx.param_or("min_samples", 10usize)?.max(1),
            },
            step_s: (step_ms / 1000).max(1),
            max_window_ms: duration_ms("max_window", ctx.param_str("max_window").unwrap_or("1h"))?,
            timeout_ms: ctx.param_or("timeout_ms", 3_000)?,
        })
    }
}

/// `+31.2%` for a share.
fn signed_percent(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

/// A p-value in two significant digits: `0.31`, `0.0047`, `3.1e-9`.
fn p_value(p: f64) -> String {
    if p >= 0.001 {
        let digits = (2 - p.log10().floor() as i32 - 1).max(0) as usize;
        format!("{p:.digits$}")
    } else {
        format!("{p:.1e}")
    }
}

/// One line about a metric's outcome.
fn detail(j: &Judged, confidence: f64) -> String {
    let level = format!("{:.0}%", confidence * 100.0);
    let sizes = format!("{} vs {} samples", j.n_canary, j.n_baseline);
    let Some(t) = &j.test else {
        return format!("no data: {sizes}");
    };
    let shift = match j.relative() {
        Some((s, l, h)) => format!(
            "{} ({level} CI {}..{})",
            signed_percent(s),
            signed_percent(l),
            signed_percent(h)
        ),
        None => format!("{:+} ({level} CI {:+}..{:+})", t.shift, t.low, t.high),
    };
    let verdict = match (j.class, j.bad) {
        (Class::High, true) => format!("higher than allowed (+{:.0}%)", j.rule.allowed * 100.0),
        (Class::Low, true) => format!("lower than allowed (-{:.0}%)", j.rule.allowed * 100.0),
        (Class::High, false) => "higher, which is not bad for it".to_string(),
        (Class::Low, false) => "lower, which is not bad for it".to_string(),
        _ => "no change beyond what is allowed".to_string(),
    };
    format!("{shift}, p={}, {sizes}: {verdict}", p_value(t.p_value))
}

/// The verdict from the judged metrics.
fn verdict(judged: &[Judged], scoring: &Scoring) -> Verdict {
    let outcome = judge::score(judged, scoring);
    let failing: Vec<String> = judged
        .iter()
        .filter(|j| j.bad)
        .map(|j| match j.class {
            Class::NoData => format!("{} has no data", j.rule.name),
            _ => format!("{} {}", j.rule.name, detail(j, scoring.confidence)),
        })
        .collect();
    let score = outcome.score.map(|s| format!("score {s:.0}"));
    let mut v = match outcome.status {
        Status::NoData => Verdict::no_data(format!(
            "no metric had {} samples on both sides ({})",
            scoring.min_samples,
            judged
                .iter()
                .map(|j| format!("{} {} vs {}", j.rule.name, j.n_canary, j.n_baseline))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Status::Fail if !outcome.critical_failures.is_empty() => Verdict::fail(format!(
            "critical {} failed ({}): {}",
            outcome.critical_failures.join(", "),
            score.unwrap_or_default(),
            failing.join("; ")
        )),
        Status::Fail => Verdict::fail(format!(
            "{} < {}: {}",
            score.unwrap_or_default(),
            scoring.marginal,
            failing.join("; ")
        )),
        Status::Inconclusive => Verdict::inconclusive(format!(
            "{} (pass from {}): {}",
            score.unwrap_or_default(),
            scoring.pass,
            failing.join("; ")
        )),
        Status::Pass => Verdict::pass(format!(
            "{} ≥ {}: {} metrics compared with the baseline",
            score.unwrap_or_default(),
            scoring.pass,
            judged.iter().filter(|j| j.class != Class::NoData).count()
        )),
    };
    for j in judged {
        let status = match (j.class, j.bad) {
            (Class::NoData, _) => VerdictStatus::NoData,
            (_, true) => VerdictStatus::Fail,
            _ => VerdictStatus::Pass,
        };
        let Some(value) = j.canary_median else {
            continue;
        };
        let (low, high) = j.allowed_range();
        let mut m = Metric::new(&j.rule.name, value)
            .samples(j.n_canary as u64, Some(j.n_baseline as u64))
            .allowed(low, high)
            .judged(status, detail(j, scoring.confidence));
        if let Some(b) = j.baseline_median {
            m = m.baseline(b);
        }
        v.push(m);
    }
    if let Some(s) = outcome.score {
        v.push_metric("score", s);
    }
    v
}

impl Check for CanaryJudge {
    fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
        let settings = Settings::read(ctx)?;
        let scope = Scope::since_deploy(ctx, targets, time::now_ms(), settings.max_window_ms);
        let dialect = settings.provider.dialect();
        let mut judged = Vec::with_capacity(settings.metrics.len());
        for m in &settings.metrics {
            let sample = |template: &str, side: &str| {
                let q = query::render(template, &scope, dialect)
                    .map_err(|e| Error::new(format!("{}.{side}: {}", m.rule.name, e.message())))?;
                settings
                    .provider
                    .samples(&q, &scope, settings.step_s, settings.timeout_ms)
                    .map_err(|e| Error::new(format!("{}.{side}: {}", m.rule.name, e.message())))
            };
            let canary = sample(&m.canary, "canary")?;
            let baseline = sample(&m.baseline, "baseline")?;
            judged.push(judge::classify(
                &m.rule,
                &canary,
                &baseline,
                &settings.scoring,
            ));
        }
        Ok(verdict(&judged, &settings.scoring))
    }
}

greenlight_plugin_sdk::export_check!(CanaryJudge);

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(params: &[(&str, &str)]) -> ReleaseContext {
        ReleaseContext {
            release_id: "r1".into(),
            application: "shop".into(),
            environment: "prod".into(),
            version: "2.0.0".into(),
            previous_version: Some("1.0.0".into()),
            stage: "canary".into(),
            batch: Some(0),
            attempt: 1,
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            deployed_at_ms: Some(1_000),
        }
    }

    const BASE: [(&str, &str); 4] = [
        ("url", "http://prometheus:9090"),
        ("metrics", "latency"),
        ("latency.canary", "q{version=\"${version}\"}"),
        ("latency.baseline", "q{version=\"${previous_version}\"}"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> ReleaseContext {
        let mut all: Vec<(&str, &str)> = BASE.to_vec();
        all.extend_from_slice(extra);
        ctx(&all)
    }

    #[test]
    fn settings_read_with_their_defaults_and_refuse_what_is_wrong() {
        let s = Settings::read(&with(&[])).unwrap();
        assert_eq!(
            s.provider,
            Provider::Prometheus {
                url: "http://prometheus:9090".into()
            }
        );
        assert_eq!(s.metrics[0].rule.direction, Direction::Increase);
        assert_eq!(s.metrics[0].rule.group, "latency");
        assert_eq!((s.scoring.pass, s.scoring.marginal), (95.0, 75.0));
        assert_eq!((s.step_s, s.max_window_ms), (10, 3_600_000));

        let s = Settings::read(&with(&[
            ("latency.allowed", "10%"),
            ("latency.direction", "either"),
            ("latency.critical", "true"),
            ("group_weights", "latency=3"),
            ("step", "30s"),
        ]))
        .unwrap();
        let r = &s.metrics[0].rule;
        assert_eq!(
            (r.allowed, r.direction, r.critical),
            (0.1, Direction::Either, true)
        );
        assert_eq!(s.scoring.weights, [("latency".to_string(), 3.0)]);
        assert_eq!(s.step_s, 30);

        for (extra, needle) in [
            (("latency.direction", "up"), "`up` is none of increase"),
            (("latency.allowed", "ten"), "`ten` is not a share"),
            (("pass_score", "50"), "0 ≤ marginal ≤ pass ≤ 100"),
            (("confidence", "1.5"), "not in [0.5, 1)"),
            (("step", "5 weeks"), "unit ` weeks`"),
            (("provider", "graphite"), "`graphite` is none of"),
            (("group_weights", "latency"), "not GROUP=WEIGHT"),
        ] {
            let e = Settings::read(&with(&[extra])).err().unwrap();
            assert!(e.message().contains(needle), "{extra:?}: {}", e.message());
        }
        let e = Settings::read(&ctx(&[("url", "http://p"), ("metrics", "latency")]))
            .err()
            .unwrap();
        assert!(
            e.message().contains("`latency.canary` is missing"),
            "{}",
            e.message()
        );
        let e = Settings::read(&with(&[("provider", "influxdb")]))
            .err()
            .unwrap();
        assert!(
            e.message().contains("`database` is required"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn p_values_read_in_two_digits() {
        assert_eq!(p_value(1.0), "1.0");
        assert_eq!(p_value(0.3125), "0.31");
        assert_eq!(p_value(0.004713), "0.0047");
        assert_eq!(p_value(8.7e-5), "8.7e-5");
    }

    #[test]
    fn the_verdict_carries_each_metric_s_evidence() {
        let s = Settings::read(&with(&[("latency.allowed", "10%")])).unwrap();
        let base: Vec<f64> = (0..30).map(|i| 100.0 + (i % 7) as f64).collect();
        let slow: Vec<f64> = base.iter().map(|v| v * 1.3).collect();
        let judged = [judge::classify(
            &s.metrics[0].rule,
            &slow,
            &base,
            &s.scoring,
        )];
        let v = verdict(&judged, &s.scoring);
        assert_eq!(v.status, VerdictStatus::Fail);
        assert!(
            v.summary
                .starts_with("score 0 < 75: latency +29.7% (95% CI +28.4%..+31.3%), p=2.7e-11"),
            "{}",
            v.summary
        );
        let m = &v.metrics[0];
        assert_eq!(m.name, "latency");
        assert_eq!((m.samples, m.baseline_samples), (Some(30), Some(30)));
        assert_eq!(m.baseline, Some(103.0));
        assert_eq!(m.value, 103.0 * 1.3);
        assert_eq!(m.allowed_high.map(|h| (h * 10.0).round()), Some(1133.0));
        assert_eq!(m.allowed_low, None);
        assert_eq!(m.status, Some(VerdictStatus::Fail));
        assert!(
            m.detail
                .as_deref()
                .unwrap()
                .ends_with("30 vs 30 samples: higher than allowed (+10%)"),
            "{:?}",
            m.detail
        );
        assert_eq!(v.metrics[1].name, "score");

        let judged = [judge::classify(
            &s.metrics[0].rule,
            &base,
            &base,
            &s.scoring,
        )];
        let v = verdict(&judged, &s.scoring);
        assert_eq!(v.status, VerdictStatus::Pass, "{}", v.summary);
        let judged = [judge::classify(
            &s.metrics[0].rule,
            &base[..3],
            &base,
            &s.scoring,
        )];
        let v = verdict(&judged, &s.scoring);
        assert_eq!(v.status, VerdictStatus::NoData, "{}", v.summary);
        assert!(v.summary.contains("latency 3 vs 30"), "{}", v.summary);
    }
}
