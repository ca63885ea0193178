//! `kubernetes-deployer`, a bundled deployer: deploys a version to
//! Kubernetes Deployments, StatefulSets and DaemonSets by setting the image
//! of their containers, follows each rollout across calls as `kubectl
//! rollout status` does, and rolls back by putting back the pod template
//! it recorded before its deploy.
//!
//! Each target names a workload in its attributes (`cluster`, `namespace`,
//! `kind`, `name`, optional `containers` and `token_secret`; see
//! [`greenlight_plugin_sdk::kube`]).
//!
//! Parameters:
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `image` | required for `deploy` | the image, `{version}` replaced by the version (`registry.example.com/shop:{version}`) |
//! | `max_restarts` | `2` | a container of the new template restarting more often fails the target |
//! | `token_secret` | `kubernetes-token` | the grant's secret holding the clusters' bearer token, for targets that name none; no such secret means no `Authorization` header (client certificates) |
//!
//! A deploy reads each workload. Unless its annotation
//! `greenlight.dev/deploy-key` already holds this call's idempotency key
//! (it was patched by an earlier call about the same batch attempt), it
//! patches it once: the image of the chosen containers, the annotations
//! `greenlight.dev/release`, `greenlight.dev/version`,
//! `greenlight.dev/deploy-key` and `greenlight.dev/previous-template` (the
//! pod template before the patch, kept as it was when the same release
//! deploys the same version again under a new key), and the pod template
//! annotation `greenlight.dev/version`. It then judges every workload: a
//! failed rollout (a passed progress deadline) or a pod of the new template
//! crash-looping, failing to pull its image, unschedulable or restarting
//! more than `max_restarts` times fails it. One failed workload ends the
//! call with every target's result; otherwise the call answers in progress
//! (one line per workload, asking again after 2 s) until every rollout is
//! done. All state lives on the workloads, so a call after a crash of the
//! daemon picks up where the work stands.
//!
//! A rollback puts back the recorded pod template of each workload this
//! release deployed to, with a JSON patch that also records
//! `greenlight.dev/rollback-key` and sets `greenlight.dev/version` to the
//! previous version, and follows that rollout the same way. A workload the
//! release did not change is reported as having nothing to roll back.

mod patch;
mod report;

use greenlight_plugin_sdk::kube::{self, Workload};
use greenlight_plugin_sdk::{Deployer, Error, Params, ReleaseContext, Target, Work, log};
use serde_json::Value;

use report::Outcome;

struct KubernetesDeployer;

/// The settings of one call.
struct Settings {
    max_restarts: i64,
    workloads: Vec<Workload>,
}

impl Settings {
    /// The parameters, and the workload of every target: a target that
    /// names none fails the call before any workload is touched.
    fn read(ctx: &ReleaseContext, targets: &[Target]) -> Result<Settings, Error> {
        let token_secret: String = ctx.param_or("token_secret", "kubernetes-token".to_string())?;
        let workloads = targets
            .iter()
            .map(|t| Workload::from_target(t, &token_secret))
            .collect::<Result<_, _>>()?;
        Ok(Settings {
            max_restarts: ctx.param_or("max_restarts", 2)?,
            workloads,
        })
    }

    /// Runs `step` on every workload and answers for the batch. A step
    /// that fails in a way that may pass (the cluster unreachable, a
    /// conflict) fails the call, to be asked again; any other failure is
    /// that target's.
    fn each(
        &self,
        targets: &[Target],
        step: impl Fn(&Workload) -> Result<Outcome, Error>,
    ) -> Result<Work, Error> {
        let mut outcomes = Vec::new();
        for w in &self.workloads {
            let outcome = match step(w) {
                Ok(outcome) => outcome,
                Err(e) if e.is_retryable() => return Err(e.context(&w.target_id)),
                Err(e) => Outcome::Failed(e.to_string()),
            };
            outcomes.push(outcome);
        }
        let labels: Vec<String> = self.workloads.iter().map(report::label).collect();
        Ok(report::answer(targets, &labels, &outcomes))
    }

    /// Reads the workload's pods and judges where it stands.
    fn judge(&self, w: &Workload, workload: &Value) -> Result<Outcome, Error> {
        let what = format!("the pods of {}", w.describe());
        let pods = w.client().get(&w.pods_path(workload)?, &what)?;
        Ok(report::judge(workload, &pods, self.max_restarts))
    }

    fn deploy(
        &self,
        ctx: &ReleaseContext,
        w: &Workload,
        key: &str,
        image: &str,
    ) -> Result<Outcome, Error> {
        let client = w.client();
        let current = client.get(&w.path(), &w.describe())?;
        let workload = if kube::annotation(&current, patch::DEPLOY_KEY) == Some(key) {
            current
        } else {
            let containers = patch::chosen_containers(w, &current).map_err(Error::new)?;
            let deploy = patch::Deploy {
                release_id: &ctx.release_id,
                version: &ctx.version,
                key,
                image,
            };
            let body = patch::deploy(&current, &containers, &deploy);
            let patched =
                client.patch(&w.path(), &w.describe(), kube::STRATEGIC_MERGE_PATCH, &body)?;
            log::info(
                "Workload patched.",
                &[
                    ("workload", &w.describe()),
                    ("cluster", &w.cluster),
                    ("image", image),
                ],
            );
            patched
        };
        self.judge(w, &workload)
    }

    fn rollback(&self, ctx: &ReleaseContext, w: &Workload, key: &str) -> Result<Outcome, Error> {
        let client = w.client();
        let current = client.get(&w.path(), &w.describe())?;
        let workload = if kube::annotation(&current, patch::ROLLBACK_KEY) == Some(key) {
            current
        } else {
            let template = match patch::previous_template(&current, &ctx.release_id) {
                None => {
                    return Ok(Outcome::Done(format!(
                        "nothing to roll back: release {} did not change {}",
                        ctx.release_id,
                        w.describe()
                    )));
                }
                Some(recorded) => {
                    recorded.map_err(|e| Error::new(format!("{}: {e}", w.describe())))?
                }
            };
            let previous = ctx.previous_version.as_deref();
            let body = patch::rollback(&current, template, key, previous);
            let patched = client.patch(&w.path(), &w.describe(), kube::JSON_PATCH, &body)?;
            log::info(
                "Pod template restored.",
                &[("workload", &w.describe()), ("cluster", &w.cluster)],
            );
            patched
        };
        self.judge(w, &workload)
    }
}

impl Deployer for KubernetesDeployer {
    fn deploy(
        ctx: &ReleaseContext,
        targets: &[Target],
        idempotency_key: &str,
    ) -> Result<Work, Error> {
        let settings = Settings::read(ctx, targets)?;
        let template: String = ctx.required("image")?;
        let image = patch::image_for(&template, &ctx.version);
        settings.each(targets, |w| {
            settings
                .deploy(ctx, w, idempotency_key, &image)
                .map(|o| match o {
                    Outcome::Done(m) => Outcome::Done(format!("{m}; runs {image}")),
                    other => other,
                })
        })
    }

    fn rollback(
        ctx: &ReleaseContext,
        targets: &[Target],
        idempotency_key: &str,
    ) -> Result<Work, Error> {
        let settings = Settings::read(ctx, targets)?;
        settings.each(targets, |w| {
            settings.rollback(ctx, w, idempotency_key).map(|o| match o {
                Outcome::Done(m) if !m.starts_with("nothing") => Outcome::Done(format!(
                    "{m}; the pod template from before release {} is back",
                    ctx.release_id
                )),
                other => other,
            })
        })
    }
}

greenlight_plugin_sdk::export_deployer!(KubernetesDeployer);
