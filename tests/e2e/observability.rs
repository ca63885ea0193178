//! Readiness and metrics of a daemon that has run a release.

use serde_json::json;

use crate::support::releases::{
    Recorder, advance, apply_flow, command, put_environment, release_daemon, standard_flow,
    start_release, wait_for, wait_status,
};

#[tokio::test]
async fn metrics_count_invocations_stages_and_releases() {
    let recorder = Recorder::start().await;
    let d = release_daemon(&recorder).await;
    let (status, ready) = d.send(d.request(reqwest::Method::GET, "/readyz")).await;
    assert_eq!(
        (status, ready),
        (200, json!({"store": "ok", "engine": "running"}))
    );

    apply_flow(&d, &standard_flow(&recorder)).await;
    put_environment(&d, "shop", "prod", 4, &[]).await;
    let id = start_release(&d, "shop", "prod", "2.0.0", "standard").await;
    wait_for(&d, &id, "the bake", |r| !r["next_check_ms"].is_null()).await;
    advance(&d, 600_000).await;
    wait_status(&d, &id, "waiting-approval").await;
    let scrape = || async {
        let response = d
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    };
    let text = scrape().await;
    assert!(text.contains("greenlight_approvals_waiting 1"), "{text}");
    command(&d, &id, "approve", json!({})).await;
    wait_status(&d, &id, "succeeded").await;

    let text = scrape().await;
    for needle in [
        "greenlight_plugin_invocations_total{plugin=\"agent\",outcome=\"ok\"} 4",
        "greenlight_plugin_invocations_total{plugin=\"lint\",outcome=\"ok\"} 1",
        "greenlight_plugin_invocation_seconds_count{plugin=\"health\"}",
        "greenlight_stage_seconds_count{kind=\"deploy\"} 2",
        "greenlight_stage_seconds_count{kind=\"approval\"} 1",
        "greenlight_releases{status=\"succeeded\"} 1",
        "greenlight_approvals_waiting 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let anonymous = reqwest::get(d.url("/metrics")).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

/// Each thread of a process, as its name and nice value, from `/proc`.
fn threads(pid: u32) -> Vec<(u32, String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `tid (name) state ppid …`: the name may hold spaces, so fields
        // are counted from its closing parenthesis; nice is the 19th.
        let (head, rest) = stat.rsplit_once(')').unwrap();
        let name = head.split_once('(').unwrap().1.to_string();
        let nice = rest.split_whitespace().nth(16).unwrap().parse().unwrap();
        let tid = task.file_name().to_str().unwrap().parse().unwrap();
        out.push((tid, name, nice));
    }
    out
}

/// Release work yields the processor to API requests: the release threads
/// run at the configured nice value, the daemon's own threads at its own.
#[tokio::test]
async fn release_threads_run_behind_the_api() {
    let d = crate::support::Daemon::start_with_config("engine_nice = 7\n").await;
    let (status, _) = d.send(d.request(reqwest::Method::GET, "/readyz")).await;
    assert_eq!(status, 200);
    let own_threads = threads(std::process::id());
    let threads = threads(d.pid());
    let engine: Vec<_> = threads
        .iter()
        .filter(|(_, name, _)| name.starts_with("greenlight-engi"))
        .collect();
    assert!(!engine.is_empty(), "no release threads among {threads:?}");
    assert!(engine.iter().all(|(_, _, nice)| *nice == 7), "{engine:?}");
    // The daemon's own threads keep the nice value it was started with
    // (this test process's: a niced test run starts a niced daemon).
    let own = own_threads;
    let inherited = own.iter().find(|(tid, _, _)| *tid == std::process::id());
    let main = threads.iter().find(|(tid, _, _)| *tid == d.pid());
    assert_eq!(main.map(|t| t.2), inherited.map(|t| t.2), "{threads:?}");
}
