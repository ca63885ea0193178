//! What is wrong with a workload's pods, read from the API server's pod
//! list as JSON: pods that crash (CrashLoopBackOff, restarts), cannot pull
//! their image, cannot be scheduled, or are not ready. A check for
//! Kubernetes names each pod and its reason, so a release manager sees why
//! a batch failed without opening a terminal.

use serde_json::Value;

/// One thing wrong with one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// The pod's name.
    pub pod: String,
    /// What is wrong, in words (`container web: CrashLoopBackOff (back-off
    /// restarting failed container)`).
    pub problem: String,
    /// Whether it will not mend by waiting: a crash loop, an image that
    /// cannot be pulled, a pod that cannot be scheduled. A pod that is
    /// merely not ready yet may still become ready.
    pub fatal: bool,
}

/// Container waiting reasons that do not mend by waiting.
const FATAL_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The problems of every pod in a `PodList` (or a JSON array of pods),
/// counting a container that restarted more than `max_restarts` times as
/// one. Pods that are terminating are left out: they are on their way out.
pub fn problems(pods: &Value, max_restarts: i64) -> Vec<PodProblem> {
    let items = pods["items"].as_array().or_else(|| pods.as_array());
    items
        .into_iter()
        .flatten()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .flat_map(|pod| pod_problems(pod, max_restarts))
        .collect()
}

fn pod_problems(pod: &Value, max_restarts: i64) -> Vec<PodProblem> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let problem = |problem: String, fatal: bool| PodProblem {
        pod: name.clone(),
        problem,
        fatal,
    };
    let status = &pod["status"];
    let conditions = status["conditions"].as_array();
    let condition = |kind: &str| conditions.into_iter().flatten().find(|c| c["type"] == kind);
    if let Some(c) = condition("PodScheduled")
        && c["status"] == "False"
    {
        let reason = c["reason"].as_str().unwrap_or("Unschedulable");
        let message = c["message"].as_str().unwrap_or_default();
        return vec![problem(
            format!("not scheduled: {reason} ({message})"),
            true,
        )];
    }
    if status["phase"] == "Failed" {
        let reason = status["reason"].as_str().unwrap_or("Failed");
        return vec![problem(format!("failed: {reason}"), true)];
    }
    let mut found = Vec::new();
    let containers = status["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(status["containerStatuses"].as_array().into_iter().flatten());
    for c in containers {
        let container = c["name"].as_str().unwrap_or("?");
        if let Some(waiting) = c["state"]["waiting"].as_object() {
            let reason = waiting
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("waiting");
            if FATAL_WAITING.contains(&reason) {
                let message = waiting
                    .get("message")
                    .and_then(Value::as_str)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                found.push(problem(
                    format!("container {container}: {reason}{message}"),
                    true,
                ));
                continue;
            }
        }
        let restarts = c["restartCount"].as_i64().unwrap_or(0);
        if restarts > max_restarts {
            found.push(problem(
                format!("container {container} restarted {restarts} times"),
                true,
            ));
        }
    }
    if found.is_empty()
        && let Some(c) = condition("Ready")
        && c["status"] != "True"
    {
        let reason = c["reason"].as_str().unwrap_or("NotReady");
        found.push(problem(format!("not ready: {reason}"), false));
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, status: Value) -> Value {
        json!({"metadata": {"name": name}, "status": status})
    }

    fn ready() -> Value {
        json!({"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"}
        ], "containerStatuses": [{"name": "web", "restartCount": 0, "state": {"running": {}}}]})
    }

    #[test]
    fn healthy_pods_have_no_problem() {
        let list = json!({"items": [pod("web-1", ready()), pod("web-2", ready())]});
        assert_eq!(problems(&list, 0), vec![]);
    }

    #[test]
    fn crash_loops_and_image_pulls_are_fatal_and_named() {
        let crashing = pod(
            "web-1",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                   "containerStatuses": [{"name": "web", "restartCount": 4,
                       "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]}),
        );
        let pulling = pod(
            "web-2",
            json!({"phase": "Pending", "containerStatuses": [{"name": "web", "restartCount": 0,
                   "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
        );
        let found = problems(&json!({"items": [crashing, pulling]}), 10);
        assert_eq!(
            found,
            vec![
                PodProblem {
                    pod: "web-1".into(),
                    problem:
                        "container web: CrashLoopBackOff (back-off 40s restarting failed container)"
                            .into(),
                    fatal: true,
                },
                PodProblem {
                    pod: "web-2".into(),
                    problem: "container web: ImagePullBackOff".into(),
                    fatal: true,
                },
            ]
        );
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let p = pod(
            "web-3",
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                   "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        );
        let found = problems(&json!([p]), 0);
        assert_eq!(found.len(), 1);
        assert!(found[0].fatal);
        assert_eq!(
            found[0].problem,
            "not scheduled: Unschedulable (0/3 nodes are available: 3 Insufficient cpu.)"
        );
    }

    #[test]
    fn restarts_past_the_limit_are_fatal_and_not_ready_is_not() {
        let mut restarting = ready();
        restarting["containerStatuses"][0]["restartCount"] = json!(3);
        let unready = json!({"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
        ], "containerStatuses": [{"name": "web", "restartCount": 0, "state": {"running": {}}}]});
        let list = json!({"items": [pod("a", restarting), pod("b", unready)]});
        let found = problems(&list, 2);
        assert_eq!(found[0].problem, "container web restarted 3 times");
        assert!(found[0].fatal);
        assert_eq!(found[1].problem, "not ready: ContainersNotReady");
        assert!(!found[1].fatal);
        assert_eq!(
            problems(&list, 5).len(),
            1,
            "three restarts are within five"
        );
    }

    #[test]
    fn terminating_pods_are_left_out() {
        let mut going = pod(
            "old",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
        );
        going["metadata"]["deletionTimestamp"] = json!("2026-12-07T00:00:00Z");
        assert_eq!(problems(&json!({"items": [going]}), 0), vec![]);
    }
}
