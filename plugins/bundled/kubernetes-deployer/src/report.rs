//! How a deploy or a rollback answers: each workload's outcome, judged the
//! way `kubectl rollout status` judges it plus the pods of the new
//! template, and the answer for the whole batch (done, or in progress with
//! one line per workload).

use std::time::Duration;

use greenlight_plugin_sdk::kube::{self, Kind, Workload};
use greenlight_plugin_sdk::pods::{self, PodProblem};
use greenlight_plugin_sdk::rollout::{self, Rollout};
use greenlight_plugin_sdk::{Target, TargetResult, Work};
use serde_json::Value;

/// How long to wait before asking about a rollout under way again.
pub const ASK_AGAIN_AFTER: Duration = Duration::from_secs(2);

/// How long when every rollout under way is finishing: just patched (the
/// controller sees a new spec within moments), or every replica updated and
/// only their availability or the old ones' termination left. Asking
/// sooner then ends a batch closer to when its rollout ends.
pub const ASK_SOON_AFTER: Duration = Duration::from_millis(500);

/// Where one workload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished well, with what was done.
    Done(String),
    /// Still rolling out, with how far it has come.
    Progressing(String),
    /// Still rolling out, but close to the end: see [`ASK_SOON_AFTER`].
    Finishing(String),
    /// Will not finish by itself, with why.
    Failed(String),
}

/// Judges a workload as read (or as patched) and the pods it selects: a
/// rollout that failed, or a pod of the current template failing in a way
/// that does not mend, fails it; otherwise the rollout says whether it is
/// done.
pub fn judge(workload: &Value, pods: &Value, max_restarts: i64) -> Outcome {
    let status = rollout::status(workload);
    if let Rollout::Failed(reason) = status {
        return Outcome::Failed(reason);
    }
    let current = Value::Array(kube::current_pods(workload, pods));
    let fatal: Vec<PodProblem> = pods::problems(&current, max_restarts)
        .into_iter()
        .filter(|p| p.fatal)
        .collect();
    if !fatal.is_empty() {
        return Outcome::Failed(failing_pods(&fatal));
    }
    match status {
        Rollout::Done(message) => Outcome::Done(message),
        Rollout::Progressing(note) => match counts(workload) {
            None => Outcome::Finishing(note),
            Some(c) if c.updated >= c.wanted => Outcome::Finishing(c.note()),
            Some(c) => Outcome::Progressing(c.note()),
        },
        Rollout::Failed(reason) => Outcome::Failed(reason),
    }
}

/// `pods of the new template fail: web-1: container web: CrashLoopBackOff; …`
fn failing_pods(fatal: &[PodProblem]) -> String {
    let reasons: Vec<String> = fatal
        .iter()
        .map(|p| format!("{}: {}", p.pod, p.problem))
        .collect();
    format!("pods of the new template fail: {}", reasons.join("; "))
}

/// A rollout's counts, as its workload's status gives them.
struct Counts {
    updated: i64,
    wanted: i64,
    up: i64,
    /// What `up` counts: `available` or `ready` replicas.
    word: &'static str,
    /// Replicas of an older template still running (Deployments).
    old: i64,
}

impl Counts {
    /// `3 of 10 updated, 2 available, 9 old still running`.
    fn note(&self) -> String {
        let mut note = format!(
            "{} of {} updated, {} {}",
            self.updated, self.wanted, self.up, self.word
        );
        if self.old > 0 {
            note.push_str(&format!(", {} old still running", self.old));
        }
        note
    }
}

/// The counts once the controller has seen the current spec (before that
/// they are about the old one).
fn counts(workload: &Value) -> Option<Counts> {
    let generation = workload["metadata"]["generation"].as_i64()?;
    let status = &workload["status"];
    if status["observedGeneration"].as_i64()? < generation {
        return None;
    }
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let kind = Kind::parse(workload["kind"].as_str().unwrap_or_default())?;
    let (updated, wanted, up, word) = match kind {
        Kind::Deployment => (
            n(&status["updatedReplicas"]),
            n(&workload["spec"]["replicas"]),
            n(&status["availableReplicas"]),
            "available",
        ),
        Kind::StatefulSet => (
            n(&status["updatedReplicas"]),
            n(&workload["spec"]["replicas"]),
            n(&status["readyReplicas"]),
            "ready",
        ),
        Kind::DaemonSet => (
            n(&status["updatedNumberScheduled"]),
            n(&status["desiredNumberScheduled"]),
            n(&status["numberAvailable"]),
            "available",
        ),
    };
    let old = match kind {
        Kind::Deployment => (n(&status["replicas"]) - updated).max(0),
        _ => 0,
    };
    Some(Counts {
        updated,
        wanted,
        up,
        word,
        old,
    })
}

/// `shop/web (127.0.0.1:6443)`: the workload and its cluster, for notes.
pub fn label(w: &Workload) -> String {
    let host = w
        .cluster
        .split_once("://")
        .map_or(w.cluster.as_str(), |(_, h)| h);
    format!("{}/{} ({host})", w.namespace, w.name)
}

/// The answer for the batch: done as soon as one workload failed (the
/// others reported as they stand), in progress while any is rolling out,
/// done when all are.
pub fn answer(targets: &[Target], labels: &[String], outcomes: &[Outcome]) -> Work {
    let failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed(_)));
    let progressing = outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Progressing(_)));
    let finishing = outcomes.iter().any(|o| matches!(o, Outcome::Finishing(_)));
    if (progressing || finishing) && !failed {
        let notes: Vec<String> = labels
            .iter()
            .zip(outcomes)
            .map(|(label, o)| match o {
                Outcome::Progressing(note) | Outcome::Finishing(note) => {
                    format!("{label}: {note}")
                }
                _ => format!("{label}: done"),
            })
            .collect();
        let after = if progressing {
            ASK_AGAIN_AFTER
        } else {
            ASK_SOON_AFTER
        };
        return Work::in_progress(notes.join("; "), after);
    }
    targets
        .iter()
        .zip(outcomes)
        .map(|(t, o)| match o {
            Outcome::Done(message) => TargetResult::ok(t, message.clone()),
            Outcome::Failed(reason) => TargetResult::failed(t, reason.clone()),
            Outcome::Progressing(note) | Outcome::Finishing(note) => TargetResult::failed(
                t,
                format!("not finished ({note}); stopped because another target failed"),
            ),
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn target(id: &str) -> Target {
        Target {
            id: id.into(),
            address: String::new(),
            group: String::new(),
            labels: Vec::new(),
            attributes: Vec::new(),
        }
    }

    fn deployment(status: Value) -> Value {
        json!({
            "kind": "Deployment",
            "metadata": {"name": "shop", "generation": 2},
            "spec": {"replicas": 10, "template": {"spec": {"containers": [{"name": "web", "image": "app:v2"}]}}},
            "status": status,
        })
    }

    fn pod(name: &str, image: &str, waiting: &str) -> Value {
        json!({"metadata": {"name": name},
               "spec": {"containers": [{"name": "web", "image": image}]},
               "status": {"phase": "Running", "containerStatuses": [
                   {"name": "web", "restartCount": 3, "state": {"waiting": {"reason": waiting}}}]}})
    }

    #[test]
    fn progress_reads_as_counts_once_the_controller_has_seen_the_spec() {
        let d = deployment(json!({"observedGeneration": 2, "replicas": 12,
                                  "updatedReplicas": 3, "availableReplicas": 2}));
        assert_eq!(
            judge(&d, &json!({"items": []}), 2),
            Outcome::Progressing("3 of 10 updated, 2 available, 9 old still running".into())
        );
        // Just patched, and every replica updated but not yet available:
        // both close to their end.
        let unseen = deployment(json!({"observedGeneration": 1}));
        assert_eq!(
            judge(&unseen, &json!({"items": []}), 2),
            Outcome::Finishing(
                "waiting for the deployment controller to see shop's new spec".into()
            )
        );
        let tail = deployment(json!({"observedGeneration": 2, "replicas": 11,
                                     "updatedReplicas": 10, "availableReplicas": 8}));
        assert_eq!(
            judge(&tail, &json!({"items": []}), 2),
            Outcome::Finishing("10 of 10 updated, 8 available, 1 old still running".into())
        );
    }

    #[test]
    fn crashing_pods_of_the_new_template_fail_the_rollout_and_old_ones_do_not() {
        let d = deployment(json!({"observedGeneration": 2, "updatedReplicas": 2}));
        let pods = json!({"items": [
            pod("shop-new-1", "app:v2", "CrashLoopBackOff"),
            pod("shop-old-1", "app:v1", "CrashLoopBackOff"),
        ]});
        assert_eq!(
            judge(&d, &pods, 5),
            Outcome::Failed(
                "pods of the new template fail: shop-new-1: container web: CrashLoopBackOff".into()
            )
        );
        let old_only = json!({"items": [pod("shop-old-1", "app:v1", "CrashLoopBackOff")]});
        assert!(matches!(judge(&d, &old_only, 5), Outcome::Progressing(_)));
    }

    #[test]
    fn a_passed_progress_deadline_fails() {
        let d = deployment(json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}));
        assert_eq!(
            judge(&d, &json!(null), 2),
            Outcome::Failed("deployment shop exceeded its progress deadline".into())
        );
    }

    #[test]
    fn the_batch_is_in_progress_while_one_rolls_out_and_done_when_one_fails() {
        let targets = [target("a"), target("b")];
        let labels = [
            "shop (cluster-a)".to_string(),
            "shop (cluster-b)".to_string(),
        ];
        let work = answer(
            &targets,
            &labels,
            &[
                Outcome::Progressing("3 of 10 updated, 2 available".into()),
                Outcome::Done("rolled out".into()),
            ],
        );
        match work {
            Work::InProgress(p) => {
                assert_eq!(
                    p.note,
                    "shop (cluster-a): 3 of 10 updated, 2 available; shop (cluster-b): done"
                );
                assert_eq!(p.ask_again_after_ms, 2_000);
            }
            Work::Done(_) => panic!("done while rolling out"),
        }
        // Asked again sooner once every rollout under way is finishing.
        let finishing = [
            Outcome::Finishing("10 of 10 updated, 9 available".into()),
            Outcome::Finishing("waiting for the controller".into()),
        ];
        match answer(&targets, &labels, &finishing) {
            Work::InProgress(p) => assert_eq!(p.ask_again_after_ms, 500),
            Work::Done(_) => panic!("done while rolling out"),
        }
        let one_behind = [
            Outcome::Finishing("10 of 10 updated, 9 available".into()),
            Outcome::Progressing("3 of 10 updated, 2 available".into()),
        ];
        match answer(&targets, &labels, &one_behind) {
            Work::InProgress(p) => assert_eq!(p.ask_again_after_ms, 2_000),
            Work::Done(_) => panic!("done while rolling out"),
        }
        let work = answer(
            &targets,
            &labels,
            &[
                Outcome::Progressing("3 of 10".into()),
                Outcome::Failed("crash".into()),
            ],
        );
        let Work::Done(results) = work else {
            panic!("a failed target must end the work")
        };
        assert!(!results[0].ok && results[0].message.starts_with("not finished (3 of 10)"));
        assert!(!results[1].ok && results[1].message == "crash");
        let Work::Done(results) = answer(
            &targets,
            &labels,
            &[Outcome::Done("x".into()), Outcome::Done("y".into())],
        ) else {
            panic!("all done must be done")
        };
        assert!(results.iter().all(|r| r.ok));
    }

    #[test]
    fn labels_name_the_workload_and_its_cluster() {
        let t = Target {
            attributes: [
                ("cluster", "https://127.0.0.1:6443"),
                ("namespace", "n"),
                ("kind", "Deployment"),
                ("name", "shop"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..target("a")
        };
        let w = Workload::from_target(&t, "s").unwrap();
        assert_eq!(label(&w), "n/shop (127.0.0.1:6443)");
    }
}
