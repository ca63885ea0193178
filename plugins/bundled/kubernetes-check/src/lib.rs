//! `kubernetes-check`, a bundled check: judges the pods of each Kubernetes
//! workload's current pod template, the pods running the images the
//! workload's template names now.
//!
//! Each target names a workload in its attributes (`cluster`, `namespace`,
//! `kind`, `name`, optional `token_secret`; see
//! [`greenlight_plugin_sdk::kube`]). The check reads the workload and the
//! pods its `spec.selector.matchLabels` select, keeps those of the current
//! template, and answers:
//!
//! - `fail` when any of them crash-loops, cannot pull its image, cannot be
//!   scheduled, has failed, or has a container that restarted more than
//!   `max_restarts` times, naming each pod and its reason;
//! - `pass` when every desired replica of every workload (`spec.replicas`,
//!   or the nodes a DaemonSet is scheduled on) is a ready pod of the
//!   current template;
//! - `no-data` when no workload has a pod of its current template yet;
//! - `inconclusive` otherwise, saying how many pods are ready.
//!
//! Parameters: `max_restarts` (default `0`) and `token_secret` (default
//! `kubernetes-token`, the grant's secret holding the bearer token for
//! targets that name none). Metrics, added up over the targets:
//! `ready_pods`, `desired_pods`, `restarts` and `problem_pods` (pods with a
//! problem that fails the check).

use greenlight_plugin_sdk::kube::{self, Kind, Workload};
use greenlight_plugin_sdk::pods::{self, PodProblem};
use greenlight_plugin_sdk::{Check, Error, Params, ReleaseContext, Target, Verdict};
use serde_json::Value;

struct KubernetesCheck;

/// What the pods of one workload's current template show.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assessment {
    /// The pods of the current template.
    pods: i64,
    ready: i64,
    desired: i64,
    restarts: i64,
    /// Problems that fail the check.
    problems: Vec<PodProblem>,
}

/// The replicas the workload wants: `spec.replicas` (1 when left out, as
/// the API server defaults it), or for a DaemonSet the nodes it is to run
/// on.
fn desired(workload: &Value) -> i64 {
    match Kind::parse(workload["kind"].as_str().unwrap_or_default()) {
        Some(Kind::DaemonSet) => workload["status"]["desiredNumberScheduled"]
            .as_i64()
            .unwrap_or(0),
        _ => workload["spec"]["replicas"].as_i64().unwrap_or(1),
    }
}

fn assess(workload: &Value, pods: &Value, max_restarts: i64) -> Assessment {
    let current = kube::current_pods(workload, pods);
    let problems = pods::problems(&Value::Array(current.clone()), max_restarts)
        .into_iter()
        .filter(|p| p.fatal)
        .collect();
    Assessment {
        pods: current.len() as i64,
        ready: current.iter().filter(|p| kube::is_ready(p)).count() as i64,
        desired: desired(workload),
        restarts: current.iter().map(kube::restarts).sum(),
        problems,
    }
}

/// The verdict over every target's assessment.
fn verdict(assessed: &[(String, Assessment)]) -> Verdict {
    let sum = |f: fn(&Assessment) -> i64| assessed.iter().map(|(_, a)| f(a)).sum::<i64>();
    let (ready, desired) = (sum(|a| a.ready), sum(|a| a.desired));
    let problems: Vec<String> = assessed
        .iter()
        .flat_map(|(id, a)| {
            a.problems
                .iter()
                .map(move |p| format!("{id}: pod {}: {}", p.pod, p.problem))
        })
        .collect();
    let mut problem_pods: Vec<(&str, &str)> = assessed
        .iter()
        .flat_map(|(id, a)| {
            a.problems
                .iter()
                .map(move |p| (id.as_str(), p.pod.as_str()))
        })
        .collect();
    problem_pods.dedup();
    let per_target: Vec<String> = assessed
        .iter()
        .map(|(id, a)| format!("{id} {}/{}", a.ready, a.desired))
        .collect();
    let counts = format!(
        "{ready} of {desired} desired pods of the current template ready ({})",
        per_target.join(", ")
    );
    let verdict = if !problems.is_empty() {
        Verdict::fail(problems.join("; "))
    } else if sum(|a| a.pods) == 0 {
        Verdict::no_data(format!("no pods of the current template yet; {counts}"))
    } else if assessed.iter().all(|(_, a)| a.ready >= a.desired) {
        Verdict::pass(counts)
    } else {
        Verdict::inconclusive(counts)
    };
    verdict
        .metric("ready_pods", ready as f64)
        .metric("desired_pods", desired as f64)
        .metric("restarts", sum(|a| a.restarts) as f64)
        .metric("problem_pods", problem_pods.len() as f64)
}

impl Check for KubernetesCheck {
    fn verify(ctx: &ReleaseContext, targets: &[Target]) -> Result<Verdict, Error> {
        let token_secret: String = ctx.param_or("token_secret", "kubernetes-token".to_string())?;
        let max_restarts: i64 = ctx.param_or("max_restarts", 0)?;
        let workloads = targets
            .iter()
            .map(|t| Workload::from_target(t, &token_secret))
            .collect::<Result<Vec<_>, _>>()?;
        let mut assessed = Vec::new();
        for w in &workloads {
            let client = w.client();
            let workload = client.get(&w.path(), &w.describe())?;
            let what = format!("the pods of {}", w.describe());
            let pods = client.get(&w.pods_path(&workload)?, &what)?;
            assessed.push((w.target_id.clone(), assess(&workload, &pods, max_restarts)));
        }
        Ok(verdict(&assessed))
    }
}

greenlight_plugin_sdk::export_check!(KubernetesCheck);

#[cfg(test)]
mod tests {
    use greenlight_plugin_sdk::VerdictStatus;
    use serde_json::json;

    use super::*;

    fn deployment(replicas: i64) -> Value {
        json!({"kind": "Deployment", "spec": {"replicas": replicas,
               "template": {"spec": {"containers": [{"name": "web", "image": "app:v2"}]}}}})
    }

    fn pod(name: &str, image: &str, ready: bool, restarts: i64) -> Value {
        json!({"metadata": {"name": name},
               "spec": {"containers": [{"name": "web", "image": image}]},
               "status": {"phase": "Running",
                          "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                          "containerStatuses": [{"name": "web", "restartCount": restarts, "state": {"running": {}}}]}})
    }

    fn metric(v: &Verdict, name: &str) -> f64 {
        v.metrics
            .iter()
            .find(|m| m.name == name)
            .map_or(f64::NAN, |m| m.value)
    }

    #[test]
    fn every_desired_replica_ready_on_the_current_template_passes() {
        let pods = json!({"items": [pod("a", "app:v2", true, 0), pod("b", "app:v2", true, 0),
                                    pod("old", "app:v1", false, 9)]});
        let a = assess(&deployment(2), &pods, 0);
        assert_eq!((a.pods, a.ready, a.desired, a.restarts), (2, 2, 2, 0));
        let v = verdict(&[("shop-a".into(), a)]);
        assert_eq!(v.status, VerdictStatus::Pass);
        assert_eq!(
            v.summary,
            "2 of 2 desired pods of the current template ready (shop-a 2/2)"
        );
        assert_eq!(metric(&v, "ready_pods"), 2.0);
        assert_eq!(metric(&v, "problem_pods"), 0.0);
    }

    #[test]
    fn restarts_past_the_limit_fail_naming_the_pod() {
        let pods = json!({"items": [pod("a", "app:v2", true, 1), pod("b", "app:v2", true, 0)]});
        let v = verdict(&[("shop-a".into(), assess(&deployment(2), &pods, 0))]);
        assert_eq!(v.status, VerdictStatus::Fail);
        assert_eq!(v.summary, "shop-a: pod a: container web restarted 1 times");
        assert_eq!(metric(&v, "restarts"), 1.0);
        assert_eq!(metric(&v, "problem_pods"), 1.0);
        let lenient = verdict(&[("shop-a".into(), assess(&deployment(2), &pods, 1))]);
        assert_eq!(lenient.status, VerdictStatus::Pass);
    }

    #[test]
    fn too_few_ready_is_inconclusive_and_none_is_no_data() {
        let pods = json!({"items": [pod("a", "app:v2", true, 0), pod("b", "app:v2", false, 0)]});
        let v = verdict(&[
            ("shop-a".into(), assess(&deployment(3), &pods, 0)),
            (
                "shop-b".into(),
                assess(&deployment(1), &json!({"items": []}), 0),
            ),
        ]);
        assert_eq!(v.status, VerdictStatus::Inconclusive);
        assert_eq!(
            v.summary,
            "1 of 4 desired pods of the current template ready (shop-a 1/3, shop-b 0/1)"
        );
        let none = verdict(&[(
            "shop-a".into(),
            assess(&deployment(3), &json!("garbage"), 0),
        )]);
        assert_eq!(none.status, VerdictStatus::NoData);
        assert_eq!(metric(&none, "desired_pods"), 3.0);
    }

    #[test]
    fn a_daemon_set_wants_a_pod_per_scheduled_node() {
        let ds = json!({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 3}});
        assert_eq!(desired(&ds), 3);
        assert_eq!(desired(&json!({"kind": "StatefulSet", "spec": {}})), 1);
    }
}
