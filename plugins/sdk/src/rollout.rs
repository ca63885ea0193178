//! Kubernetes' own rollout rules, as `kubectl rollout status` applies them,
//! for a Deployment, a StatefulSet or a DaemonSet read from the API server
//! as JSON: whether the rollout of its current generation is done, still
//! progressing (with a note saying how far), or has failed (with the
//! reason). Deployers and checks for Kubernetes read workloads and ask
//! this, so every plugin judges a rollout the way the cluster's own tools
//! do.

use serde_json::Value;

/// Where a workload's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica runs the current pod template and is available.
    Done(String),
    /// Still on its way; the note says how far ("3 of 10 updated replicas
    /// are available").
    Progressing(String),
    /// It will not finish by itself: the reason says why (the progress
    /// deadline passed, or the workload cannot be followed this way).
    Failed(String),
}

/// The rollout state of a workload object (`kind` is read from it).
pub fn status(workload: &Value) -> Rollout {
    let kind = workload["kind"].as_str().unwrap_or_default();
    let name = workload["metadata"]["name"].as_str().unwrap_or("?");
    match kind {
        "Deployment" => deployment(workload, name),
        "StatefulSet" => stateful_set(workload, name),
        "DaemonSet" => daemon_set(workload, name),
        other => Rollout::Failed(format!(
            "`{other}` is not a workload whose rollout can be followed: use a Deployment, \
             StatefulSet or DaemonSet"
        )),
    }
}

/// A number in the object, zero when absent (the API server leaves zero
/// counts out).
fn count(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// Whether the controller has seen the object's current generation; until
/// then its status describes an older spec.
fn observed(workload: &Value) -> bool {
    let generation = count(&workload["metadata"]["generation"]);
    let observed = &workload["status"]["observedGeneration"];
    observed.is_i64() && generation <= count(observed)
}

fn waiting_for_the_controller(kind: &str, name: &str) -> Rollout {
    Rollout::Progressing(format!(
        "waiting for the {kind} controller to see {name}'s new spec"
    ))
}

fn deployment(d: &Value, name: &str) -> Rollout {
    if !observed(d) {
        return waiting_for_the_controller("deployment", name);
    }
    let status = &d["status"];
    let deadline_passed = status["conditions"].as_array().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
    });
    if deadline_passed {
        return Rollout::Failed(format!("deployment {name} exceeded its progress deadline"));
    }
    let wanted = &d["spec"]["replicas"];
    let updated = count(&status["updatedReplicas"]);
    if wanted.is_i64() && updated < count(wanted) {
        return Rollout::Progressing(format!(
            "{updated} of {} new replicas have been updated",
            count(wanted)
        ));
    }
    let replicas = count(&status["replicas"]);
    if replicas > updated {
        return Rollout::Progressing(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    let available = count(&status["availableReplicas"]);
    if available < updated {
        return Rollout::Progressing(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Rollout::Done(format!("deployment {name} successfully rolled out"))
}

fn stateful_set(s: &Value, name: &str) -> Rollout {
    let strategy = s["spec"]["updateStrategy"]["type"]
        .as_str()
        .unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return Rollout::Failed(format!(
            "statefulset {name} updates by {strategy}; a rollout can be followed only with RollingUpdate"
        ));
    }
    if count(&s["status"]["observedGeneration"]) == 0 || !observed(s) {
        return waiting_for_the_controller("statefulset", name);
    }
    let status = &s["status"];
    let wanted = &s["spec"]["replicas"];
    let ready = count(&status["readyReplicas"]);
    if wanted.is_i64() && ready < count(wanted) {
        return Rollout::Progressing(format!("{ready} of {} pods are ready", count(wanted)));
    }
    let partition = &s["spec"]["updateStrategy"]["rollingUpdate"]["partition"];
    if partition.is_i64() && wanted.is_i64() {
        let due = count(wanted) - count(partition);
        let updated = count(&status["updatedReplicas"]);
        if updated < due {
            return Rollout::Progressing(format!(
                "partitioned rollout: {updated} of {due} new pods have been updated"
            ));
        }
        return Rollout::Done(format!(
            "statefulset {name}: partitioned rollout complete, {updated} new pods updated"
        ));
    }
    let current = status["currentRevision"].as_str().unwrap_or_default();
    let update = status["updateRevision"].as_str().unwrap_or_default();
    if update != current {
        return Rollout::Progressing(format!(
            "{} pods at revision {update}, waiting for the rest",
            count(&status["updatedReplicas"])
        ));
    }
    Rollout::Done(format!(
        "statefulset {name}: rolling update complete, {} pods at revision {current}",
        count(&status["currentReplicas"])
    ))
}

fn daemon_set(d: &Value, name: &str) -> Rollout {
    let strategy = d["spec"]["updateStrategy"]["type"]
        .as_str()
        .unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return Rollout::Failed(format!(
            "daemonset {name} updates by {strategy}; a rollout can be followed only with RollingUpdate"
        ));
    }
    if !observed(d) {
        return waiting_for_the_controller("daemonset", name);
    }
    let status = &d["status"];
    let desired = count(&status["desiredNumberScheduled"]);
    let updated = count(&status["updatedNumberScheduled"]);
    if updated < desired {
        return Rollout::Progressing(format!("{updated} of {desired} new pods have been updated"));
    }
    let available = count(&status["numberAvailable"]);
    if available < desired {
        return Rollout::Progressing(format!(
            "{available} of {desired} updated pods are available"
        ));
    }
    Rollout::Done(format!("daemonset {name} successfully rolled out"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(generation: i64, observed: i64, replicas: i64, status: Value) -> Value {
        let mut status = status;
        status["observedGeneration"] = json!(observed);
        json!({
            "kind": "Deployment",
            "metadata": {"name": "shop", "generation": generation},
            "spec": {"replicas": replicas},
            "status": status,
        })
    }

    #[test]
    fn a_deployment_follows_kubectls_order_of_questions() {
        let progressing = |d: &Value| match status(d) {
            Rollout::Progressing(note) => note,
            other => panic!("{other:?}"),
        };
        // The controller has not seen the new spec: nothing else counts.
        let d = deployment(
            3,
            2,
            10,
            json!({"updatedReplicas": 10, "replicas": 10, "availableReplicas": 10}),
        );
        assert!(progressing(&d).contains("new spec"));
        let d = deployment(
            3,
            3,
            10,
            json!({"updatedReplicas": 3, "replicas": 12, "availableReplicas": 8}),
        );
        assert_eq!(progressing(&d), "3 of 10 new replicas have been updated");
        let d = deployment(
            3,
            3,
            10,
            json!({"updatedReplicas": 10, "replicas": 12, "availableReplicas": 9}),
        );
        assert_eq!(progressing(&d), "2 old replicas are pending termination");
        let d = deployment(
            3,
            3,
            10,
            json!({"updatedReplicas": 10, "replicas": 10, "availableReplicas": 7}),
        );
        assert_eq!(progressing(&d), "7 of 10 updated replicas are available");
        let d = deployment(
            3,
            3,
            10,
            json!({"updatedReplicas": 10, "replicas": 10, "availableReplicas": 10}),
        );
        assert_eq!(
            status(&d),
            Rollout::Done("deployment shop successfully rolled out".into())
        );
    }

    #[test]
    fn a_passed_progress_deadline_fails_whatever_the_counts() {
        let d = deployment(
            4,
            4,
            10,
            json!({
                "updatedReplicas": 5, "replicas": 10, "availableReplicas": 5,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ]
            }),
        );
        assert_eq!(
            status(&d),
            Rollout::Failed("deployment shop exceeded its progress deadline".into())
        );
    }

    #[test]
    fn zero_counts_left_out_by_the_api_server_read_as_zero() {
        let d = deployment(1, 1, 3, json!({}));
        assert_eq!(
            status(&d),
            Rollout::Progressing("0 of 3 new replicas have been updated".into())
        );
    }

    #[test]
    fn a_stateful_set_waits_for_ready_pods_then_the_update_revision() {
        let set = |status: Value, strategy: Value| {
            json!({
                "kind": "StatefulSet",
                "metadata": {"name": "db", "generation": 2},
                "spec": {"replicas": 3, "updateStrategy": strategy},
                "status": status,
            })
        };
        let rolling = json!({"type": "RollingUpdate"});
        let s = set(
            json!({"observedGeneration": 2, "readyReplicas": 2}),
            rolling.clone(),
        );
        assert_eq!(
            status(&s),
            Rollout::Progressing("2 of 3 pods are ready".into())
        );
        let s = set(
            json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1,
                   "currentRevision": "db-a", "updateRevision": "db-b"}),
            rolling.clone(),
        );
        assert_eq!(
            status(&s),
            Rollout::Progressing("1 pods at revision db-b, waiting for the rest".into())
        );
        let s = set(
            json!({"observedGeneration": 2, "readyReplicas": 3, "currentReplicas": 3,
                   "currentRevision": "db-b", "updateRevision": "db-b"}),
            rolling,
        );
        assert!(matches!(status(&s), Rollout::Done(_)), "{:?}", status(&s));
        let s = set(
            json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1}),
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}),
        );
        assert_eq!(
            status(&s),
            Rollout::Progressing("partitioned rollout: 1 of 2 new pods have been updated".into())
        );
        let s = set(
            json!({"observedGeneration": 2}),
            json!({"type": "OnDelete"}),
        );
        assert!(matches!(status(&s), Rollout::Failed(_)), "{:?}", status(&s));
    }

    #[test]
    fn a_daemon_set_counts_scheduled_updated_and_available_pods() {
        let set = |status: Value| {
            json!({
                "kind": "DaemonSet",
                "metadata": {"name": "agent", "generation": 5},
                "spec": {"updateStrategy": {"type": "RollingUpdate"}},
                "status": status,
            })
        };
        let d = set(
            json!({"observedGeneration": 5, "desiredNumberScheduled": 4, "updatedNumberScheduled": 2}),
        );
        assert_eq!(
            status(&d),
            Rollout::Progressing("2 of 4 new pods have been updated".into())
        );
        let d = set(json!({"observedGeneration": 5, "desiredNumberScheduled": 4,
                           "updatedNumberScheduled": 4, "numberAvailable": 3}));
        assert_eq!(
            status(&d),
            Rollout::Progressing("3 of 4 updated pods are available".into())
        );
        let d = set(json!({"observedGeneration": 5, "desiredNumberScheduled": 4,
                           "updatedNumberScheduled": 4, "numberAvailable": 4}));
        assert!(matches!(status(&d), Rollout::Done(_)));
        let d = set(json!({"observedGeneration": 4, "desiredNumberScheduled": 4}));
        assert!(matches!(status(&d), Rollout::Progressing(note) if note.contains("new spec")));
    }

    #[test]
    fn other_kinds_are_refused_by_name() {
        let job = json!({"kind": "Job", "metadata": {"name": "once"}});
        assert!(matches!(status(&job), Rollout::Failed(reason) if reason.contains("`Job`")));
    }
}
