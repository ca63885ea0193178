//! How soon a large plugin answers after its upload: the Python example
//! check of `examples/python` (about 18 MB, most of it the interpreter),
//! uploaded to a fresh daemon process with no compiled artifacts and invoked
//! at once, on two paths measured in one run, alternating:
//!   (a) optimised at upload (`quick_compile = false`), the path before;
//!   (b) compiled quickly at upload and optimised in the background (the
//!       default).
//! For each it prints the upload time, the first answer (upload to verdict,
//! target: under 3 s on (b)), the time until the optimised code took over,
//! and the median call on quick and on optimised code; then the ratio a/b of
//! the first answers. The check reads a loopback stats endpoint under its
//! grant, as in a release.
//!
//! The component is built by `examples/build-polyglot.sh python` (`./dev
//! test` builds it) when target/polyglot/python.wasm is missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Json;
use serde_json::{Value, json};

mod process;

use process::Daemon;

const ROUNDS: usize = 2;
const CALLS: usize = 15;

struct Figures {
    upload: Duration,
    first_answer: Duration,
    optimised_after: Option<Duration>,
    quick_call: Option<Duration>,
    optimised_call: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn component() -> anyhow::Result<PathBuf> {
    let target = Path::new(env!("GREENLIGHT_PLUGINS_DIR"))
        .ancestors()
        .nth(3)
        .expect("the plugins directory lies inside the target directory")
        .to_path_buf();
    let path = target.join("polyglot").join("python.wasm");
    if !path.exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let status = std::process::Command::new(root.join("examples/build-polyglot.sh"))
            .arg("python")
            .status()?;
        anyhow::ensure!(status.success(), "examples/build-polyglot.sh python failed");
    }
    Ok(path)
}

/// A loopback `GET /stats` answering a healthy service's counters.
async fn stats() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/stats",
        axum::routing::get(|| async { Json(json!({"requests": 1000, "errors": 3})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(origin)
}

/// The API of a daemon, with its admin token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn of(daemon: &Daemon) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: daemon.base.clone(),
            token: daemon.token.clone(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{status}: {body}");
        Ok(body)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn run(bytes: &[u8], origin: &str, quick: bool) -> anyhow::Result<Figures> {
    // A process of its own, so that nothing another path left running
    // (an optimising thread) takes the machine.
    let daemon = Daemon::start(&format!("[plugins]\nquick_compile = {quick}\n"))?;
    let api = &Api::of(&daemon);
    let name = "budget";
    let body = json!({
        "context": {"application": "shop", "environment": "beta", "version": "2.0.0",
                    "stage": "canary",
                    "parameters": {"url": format!("{origin}/stats"), "max_error_rate": "0.05"}},
        "targets": [{"id": "web-1", "address": "127.0.0.1:8080"}],
    });
    let invoke = || async {
        let started = Instant::now();
        let url = api.url(&format!("/api/v1/plugins/{name}/1.0.0/invoke"));
        let answer = api.send(api.http.post(url).json(&body)).await?;
        let status = &answer["output"]["verdict"]["status"];
        anyhow::ensure!(status == "pass", "the check did not pass: {answer}");
        Ok::<_, anyhow::Error>(started.elapsed())
    };

    let started = Instant::now();
    let url = api.url(&format!("/api/v1/plugins?name={name}&version=1.0.0"));
    api.send(api.http.post(url).body(bytes.to_vec())).await?;
    let upload = started.elapsed();
    // The grant takes a few milliseconds; a team grants before uploading.
    let grant = api.url(&format!("/api/v1/plugins/{name}/grant"));
    api.send(
        api.http
            .put(grant)
            .json(&json!({"allowed_hosts": [origin]})),
    )
    .await?;
    invoke().await?;
    let first_answer = started.elapsed();

    let mut quick_calls = Vec::new();
    let mut optimised_after = None;
    if quick {
        // Calls on the quick code while the optimised code compiles.
        loop {
            let counters = api.send(api.http.get(api.url("/api/v1/runtime"))).await?;
            if counters["optimised"] == 1 {
                optimised_after = Some(started.elapsed());
                break;
            }
            if quick_calls.len() < CALLS {
                quick_calls.push(invoke().await?);
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the optimised code never took over: {counters}"
            );
        }
    }
    let mut optimised_calls = Vec::new();
    for _ in 0..CALLS {
        optimised_calls.push(invoke().await?);
    }
    Ok(Figures {
        upload,
        first_answer,
        optimised_after,
        quick_call: (!quick_calls.is_empty()).then(|| median(quick_calls)),
        optimised_call: median(optimised_calls),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print(label: &str, f: &Figures) {
    println!(
        "  {label}: upload {}, first answer {}{}; median call {}{}",
        ms(f.upload),
        ms(f.first_answer),
        f.optimised_after
            .map(|d| format!(", optimised code took over at {}", ms(d)))
            .unwrap_or_default(),
        ms(f.optimised_call),
        f.quick_call
            .map(|d| format!(" (on quick code, while optimising: {})", ms(d)))
            .unwrap_or_default(),
    );
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let path = component()?;
        let bytes = std::fs::read(&path)?;
        println!(
            "first call of {} ({:.1} MiB), {ROUNDS} rounds, each on a fresh daemon:",
            path.display(),
            bytes.len() as f64 / (1024.0 * 1024.0)
        );
        let origin = stats().await?;
        let (mut before, mut now) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            println!("round {round}:");
            let a = if std::env::var("EXP_OPT").is_ok() { run(&bytes, &origin, true).await? } else { run(&bytes, &origin, false).await? };
            print("(a) optimised at upload", &a);
            let b = run(&bytes, &origin, true).await?;
            print("(b) quick, then optimised", &b);
            before.push(a.first_answer);
            now.push(b.first_answer);
        }
        let (a, b) = (median(before), median(now));
        println!(
            "upload to first answer: (a) {}, (b) {}: (b) answers {:.1}x sooner (target: (b) under 3 s)",
            ms(a),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
        Ok(())
    })
}
