//! `metrics-threshold`, a bundled check: measures named metrics from a
//! Prometheus-compatible query API or from `/metrics` text endpoints and
//! compares each with its soft and hard thresholds.
//!
//! Parameters:
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `metrics` | required | comma-separated names to check, such as `error_rate,latency_p99_ms` |
//! | `{name}.hard`, `{name}.soft` | one required | thresholds: `> 0.05`, `5%`, `< 0.99` (see the SDK's `threshold`) |
//! | `{name}.query` | the name | a PromQL expression with `prometheus_url`; otherwise a series selector such as `http_error_ratio{route="/"}`; either a template (`${version}`, `${targets.addresses}`, `${window}`, … see the SDK's `query` module) |
//! | `max_window_s` | `3600` | the longest `${window}` |
//! | `prometheus_url` | — | base URL of the query API: `GET {url}/api/v1/query?query=…` |
//! | `metrics_url` | — | one text endpoint to read instead of the targets' |
//! | `metrics_path` | `/metrics` | the text endpoint on each target when neither URL is set |
//! | `timeout_ms` | `2000` | per-request bound |
//!
//! A metric with several series (several targets, several label sets) is
//! judged by its worst value. Verdict: `fail` on any hard breach, else
//! `inconclusive` on a soft one, else `no-data` when a metric had no
//! samples, else `pass`. A source that cannot be read is an `error`.
//! Metrics: each measured name with its worst value, `hard_breaches`,
//! `soft_breaches`, `missing`.

mod exposition;

use greenlight_plugin_sdk::query::{self, Dialect, Scope};
use greenlight_plugin_sdk::threshold::{Bounds, Breach};
use greenlight_plugin_sdk::time;
use greenlight_plugin_sdk::{Check, Error, Params, ReleaseContext, Target, Verdict, http};
use serde_json::Value;

use exposition::Selector;

struct MetricsThreshold;

/// One metric to judge.
struct Rule {
    name: String,
    query: String,
    bounds: Bounds,
}

/// What one metric measured.
struct Measured<'a> {
    rule: &'a Rule,
    value: Option<f64>,
}

fn rules(ctx: &ReleaseContext) -> Result<Vec<Rule>, Error> {
    let names = ctx.param_list("metrics");
    if names.is_empty() {
        return Err(Error::new(
            "parameter `metrics` is required: the comma-separated names to check",
        ));
    }
    names
        .into_iter()
        .map(|name| {
            let bounds = Bounds::from_params(ctx, &name)?.ok_or_else(|| {
                Error::new(format!(
                    "metric `{name}` needs a threshold: set `{name}.hard` or `{name}.soft`"
                ))
            })?;
            let query = ctx
                .param_str(&format!("{name}.query"))
                .unwrap_or(&name)
                .to_string();
            Ok(Rule {
                name,
                query,
                bounds,
            })
        })
        .collect()
}

/// The rules with their queries filled in for this call (the release's
/// versions, the batch's targets, the window since it was deployed; see the
/// SDK's `query` module), escaped as PromQL.
fn templated(rules: Vec<Rule>, scope: &Scope) -> Result<Vec<Rule>, Error> {
    rules
        .into_iter()
        .map(|mut rule| {
            rule.query = query::render(&rule.query, scope, Dialect::PromQl)
                .map_err(|e| Error::new(format!("{}.query: {}", rule.name, e.message())))?;
            Ok(rule)
        })
        .collect()
}

/// The worst of some values, NaN ignored; `None` when there are none.
fn worst(bounds: &Bounds, values: impl IntoIterator<Item = f64>) -> Option<f64> {
    values
        .into_iter()
        .filter(|v| !v.is_nan())
        .reduce(|a, b| bounds.worse(a, b))
}

/// The sample values in a query API answer: the last value of each series
/// of a vector or matrix, or a scalar.
fn api_values(body: &Value) -> Result<Vec<f64>, String> {
    if body["status"] != "success" {
        let why = body["error"].as_str().unwrap_or("no `status: success`");
        return Err(format!("the query failed: {why}"));
    }
    let data = &body["data"];
    let pair_value = |pair: &Value| -> Result<f64, String> {
        pair.get(1)
            .and_then(Value::as_str)
            .and_then(exposition::parse_value)
            .ok_or_else(|| format!("`{pair}` is not a [time, \"value\"] pair"))
    };
    match data["resultType"].as_str() {
        Some("vector") => series(data).map(|s| pair_value(&s["value"])).collect(),
        Some("matrix") => series(data)
            .filter_map(|s| s["values"].as_array().and_then(|v| v.last()))
            .map(pair_value)
            .collect(),
        Some("scalar") => Ok(vec![pair_value(&data["result"])?]),
        other => Err(format!("unsupported result type {other:?}")),
    }
}

fn series(data: &Value) -> impl Iterator<Item = &Value> {
    data["result"].as_array().into_iter().flatten()
}

fn measure_prometheus<'a>(
    base: &str,
    rules: &'a [Rule],
    timeout_ms: u64,
) -> Result<Vec<Measured<'a>>, Error> {
    rules
        .iter()
        .map(|rule| {
            let url = format!(
                "{}?query={}",
                http::join(base, "/api/v1/query"),
                http::encode_query(&rule.query)
            );
            let body: Value = http::Request::get(url)
                .timeout_ms(timeout_ms)
                .send()?
                .error_for_status()?
                .json()?;
            let values =
                api_values(&body).map_err(|e| Error::new(format!("{}: {e}", rule.name)))?;
            Ok(Measured {
                rule,
                value: worst(&rule.bounds, values),
            })
        })
        .collect()
}

fn measure_text<'a>(
    urls: &[String],
    rules: &'a [Rule],
    timeout_ms: u64,
) -> Result<Vec<Measured<'a>>, Error> {
    let mut samples = Vec::new();
    for url in urls {
        let text = http::Request::get(url)
            .timeout_ms(timeout_ms)
            .send()
            .and_then(http::Response::error_for_status)
            .map_err(|e| Error::from(e).context(url))?
            .text();
        samples.extend(exposition::parse(&text).map_err(|e| Error::new(format!("{url}: {e}")))?);
    }
    rules
        .iter()
        .map(|rule| {
            let selector = Selector::parse(&rule.query)
                .map_err(|e| Error::new(format!("parameter `{}.query`: {e}", rule.name)))?;
            let values = samples
                .iter()
                .filter(|s| selector.matches(s))
                .map(|s| s.value);
            Ok(Measured {
                rule,
                value: worst(&rule.bounds, values),
            })
        })
        .collect()
}

/// The verdict on what was measured.
fn judge(measured: &[Measured]) -> Verdict {
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    let mut missing = Vec::new();
    let mut fine = Vec::new();
    let mut metrics = Vec::new();
    for m in measured {
        let name = &m.rule.name;
        let Some(value) = m.value else {
            missing.push(format!("{name} has no samples"));
            continue;
        };
        metrics.push((name.clone(), value));
        let line = match m.rule.bounds.breached_by(value) {
            Some(t) => format!("{name} {value} {t}"),
            None => format!("{name} {value} ok"),
        };
        match m.rule.bounds.classify(value) {
            Breach::Hard => hard.push(line),
            Breach::Soft => soft.push(line),
            Breach::None => fine.push(line),
        }
    }
    let verdict = if !hard.is_empty() {
        Verdict::fail(format!("hard breach: {}", hard[0]))
    } else if !soft.is_empty() {
        Verdict::inconclusive(format!("soft breach: {}", soft[0]))
    } else if !missing.is_empty() {
        Verdict::no_data(missing[0].clone())
    } else {
        Verdict::pass(fine.first().cloned().unwrap_or_default())
    };
    // The headline names the worst finding; the rest follow, worst first.
    let rest: Vec<&String> = hard
        .iter()
        .chain(&soft)
        .chain(&missing)
        .chain(&fine)
        .skip(1)
        .collect();
    let mut verdict = verdict;
    for line in rest {
        verdict.summary.push_str("; ");
        verdict.summary.push_str(line);
    }
    for (name, value) in metrics {
        verdict.push_metric(name, value);
    }
    verdict
        .metric("hard_breaches", hard.len() as f64)
        .metric("soft_breaches", soft.len() as f64)
        .metric("missing", missing.len() as f64)
}

impl Check for MetricsThreshold {
    fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
        let max_window_s: u64 = ctx.param_or("max_window_s", 3_600)?;
        let scope = Scope::since_deploy(ctx, targets, time::now_ms(), max_window_s * 1000);
        let rules = templated(rules(ctx)?, &scope)?;
        let timeout_ms: u64 = ctx.param_or("timeout_ms", 2_000)?;
        let measured = if let Some(base) = ctx.param_str("prometheus_url") {
            measure_prometheus(base, &rules, timeout_ms)?
        } else {
            let urls: Vec<String> = match ctx.param_str("metrics_url") {
                Some(url) => vec![url.to_string()],
                None => {
                    let path: String = ctx.param_or("metrics_path", "/metrics".to_string())?;
                    targets
                        .iter()
                        .map(|t| http::join(&format!("http://{}", t.address), &path))
                        .collect()
                }
            };
            if urls.is_empty() {
                return Ok(Verdict::no_data("no targets and no `metrics_url` to read"));
            }
            measure_text(&urls, &rules, timeout_ms)?
        };
        Ok(judge(&measured))
    }
}

greenlight_plugin_sdk::export_check!(MetricsThreshold);

#[cfg(test)]
mod tests {
    use greenlight_plugin_sdk::VerdictStatus;
    use serde_json::json;

    use super::*;

    #[test]
    fn queries_are_filled_in_for_the_call_and_bad_templates_name_the_metric() {
        let ctx = ReleaseContext {
            release_id: "r1".into(),
            application: "shop".into(),
            environment: "prod".into(),
            version: "2.0.0".into(),
            previous_version: None,
            stage: "canary".into(),
            batch: Some(0),
            attempt: 1,
            parameters: Vec::new(),
            deployed_at_ms: Some(1_000_000),
        };
        let targets = [Target {
            id: "web-1".into(),
            address: "10.0.0.1:8080".into(),
            group: String::new(),
            labels: Vec::new(),
            attributes: Vec::new(),
        }];
        let scope = Scope::since_deploy(&ctx, &targets, 1_120_000, 3_600_000);
        let mut r = rule("errors", "> 1%", "> 5%");
        r.query =
            r#"rate(errors{version="${version}", instance=~"${targets.addresses}"}[${window}])"#
                .into();
        let filled = templated(vec![r], &scope).unwrap();
        assert_eq!(
            filled[0].query,
            r#"rate(errors{version="2.0.0", instance=~"10\\.0\\.0\\.1:8080"}[120s])"#
        );
        let mut r = rule("errors", "> 1%", "> 5%");
        r.query = "x{v=\"${previous_version}\"}".into();
        let e = templated(vec![r], &scope).err().unwrap();
        assert!(
            e.message().starts_with("errors.query: query template:"),
            "{}",
            e.message()
        );
    }

    fn rule(name: &str, soft: &str, hard: &str) -> Rule {
        Rule {
            name: name.into(),
            query: name.into(),
            bounds: Bounds {
                soft: Some(soft.parse().unwrap()),
                hard: Some(hard.parse().unwrap()),
            },
        }
    }

    #[test]
    fn query_api_answers_yield_their_values() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"instance": "a"}, "value": [1.0, "0.02"]},
            {"metric": {"instance": "b"}, "value": [1.0, "0.07"]}]}});
        assert_eq!(api_values(&vector), Ok(vec![0.02, 0.07]));
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(api_values(&empty), Ok(vec![]));
        let scalar =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}});
        assert_eq!(api_values(&scalar), Ok(vec![3.0]));
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]}]}});
        assert_eq!(api_values(&matrix), Ok(vec![2.0]));
        let failed = json!({"status": "error", "error": "parse error at char 5"});
        assert_eq!(
            api_values(&failed),
            Err("the query failed: parse error at char 5".into())
        );
    }

    #[test]
    fn the_worst_breach_decides_and_missing_data_is_no_data() {
        let errors = rule("error_rate", "> 1%", "> 5%");
        let latency = rule("latency_p99_ms", "> 300", "> 500");
        let m = |rule, value| Measured { rule, value };

        let v = judge(&[m(&errors, Some(0.07)), m(&latency, Some(350.0))]);
        assert_eq!(v.status, VerdictStatus::Fail);
        assert_eq!(
            v.summary,
            "hard breach: error_rate 0.07 > 0.05; latency_p99_ms 350 > 300"
        );

        let v = judge(&[m(&errors, Some(0.001)), m(&latency, Some(350.0))]);
        assert_eq!(v.status, VerdictStatus::Inconclusive);
        assert_eq!(
            v.summary,
            "soft breach: latency_p99_ms 350 > 300; error_rate 0.001 ok"
        );

        let v = judge(&[m(&errors, None), m(&latency, Some(100.0))]);
        assert_eq!(v.status, VerdictStatus::NoData);
        assert_eq!(
            v.summary,
            "error_rate has no samples; latency_p99_ms 100 ok"
        );

        let v = judge(&[m(&errors, Some(0.0)), m(&latency, Some(100.0))]);
        assert_eq!(v.status, VerdictStatus::Pass);
        assert_eq!(
            v.metrics
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            [
                "error_rate",
                "latency_p99_ms",
                "hard_breaches",
                "soft_breaches",
                "missing"
            ]
        );
    }

    #[test]
    fn worst_ignores_nan_and_follows_the_direction() {
        let errors = rule("error_rate", "> 1%", "> 5%");
        assert_eq!(worst(&errors.bounds, [0.01, f64::NAN, 0.03]), Some(0.03));
        assert_eq!(worst(&errors.bounds, [f64::NAN]), None);
    }
}
