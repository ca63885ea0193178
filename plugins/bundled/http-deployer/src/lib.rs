//! `http-deployer`, a bundled deployer: takes each target of a batch through
//! an agent HTTP API — drain it from traffic, deploy the version, wait until
//! it is healthy on that version, enable it — and rolls back the same way
//! to the previous version. The agent contract is specified in
//! `plugins/README.md` ("The agent API of `http-deployer`").
//!
//! Per target the agent's base URL is `{scheme}://{target.address}{agent_path}`
//! and the operation key is `{idempotency_key}:{target.id}`. Before touching
//! a target the deployer asks `GET {base}/operations/{key}` how far the
//! agent got under that key and resumes after the last step it completed;
//! a target already enabled under the key is left as it is. A retried batch
//! (after a crash of the daemon, say) never drains or deploys a target
//! twice.
//!
//! Parameters (all optional):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `agent_path` | `/agent` | where the agent API lives on each target |
//! | `scheme` | `http` | `http` or `https` |
//! | `timeout_ms` | `2000` | bound on each request to an agent |
//! | `health_timeout_ms` | `3000` | how long a target may take to become healthy |
//! | `health_interval_ms` | `100` | pause between health polls |
//!
//! A granted secret `agent_token` is sent as `Authorization: Bearer …`.
//! Every target costs at least five requests (operation, drain, deploy,
//! health, enable) plus one per extra health poll, so the grant's
//! `max_outbound_requests` and `deadline_ms` must fit the batch size.

use greenlight_plugin_sdk::{
    Deployer, Error, Params, ReleaseContext, Target, TargetResult, Work, config, http, log, time,
};
use serde::Deserialize;
use serde_json::json;

struct HttpDeployer;

/// The settings of one call, from the parameters and the grant.
struct Agent {
    scheme: String,
    path: String,
    timeout_ms: u64,
    health_timeout_ms: u64,
    health_interval_ms: u64,
    token: Option<String>,
}

/// What the agent says about an operation key.
#[derive(Deserialize)]
struct Operation {
    #[serde(default)]
    done: bool,
    /// The last step the agent completed under the key: `drained`,
    /// `deployed` or `enabled`.
    #[serde(default)]
    step: String,
    #[serde(default)]
    version: String,
}

/// What the agent says about the target's health.
#[derive(Deserialize)]
struct Health {
    healthy: bool,
    #[serde(default)]
    version: String,
    /// Why not, when the agent says.
    #[serde(default)]
    reason: Option<String>,
}

/// Where one target stands in the batch.
enum Step {
    /// Still going, with the steps done so far under this key (`0` none,
    /// `1` drained, `2` deployed).
    Working(u8),
    /// Finished, with the result to report.
    Finished(TargetResult),
    /// Its agent could not be reached (refused, reset, timed out): a
    /// restarting agent, not a verdict on the version.
    Unreachable(String),
}

/// Whether a request failed on the way to the agent rather than being
/// answered; the grant's refusal is an answer.
fn unreachable(e: &http::HttpError) -> bool {
    e.is_timeout() || matches!(e, http::HttpError::Transport(why) if !why.contains("denied"))
}

/// What a failed request leaves a target at: unreachable, or finished with
/// `message`.
fn failed(target: &Target, e: &http::HttpError, message: String) -> Step {
    if unreachable(e) {
        Step::Unreachable(format!("{}: {message}", target.id))
    } else {
        Step::Finished(TargetResult::failed(target, message))
    }
}

impl Agent {
    fn from_params(ctx: &ReleaseContext) -> Result<Agent, Error> {
        Ok(Agent {
            scheme: ctx.param_or("scheme", "http".to_string())?,
            path: ctx.param_or("agent_path", "/agent".to_string())?,
            timeout_ms: ctx.param_or("timeout_ms", 2_000)?,
            health_timeout_ms: ctx.param_or("health_timeout_ms", 3_000)?,
            health_interval_ms: ctx.param_or("health_interval_ms", 100)?,
            token: config::secret("agent_token"),
        })
    }

    fn url(&self, target: &Target, path: &str) -> String {
        let base = format!("{}://{}{}", self.scheme, target.address, self.path);
        http::join(&base, path)
    }

    fn get(&self, target: &Target, path: &str) -> Result<http::Response, http::HttpError> {
        http::Request::get(self.url(target, path))
            .bearer(self.token.as_deref())
            .timeout_ms(self.timeout_ms)
            .send()
    }

    fn post(
        &self,
        target: &Target,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), http::HttpError> {
        http::Request::post(self.url(target, path))
            .bearer(self.token.as_deref())
            .timeout_ms(self.timeout_ms)
            .json(body)
            .send()?
            .error_for_status()
            .map(drop)
    }

    /// Takes every target to `version`: the phases run across the batch so
    /// that its targets are drained together and their health is awaited
    /// together.
    fn apply(
        &self,
        ctx: &ReleaseContext,
        targets: &[Target],
        key: &str,
        version: &str,
        operation: &str,
    ) -> Result<Vec<TargetResult>, Error> {
        let keys: Vec<String> = targets.iter().map(|t| format!("{key}:{}", t.id)).collect();
        let body = |k: &str| {
            json!({"key": k, "version": version, "operation": operation,
                   "release_id": ctx.release_id, "application": ctx.application,
                   "environment": ctx.environment})
        };
        let mut steps: Vec<Step> = targets
            .iter()
            .zip(&keys)
            .map(|(t, k)| self.already_done(t, k))
            .collect();

        for (done, phase) in [(1, "drain"), (2, "deploy")] {
            for ((t, k), step) in targets.iter().zip(&keys).zip(&mut steps) {
                let Step::Working(so_far) = step else {
                    continue;
                };
                if *so_far >= done {
                    continue;
                }
                *step = match self.post(t, &format!("/{phase}"), &body(k)) {
                    Ok(()) => Step::Working(done),
                    Err(e) if done == 1 => failed(t, &e, format!("drain: {e}")),
                    Err(e) => failed(t, &e, format!("{phase}: {e}; left drained")),
                };
            }
        }
        self.await_health(targets, &mut steps, version);
        for ((t, k), step) in targets.iter().zip(&keys).zip(&mut steps) {
            if let Step::Working(_) = step {
                *step = match self.post(t, "/enable", &body(k)) {
                    Ok(()) => {
                        log::info(
                            "Target enabled.",
                            &[("target", &t.id), ("version", version), ("key", k)],
                        );
                        Step::Finished(TargetResult::ok(
                            t,
                            format!("{operation} of {version} done, enabled"),
                        ))
                    }
                    Err(e) => failed(t, &e, format!("enable: {e}; left drained")),
                };
            }
        }
        let unreachable: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Unreachable(why) => Some(why.as_str()),
                _ => None,
            })
            .collect();
        if !unreachable.is_empty() {
            // Every agent keeps what it did under its key, so the batch
            // asked again resumes each target where it stands.
            return Err(Error::retryable(format!(
                "agents unreachable, the batch is to be tried again: {}",
                unreachable.join("; ")
            )));
        }
        Ok(steps
            .into_iter()
            .zip(targets)
            .map(|(step, t)| match step {
                Step::Finished(result) => result,
                _ => TargetResult::failed(t, "unfinished"),
            })
            .collect())
    }

    /// Asks the agent how far it got under this key: a retried batch
    /// resumes after the last step the agent completed.
    fn already_done(&self, target: &Target, key: &str) -> Step {
        let path = format!("/operations/{}", http::encode_query(key));
        let answer = self.get(target, &path).and_then(|r| match r.status {
            404 => Ok(None),
            _ => r.error_for_status()?.json::<Operation>().map(Some),
        });
        match answer {
            Ok(Some(op)) if op.done || op.step == "enabled" => Step::Finished(TargetResult::ok(
                target,
                format!("already done for key {key} (version {})", op.version),
            )),
            Ok(Some(op)) if op.step == "deployed" => Step::Working(2),
            Ok(Some(op)) if op.step == "drained" => Step::Working(1),
            Ok(_) => Step::Working(0),
            Err(e) => failed(target, &e, format!("operation lookup: {e}; not touched")),
        }
    }

    /// Polls the health of every target still working until each is healthy
    /// on `version` or the health timeout passes.
    fn await_health(&self, targets: &[Target], steps: &mut [Step], version: &str) {
        let started = time::monotonic_ms();
        let mut last_seen: Vec<String> = vec![String::new(); targets.len()];
        // Whether the last poll of a target found its agent unreachable.
        let mut gone = vec![false; targets.len()];
        loop {
            let mut waiting = false;
            for (i, t) in targets.iter().enumerate() {
                if !matches!(steps[i], Step::Working(_)) || last_seen[i] == "healthy" {
                    continue;
                }
                let seen = self.get(t, "/health").and_then(|r| r.json::<Health>());
                gone[i] = seen.as_ref().is_err_and(unreachable);
                last_seen[i] = match seen {
                    Ok(h) if h.healthy && h.version == version => "healthy".into(),
                    Ok(h) if h.healthy => format!("healthy on {} instead", h.version),
                    Ok(h) => match h.reason {
                        Some(reason) => format!("unhealthy: {reason}"),
                        None => "unhealthy".into(),
                    },
                    Err(e) => e.to_string(),
                };
                waiting |= last_seen[i] != "healthy";
            }
            if !waiting {
                return;
            }
            if time::monotonic_ms() - started >= self.health_timeout_ms as f64 {
                break;
            }
            time::sleep_ms(self.health_interval_ms);
        }
        for (i, t) in targets.iter().enumerate() {
            if matches!(steps[i], Step::Working(_)) && last_seen[i] != "healthy" {
                let message = format!(
                    "not healthy on {version} within {} ms ({}); left drained",
                    self.health_timeout_ms, last_seen[i]
                );
                steps[i] = if gone[i] {
                    Step::Unreachable(format!("{}: {message}", t.id))
                } else {
                    Step::Finished(TargetResult::failed(t, message))
                };
            }
        }
    }
}

impl Deployer for HttpDeployer {
    fn deploy(
        ctx: &ReleaseContext,
        targets: &[Target],
        idempotency_key: &str,
    ) -> Result<Work, Error> {
        let agent = Agent::from_params(ctx)?;
        Ok(agent
            .apply(ctx, targets, idempotency_key, &ctx.version, "deploy")?
            .into())
    }

    fn rollback(
        ctx: &ReleaseContext,
        targets: &[Target],
        idempotency_key: &str,
    ) -> Result<Work, Error> {
        let agent = Agent::from_params(ctx)?;
        let previous = ctx
            .previous_version
            .as_deref()
            .ok_or_else(|| Error::new("there is no previous version to roll back to"))?;
        Ok(agent
            .apply(ctx, targets, idempotency_key, previous, "rollback")?
            .into())
    }
}

greenlight_plugin_sdk::export_deployer!(HttpDeployer);
