//! `http-deployer` takes each target through its agent: drain, deploy,
//! health, enable; a repeated key is recognised and not deployed again.

use serde_json::{Value, json};

use super::agent::agent;
use super::{Journal, context, daemon_with, origin};
use crate::support::Daemon;

async fn call(
    d: &Daemon,
    function: &str,
    key: &str,
    targets: &[(&str, std::net::SocketAddr)],
) -> Vec<Value> {
    let answer = d
        .invoke(
            "deployer",
            json!({
                "function": function,
                "idempotency_key": key,
                "context": context(json!({"health_timeout_ms": "400", "health_interval_ms": "50"})),
                "targets": targets.iter().map(|(id, a)| json!({"id": id, "address": a.to_string()})).collect::<Vec<_>>(),
            }),
        )
        .await;
    answer["output"]["targets"]["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("no target results: {answer}"))
        .clone()
}

fn summary(results: &[Value]) -> Vec<(String, bool, String)> {
    results
        .iter()
        .map(|r| {
            (
                r["target_id"].as_str().unwrap().to_string(),
                r["ok"].as_bool().unwrap(),
                r["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_batch_is_drained_deployed_checked_and_enabled_once_per_key() {
    let journal = Journal::default();
    let (a1, s1) = agent("web-1", None, &journal).await;
    let (a2, s2) = agent("web-2", None, &journal).await;
    let d = daemon_with("deployer", "http_deployer").await;
    d.grant(
        "deployer",
        json!({"allowed_hosts": [origin(a1), origin(a2)]}),
    )
    .await;
    let targets = [("web-1", a1), ("web-2", a2)];

    let results = call(&d, "deploy", "batch-0", &targets).await;
    assert_eq!(
        summary(&results),
        [
            ("web-1".into(), true, "deploy of 2.0.0 done, enabled".into()),
            ("web-2".into(), true, "deploy of 2.0.0 done, enabled".into()),
        ]
    );
    assert_eq!(
        journal.entries(),
        [
            "web-1 drain batch-0:web-1",
            "web-2 drain batch-0:web-2",
            "web-1 deploy 2.0.0",
            "web-2 deploy 2.0.0",
            "web-1 enable",
            "web-2 enable",
        ]
    );
    for s in [&s1, &s2] {
        let a = s.lock().unwrap();
        assert_eq!((a.version.as_str(), a.drained), ("2.0.0", false));
    }

    // The engine retries the same batch attempt: nothing is touched again.
    let again = call(&d, "deploy", "batch-0", &targets).await;
    assert!(
        summary(&again)
            .iter()
            .all(|(_, ok, m)| *ok && m.starts_with("already done for key batch-0:")),
        "{again:?}"
    );
    assert_eq!(journal.entries().len(), 6, "a repeated key redeployed");

    let back = call(&d, "rollback", "undo-0", &targets[..1]).await;
    assert_eq!(
        summary(&back),
        [(
            "web-1".into(),
            true,
            "rollback of 1.0.0 done, enabled".into()
        )]
    );
    assert_eq!(
        journal.entries()[6..],
        [
            "web-1 drain undo-0:web-1",
            "web-1 rollback 1.0.0",
            "web-1 enable"
        ]
    );
    assert_eq!(s1.lock().unwrap().version, "1.0.0");
}

#[tokio::test]
async fn a_retried_key_resumes_after_the_last_step_the_agent_completed() {
    let journal = Journal::default();
    let (a1, s1) = agent("web-1", None, &journal).await;
    let (a2, s2) = agent("web-2", None, &journal).await;
    // The daemon died mid-batch: web-1 was drained and deployed, web-2 only
    // drained, under the key the engine now retries.
    {
        let mut a = s1.lock().unwrap();
        a.version = "2.0.0".into();
        a.drained = true;
        a.progress
            .push(("batch-3:web-1".into(), "deployed".into(), "2.0.0".into()));
    }
    {
        let mut a = s2.lock().unwrap();
        a.drained = true;
        a.progress
            .push(("batch-3:web-2".into(), "drained".into(), "2.0.0".into()));
    }
    let d = daemon_with("deployer", "http_deployer").await;
    d.grant(
        "deployer",
        json!({"allowed_hosts": [origin(a1), origin(a2)]}),
    )
    .await;
    let results = call(&d, "deploy", "batch-3", &[("web-1", a1), ("web-2", a2)]).await;
    assert!(
        summary(&results).iter().all(|(_, ok, _)| *ok),
        "{results:?}"
    );
    assert_eq!(
        journal.entries(),
        ["web-2 deploy 2.0.0", "web-1 enable", "web-2 enable"],
        "a step done before the crash was done again"
    );
}

#[tokio::test]
async fn a_target_that_never_gets_healthy_is_left_drained_and_reported() {
    let journal = Journal::default();
    let (good, _) = agent("web-1", None, &journal).await;
    let (bad, bad_state) = agent("web-2", Some("2.0.0"), &journal).await;
    let d = daemon_with("deployer", "http_deployer").await;
    d.grant(
        "deployer",
        json!({"allowed_hosts": [origin(good), origin(bad)]}),
    )
    .await;
    let results = call(&d, "deploy", "batch-1", &[("web-1", good), ("web-2", bad)]).await;
    let s = summary(&results);
    assert_eq!(
        s[0],
        ("web-1".into(), true, "deploy of 2.0.0 done, enabled".into())
    );
    assert_eq!(
        s[1],
        (
            "web-2".into(),
            false,
            "not healthy on 2.0.0 within 400 ms (unhealthy); left drained".into()
        )
    );
    assert!(!journal.entries().contains(&"web-2 enable".to_string()));
    assert!(bad_state.lock().unwrap().drained);
}

#[tokio::test]
async fn an_unreachable_agent_is_a_retryable_fault_and_no_grant_is_a_clear_denial() {
    let journal = Journal::default();
    let (a1, _) = agent("web-1", None, &journal).await;
    let d = daemon_with("deployer", "http_deployer").await;

    let answer = d
        .invoke(
            "deployer",
            json!({"idempotency_key": "k", "context": context(json!({})),
                   "targets": [{"id": "web-1", "address": a1.to_string()}]}),
        )
        .await;
    assert_eq!(
        crate::support::error_code(&answer),
        "host_denied",
        "{answer}"
    );
    assert!(journal.entries().is_empty());

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    d.grant("deployer", json!({"allowed_hosts": [origin(closed)]}))
        .await;
    // An agent that cannot be reached says nothing of the version: the
    // batch is to be tried again, not failed.
    let answer = d
        .invoke(
            "deployer",
            json!({"idempotency_key": "k", "context": context(json!({})),
                   "targets": [{"id": "web-9", "address": closed.to_string()}]}),
        )
        .await;
    let fault = &answer["output"]["targets"]["fault"];
    assert_eq!(fault["retryable"], true, "{answer}");
    assert_eq!(
        fault["message"],
        "agents unreachable, the batch is to be tried again: \
         web-9: operation lookup: request failed: connection refused; not touched",
        "{answer}"
    );
}
