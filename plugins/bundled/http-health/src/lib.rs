//! `http-health`, a bundled check: probes `GET {scheme}://{address}{path}` on
//! every target and passes when each answers as expected, reporting each
//! target's status and latency.
//!
//! Parameters (all optional):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `path` | `/health` | the health endpoint on each target |
//! | `scheme` | `http` | `http` or `https` |
//! | `timeout_ms` | `2000` | per-request bound; a target that takes longer is unhealthy; targets are probed at once, so the call takes about this long however many there are |
//! | `expect_status` | any 2xx | comma-separated status codes that count as healthy |
//! | `expect_body` | — | text the body must contain |
//! | `max_latency_ms` | — | a slower answer counts as unhealthy |
//!
//! Verdict: `pass` when every target is healthy, `fail` naming the unhealthy
//! ones otherwise, `no-data` when there are no targets. Metrics: `healthy`,
//! `unhealthy`, `latency_max_ms`, and per target `{id}.status` (0 when there
//! was no answer) and `{id}.latency_ms`. The grant must allow the targets'
//! origins.

use greenlight_plugin_sdk::{Check, Error, Params, ReleaseContext, Target, Verdict, http, time};

struct HttpHealth;

/// What counts as a healthy answer.
#[derive(Debug, Clone, PartialEq)]
struct Expect {
    statuses: Vec<u16>,
    body: Option<String>,
    max_latency_ms: Option<f64>,
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Answer {
        status: u16,
        body: String,
        latency_ms: f64,
    },
    NoAnswer(String),
}

impl Expect {
    fn from_params(ctx: &ReleaseContext) -> Result<Expect, Error> {
        let statuses = ctx
            .param_list("expect_status")
            .iter()
            .map(|s| {
                s.parse::<u16>().map_err(|_| {
                    Error::new(format!(
                        "parameter `expect_status`: `{s}` is not a status code"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Expect {
            statuses,
            body: ctx.param_str("expect_body").map(str::to_string),
            max_latency_ms: ctx.param("max_latency_ms")?,
        })
    }

    /// `Ok` when the answer is healthy, the reason otherwise.
    fn judge(&self, seen: &Seen) -> Result<(), String> {
        let (status, body, latency_ms) = match seen {
            Seen::NoAnswer(why) => return Err(why.clone()),
            Seen::Answer {
                status,
                body,
                latency_ms,
            } => (*status, body, *latency_ms),
        };
        let status_ok = if self.statuses.is_empty() {
            (200..300).contains(&status)
        } else {
            self.statuses.contains(&status)
        };
        if !status_ok {
            return Err(format!("answered HTTP {status}"));
        }
        if let Some(want) = &self.body
            && !body.contains(want.as_str())
        {
            return Err(format!("body does not contain `{want}`"));
        }
        if let Some(max) = self.max_latency_ms
            && latency_ms > max
        {
            return Err(format!("answered in {latency_ms:.0} ms, above {max} ms"));
        }
        Ok(())
    }
}

/// Probes every URL at once, each bounded by `timeout_ms`: the call takes
/// as long as the slowest target, not the sum of them all.
fn probe_all(urls: &[String], timeout_ms: u64) -> Vec<Seen> {
    let started = time::monotonic_ms();
    let requests = urls
        .iter()
        .map(|url| http::Request::get(url.as_str()).timeout_ms(timeout_ms));
    http::send_all(requests)
        .into_iter()
        .map(|answer| match answer {
            Ok(r) => Seen::Answer {
                status: r.status,
                body: r.text(),
                latency_ms: r.received_ms - started,
            },
            Err(e) => Seen::NoAnswer(e.to_string()),
        })
        .collect()
}

impl Check for HttpHealth {
    fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
        let path: String = ctx.param_or("path", "/health".to_string())?;
        let scheme: String = ctx.param_or("scheme", "http".to_string())?;
        let timeout_ms: u64 = ctx.param_or("timeout_ms", 2_000)?;
        let expect = Expect::from_params(ctx)?;
        if targets.is_empty() {
            return Ok(Verdict::no_data("no targets to probe"));
        }

        let mut metrics = Vec::new();
        let mut unhealthy = Vec::new();
        let mut latency_max: f64 = 0.0;
        let urls: Vec<String> = targets
            .iter()
            .map(|t| format!("{scheme}://{}{}", t.address, with_slash(&path)))
            .collect();
        for (target, seen) in targets.iter().zip(probe_all(&urls, timeout_ms)) {
            let (status, latency) = match &seen {
                Seen::Answer {
                    status, latency_ms, ..
                } => (f64::from(*status), *latency_ms),
                Seen::NoAnswer(_) => (0.0, 0.0),
            };
            latency_max = latency_max.max(latency);
            metrics.push((format!("{}.status", target.id), status));
            metrics.push((format!("{}.latency_ms", target.id), latency));
            if let Err(why) = expect.judge(&seen) {
                unhealthy.push(format!("{} {why}", target.id));
            }
        }

        let total = targets.len();
        let mut verdict = if unhealthy.is_empty() {
            Verdict::pass(format!(
                "{total} of {total} targets healthy (slowest {latency_max:.0} ms)"
            ))
        } else {
            Verdict::fail(format!(
                "{} of {total} targets unhealthy: {}",
                unhealthy.len(),
                unhealthy.join("; ")
            ))
        }
        .metric("healthy", (total - unhealthy.len()) as f64)
        .metric("unhealthy", unhealthy.len() as f64)
        .metric("latency_max_ms", latency_max);
        for (name, value) in metrics {
            verdict.push_metric(name, value);
        }
        Ok(verdict)
    }
}

fn with_slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

greenlight_plugin_sdk::export_check!(HttpHealth);

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, latency_ms: f64) -> Seen {
        Seen::Answer {
            status,
            body: body.into(),
            latency_ms,
        }
    }

    fn expect() -> Expect {
        Expect {
            statuses: vec![],
            body: None,
            max_latency_ms: None,
        }
    }

    #[test]
    fn any_2xx_is_healthy_by_default() {
        assert_eq!(expect().judge(&answer(204, "", 3.0)), Ok(()));
        assert_eq!(
            expect().judge(&answer(503, "", 3.0)),
            Err("answered HTTP 503".into())
        );
        assert_eq!(
            expect().judge(&Seen::NoAnswer("request failed: connection refused".into())),
            Err("request failed: connection refused".into())
        );
    }

    #[test]
    fn status_body_and_latency_expectations_apply() {
        let e = Expect {
            statuses: vec![200],
            body: Some("\"ok\"".into()),
            max_latency_ms: Some(100.0),
        };
        assert_eq!(e.judge(&answer(200, "{\"status\":\"ok\"}", 10.0)), Ok(()));
        assert_eq!(
            e.judge(&answer(204, "", 10.0)),
            Err("answered HTTP 204".into())
        );
        assert_eq!(
            e.judge(&answer(200, "{}", 10.0)),
            Err("body does not contain `\"ok\"`".into())
        );
        assert_eq!(
            e.judge(&answer(200, "\"ok\"", 250.0)),
            Err("answered in 250 ms, above 100 ms".into())
        );
    }
}
