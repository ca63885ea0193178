//! The release page in a real headless Chromium: how long the page of a
//! release over 1,000 targets takes to render and become interactive,
//! against the same page for 10 targets, in the same run. Each load is
//! timed inside the page from navigation start until every target is drawn
//! and the approve button is there; loads of the two sizes alternate so
//! machine noise hits both alike. Needs `chromium` and `chromedriver`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use greenlight::config::Config;
use greenlight::server::{ADMIN_TOKEN_FILE, Daemon};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const ROUNDS: usize = 7;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("GREENLIGHT_PLUGINS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let daemon = Daemon::start(Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: scratch.path().join("data"),
        manual_clock_ms: Some(1_800_000_000_000),
        ..Config::default()
    })
    .await?;
    let base = format!("http://{}", daemon.addr);
    let token = std::fs::read_to_string(scratch.path().join("data").join(ADMIN_TOKEN_FILE))?
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(&token)
    };
    send(
        api(
            reqwest::Method::POST,
            "/api/v1/plugins?name=agent&version=1.0.0",
        )
        .body(fixture("fixture_deployer")),
    )
    .await?;
    // The release waits at its first stage, a gate, with its rollout
    // planned over every target: the page draws them all.
    let flow = r#"
name = "gated"
version = 1

[[stages]]
name = "go-ahead"
kind = "approval"

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "agent" }
batch = "10%"
"#;
    send(
        api(reqwest::Method::POST, "/api/v1/flows")
            .header("content-type", "application/toml")
            .body(flow),
    )
    .await?;
    let mut ids = Vec::new();
    for n in [10usize, 1000] {
        let targets: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("web-{i}"), "address": format!("10.0.{}.{}:80", i / 250, i % 250)}))
            .collect();
        let app = format!("shop{n}");
        send(
            api(
                reqwest::Method::PUT,
                &format!("/api/v1/apps/{app}/envs/prod"),
            )
            .json(&json!({ "targets": targets })),
        )
        .await?;
        let started = send(api(reqwest::Method::POST, "/api/v1/releases").json(&json!({
            "application": app, "environment": "prod", "version": "2.0.0", "flow": "gated"
        })))
        .await?;
        ids.push((n, started["id"].as_str().unwrap_or_default().to_string()));
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut driver = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(driver.stdout.take().expect("stdout")).lines();
    while let Some(line) = lines.next_line().await? {
        if line.contains("started successfully") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let profile = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-dev-shm-usage", "--window-size=1366,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    client.goto(&format!("{base}/")).await?;
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#token"))
        .await?
        .send_keys(&token)
        .await?;
    client
        .find(Locator::Css("#sign-in-button"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#who-name"))
        .await?;

    let mut times: Vec<(usize, Vec<f64>)> = ids.iter().map(|(n, _)| (*n, Vec::new())).collect();
    for _ in 0..ROUNDS {
        for (k, (n, id)) in ids.iter().enumerate() {
            // A fresh document each time: the timer starts at navigation.
            client.goto("about:blank").await?;
            client.goto(&format!("{base}/#/releases/{id}")).await?;
            let ms = client
                .execute_async(
                    r##"
                    const [n, done] = arguments;
                    const ready = () => document.querySelectorAll("[data-target]").length === n
                        && document.querySelector("#approve");
                    if (ready()) return done(performance.now());
                    const o = new MutationObserver(() => {
                        if (ready()) { o.disconnect(); done(performance.now()); }
                    });
                    o.observe(document, { subtree: true, childList: true });
                    "##,
                    vec![json!(n)],
                )
                .await?;
            times[k].1.push(ms.as_f64().unwrap_or(f64::NAN));
        }
    }
    let _ = client.close().await;
    let _ = driver.kill().await;

    println!(
        "Release page load (navigation to every target drawn and approve ready), median of {ROUNDS}"
    );
    let small = median(times[0].1.clone());
    for (n, t) in &times {
        println!("  {n:>5} targets: {:>8.1} ms", median(t.clone()));
    }
    let large = median(times[1].1.clone());
    println!("  ratio 1000 / 10 targets: {:.2}", large / small);
    daemon.stop().await
}
