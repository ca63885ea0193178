//! The README's steps from a template to a release, run exactly as written:
//! the blocks of README.md marked `<!-- tested: template-… -->` make a
//! Python and a JavaScript check with `greenlight plugin new`, build them
//! with the tools each project pins, test, upload and grant them through the
//! CLI, and the checks the README names go into a flow whose releases they
//! gate.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::polyglot::daemon;
use crate::support::releases::{
    CLOCK_START_MS, Recorder, apply_flow, canary_and_rolling_flow, put_inventory,
    release_past_the_bake, start_release, verdicts_of, wait_status,
};
use crate::support::{Daemon, binary};

/// The fenced block after the marker `<!-- tested: NAME` in README.md.
fn readme_block(name: &str) -> String {
    let readme = include_str!("../../README.md");
    let marker = format!("<!-- tested: {name}");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no block marked {marker}"));
    let fence = start + readme[start..].find("```").expect("a fenced block");
    let body = fence + readme[fence..].find('\n').unwrap() + 1;
    let end = body + readme[body..].find("```").expect("the block ends");
    readme[body..end].to_string()
}

/// Runs a block of shell steps in `dir` as a user would, with `greenlight`
/// on the path and the daemon's address and token set; answers what it
/// printed.
async fn run_steps(steps: String, dir: &Path, d: &Daemon) -> String {
    let bin = Path::new(binary()).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let (dir, url, token) = (dir.to_path_buf(), d.base.clone(), d.token.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &steps])
            .current_dir(dir)
            .env("PATH", path)
            .env("GREENLIGHT_URL", url)
            .env("GREENLIGHT_TOKEN", token)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("npm_config_fund", "false")
            .env("npm_config_audit", "false")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the README's steps failed:\n{said}");
    said
}

/// Targets that answer `GET /health` with 200, or 503 once told to.
struct Health {
    addresses: Vec<String>,
    healthy: Arc<AtomicBool>,
}

impl Health {
    async fn start(n: usize) -> Health {
        let healthy = Arc::new(AtomicBool::new(true));
        let mut addresses = Vec::new();
        for _ in 0..n {
            let flag = healthy.clone();
            let app = axum::Router::new().route(
                "/health",
                axum::routing::get(move || {
                    let ok = flag.load(Ordering::Relaxed);
                    async move {
                        match ok {
                            true => StatusCode::OK,
                            false => StatusCode::SERVICE_UNAVAILABLE,
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses.push(listener.local_addr().unwrap().to_string());
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        Health { addresses, healthy }
    }
}

#[tokio::test]
async fn the_readme_takes_python_and_javascript_checks_from_a_template_to_a_release_they_gate() {
    let recorder = Recorder::start().await;
    let health = Health::start(3).await;
    let d = daemon(&format!("manual_clock_ms = {CLOCK_START_MS}")).await;
    d.upload_ok("agent", "fixture_deployer").await;
    d.grant("agent", json!({"allowed_hosts": [recorder.origin()]}))
        .await;
    let targets: Vec<Value> = (health.addresses.iter().enumerate())
        .map(|(i, a)| json!({"id": format!("web-{i}"), "address": a}))
        .collect();
    put_inventory(&d, "shop", "prod", json!({ "targets": targets })).await;

    let scratch = tempfile::tempdir().unwrap();
    for (block, project) in [
        ("template-python", "web-probe"),
        ("template-js", "js-probe"),
    ] {
        let steps = readme_block(block);
        let said = run_steps(steps.clone(), scratch.path(), &d).await;
        // `plugin test` ran the check on the sample input's two targets.
        assert!(said.contains(" ms, 2 HTTP requests)"), "{said}");
        assert!(said.contains(&format!("{project}@0.1.0")), "{said}");
        // The project's own README gives the same steps.
        let own = std::fs::read_to_string(scratch.path().join(project).join("README.md")).unwrap();
        for line in steps.lines().skip(2) {
            assert!(own.contains(line), "{project}/README.md lacks `{line}`");
        }
    }

    let flow_block = readme_block("template-flow");
    let checks: Vec<&str> = flow_block
        .lines()
        .filter(|l| l.starts_with("checks ="))
        .collect();
    assert_eq!(checks.len(), 2, "{flow_block}");
    let flow = canary_and_rolling_flow("probed", &recorder, checks[0], checks[1]);
    apply_flow(&d, &flow).await;

    // Every target healthy: the Python check passes the canary's bake and
    // the JavaScript check every batch.
    let done = release_past_the_bake(&d, "2.0.0", "probed").await;
    let (canary, rollout) = (verdicts_of(&done, "canary"), verdicts_of(&done, "rollout"));
    assert!(
        !canary.is_empty() && canary.iter().all(|v| v["check"] == "web-probe@0.1.0"),
        "{done:#}"
    );
    assert!(
        rollout.len() == 2 && rollout.iter().all(|v| v["check"] == "js-probe@0.1.0"),
        "{done:#}"
    );
    for v in canary.iter().chain(&rollout) {
        assert_eq!(v["status"], "pass", "{v}");
    }

    // The next version leaves the targets unhealthy: the canary's check
    // fails and the release rolls itself back.
    health.healthy.store(false, Ordering::Relaxed);
    let id = start_release(&d, "shop", "prod", "3.0.0", "probed").await;
    let undone = wait_status(&d, &id, "rolled-back").await;
    let failed = &undone["verdicts"][0];
    assert_eq!(
        (&failed["check"], &failed["status"]),
        (&json!("web-probe@0.1.0"), &json!("fail")),
        "{undone:#}"
    );
    let summary = failed["summary"].as_str().unwrap();
    assert!(summary.contains("(HTTP 503)"), "{summary}");
    d.assert_healthy().await;
}

/// Every `sh` block of a Markdown file, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    markdown
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_rust_template_builds_tests_and_uploads_as_its_own_readme_says() {
    let health = Health::start(2).await;
    let d = Daemon::start().await;
    let targets: Vec<Value> = (health.addresses.iter().enumerate())
        .map(|(i, a)| json!({"id": format!("web-{i}"), "address": a}))
        .collect();
    put_inventory(&d, "shop", "prod", json!({ "targets": targets })).await;

    let scratch = tempfile::tempdir().unwrap();
    run_steps(
        "greenlight plugin new rs-probe --lang rust --world check".into(),
        scratch.path(),
        &d,
    )
    .await;
    let project = scratch.path().join("rs-probe");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    assert_eq!(blocks.len(), 3, "{readme}");
    // The toolchain the repository pins, which has the target already; the
    // project itself pins none.
    let channel = include_str!("../../rust-toolchain.toml")
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let mut said = String::new();
    for block in blocks {
        let steps = format!("export RUSTUP_TOOLCHAIN={channel}\n{block}");
        said += &run_steps(steps, &project, &d).await;
    }
    assert!(said.contains(" ms, 2 HTTP requests)"), "{said}");
    assert!(said.contains("rs-probe@0.1.0"), "{said}");

    let body = json!({
        "context": {"application": "shop", "environment": "prod", "version": "2.0.0",
                    "stage": "canary", "parameters": {"path": "/health"}},
        "targets": targets,
    });
    let answer = d.invoke("rs-probe", body.clone()).await;
    let verdict = &answer["output"]["verdict"];
    assert_eq!(verdict["status"], "pass", "{answer:#}");
    assert_eq!(
        verdict["summary"], "2 of 2 targets answered /health",
        "{answer:#}"
    );
    health.healthy.store(false, Ordering::Relaxed);
    let answer = d.invoke("rs-probe", body).await;
    let verdict = &answer["output"]["verdict"];
    assert_eq!(verdict["status"], "fail", "{answer:#}");
    assert!(
        verdict["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 of 2 targets unhealthy: web-0 (HTTP 503)"),
        "{answer:#}"
    );
}
