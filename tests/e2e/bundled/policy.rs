//! `threshold-policy` decides from the observations the engine gives it.

use serde_json::{Value, json};

use super::{context, daemon_with};
use crate::support::Daemon;

fn observation(status: &str, error_rate: f64, batch: u32) -> Value {
    json!({"check": "metrics@1.0.0", "stage": "rollout", "batch": batch, "at_ms": batch,
           "verdict": {"status": status, "summary": "", "metrics": [{"name": "error_rate", "value": error_rate}]}})
}

async fn decide(d: &Daemon, observations: Vec<Value>) -> (String, String) {
    let params = json!({"error_rate.soft": "> 1%", "error_rate.hard": "> 5%", "soft_after": "3"});
    let answer = d
        .invoke(
            "policy",
            json!({"context": context(params), "observations": observations}),
        )
        .await;
    let decision = &answer["output"]["decision"];
    assert!(decision.is_object(), "{answer}");
    (
        decision["kind"].as_str().unwrap().to_string(),
        decision["reason"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn hard_breaches_roll_back_and_soft_ones_pause_only_when_they_persist() {
    let d = daemon_with("policy", "threshold_policy").await;

    let (kind, reason) = decide(&d, vec![observation("pass", 0.001, 0)]).await;
    assert_eq!(kind, "proceed", "{reason}");

    let soft = |b| observation("pass", 0.02, b);
    let (kind, reason) = decide(&d, vec![soft(0), soft(1)]).await;
    assert_eq!(kind, "proceed");
    assert_eq!(
        reason,
        "within hysteresis: metrics@1.0.0 error_rate 0.02 > 0.01 (2 of 3 before a pause)"
    );
    let (kind, reason) = decide(&d, vec![soft(0), soft(1), soft(2)]).await;
    assert_eq!(kind, "pause");
    assert_eq!(
        reason,
        "soft breach: metrics@1.0.0 error_rate 0.02 > 0.01 at stage rollout batch 3 (3 in a row, pause after 3)"
    );

    let (kind, reason) = decide(&d, vec![soft(0), observation("pass", 0.07, 1)]).await;
    assert_eq!(kind, "rollback");
    assert_eq!(
        reason,
        "hard breach: metrics@1.0.0 error_rate 0.07 > 0.05 at stage rollout batch 2 (1 in a row, rollback after 1)"
    );
    let (kind, _) = decide(&d, vec![observation("fail", 0.0, 0)]).await;
    assert_eq!(kind, "rollback");
}

#[tokio::test]
async fn a_misconfigured_policy_pauses_the_release_with_the_reason() {
    let d = daemon_with("policy", "threshold_policy").await;
    let answer = d
        .invoke(
            "policy",
            json!({"context": context(json!({"error_rate.hard": "high"})),
                   "observations": [observation("pass", 0.5, 0)]}),
        )
        .await;
    let decision = &answer["output"]["decision"];
    assert_eq!(decision["kind"], "pause", "{answer}");
    assert_eq!(
        decision["reason"],
        "the policy could not decide: parameter `error_rate.hard`: `high` is not valid (expected `[>|>=|<|<=] NUMBER[%]`, got `high`)"
    );
}
