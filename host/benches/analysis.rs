//! What canary analysis costs per check round against the time its queries
//! take, measured in one run. For each size of a round (samples per series,
//! baseline series), a metrics store on loopback answers Prometheus's
//! `query_range` with that many samples, and each round measures:
//!   (q) the round's queries alone, sent straight from the host (one canary
//!       and one baseline query per metric, three metrics);
//!   (r) the whole check round: `canary-judge` invoked through Greenlight's
//!       full path (registry, grant, wasmtime, the plugin's own HTTP, the
//!       Mann–Whitney tests, the verdict and its evidence).
//! Prints medians of both, the judge's own cost r − q and its ratio to q.
//! Rounds interleave the two so machine noise hits them alike.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::routing::get;
use greenlight::clock::SystemClock;
use greenlight::domain::grant::{Grant, Origin};
use greenlight::domain::plugin::{Call, Output, ReleaseContext, Target, VerdictStatus};
use greenlight::plugins::{Options, Runtime};
use greenlight::registry::{Publisher, Registry};
use greenlight::store::Store;
use serde_json::{Value, json};

const ROUNDS: usize = 15;
const METRICS: [&str; 3] = ["latency", "errors", "saturation"];

/// Samples per series and baseline series of each measured round: a short
/// canary window, an hour at a 10 s step against one baseline, and against
/// ten and thirty baseline instances.
const SIZES: [(usize, usize); 4] = [(30, 1), (360, 1), (360, 10), (360, 30)];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A Prometheus `query_range` answer for a query naming its `series`,
/// `points` and `side` as labels: noisy values, the canary's 3% higher.
fn answer(query: &str) -> Value {
    let label = |name: &str| -> Option<&str> {
        let at = query.find(&format!("{name}=\""))? + name.len() + 2;
        query[at..].split('"').next()
    };
    let number = |name: &str| {
        label(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
    };
    let (series, points) = (number("series"), number("points"));
    let level = if label("side") == Some("canary") {
        10.3
    } else {
        10.0
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ (series * 31 + points) as u64;
    let result: Vec<Value> = (0..series)
        .map(|s| {
            let values: Vec<Value> = (0..points)
                .map(|p| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                    json!([1_700_000_000 + 10 * p, format!("{:.4}", level + noise)])
                })
                .collect();
            json!({"metric": {"instance": format!("web-{s}")}, "values": values})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
}

async fn store() -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/api/v1/query_range",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            axum::Json(answer(q.get("query").map(String::as_str).unwrap_or("")))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn query(side: &str, metric: &str, series: usize, points: usize) -> String {
    format!("{metric}{{side=\"{side}\",series=\"{series}\",points=\"{points}\"}}")
}

/// The judge's parameters for one size of round.
fn context(url: &str, series: usize, points: usize) -> ReleaseContext {
    let mut parameters = vec![
        ("url".to_string(), url.to_string()),
        ("metrics".to_string(), METRICS.join(",")),
        ("step".to_string(), "10s".to_string()),
    ];
    for m in METRICS {
        parameters.push((format!("{m}.canary"), query("canary", m, 1, points)));
        parameters.push((
            format!("{m}.baseline"),
            query("baseline", m, series, points),
        ));
        parameters.push((format!("{m}.allowed"), "10%".to_string()));
    }
    ReleaseContext {
        release_id: "bench".into(),
        application: "shop".into(),
        environment: "prod".into(),
        version: "2.0.0".into(),
        previous_version: Some("1.0.0".into()),
        stage: "canary".into(),
        batch: Some(0),
        attempt: 1,
        parameters,
        deployed_at_ms: Some(1_700_000_000_000),
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let addr = store().await?;
    let url = format!("http://{addr}");
    let scratch = tempfile::tempdir()?;
    let store = Store::open(scratch.path())?;
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::new(Options::default(), Arc::new(store.clone()), clock.clone())?;
    let registry = Registry::new(store, runtime, clock);
    let wasm = std::fs::read(format!(
        "{}/canary_judge.wasm",
        env!("GREENLIGHT_PLUGINS_DIR")
    ))?;
    registry
        .upload("judge", "1.0.0", wasm, Publisher::admin("bench"))
        .await?;
    registry.set_grant(
        "judge",
        Grant {
            allowed_hosts: vec![Origin::parse(&url).map_err(anyhow::Error::msg)?],
            ..Grant::default()
        },
    )?;
    let http = reqwest::Client::new();
    let targets = vec![Target {
        id: "web-0".into(),
        address: "127.0.0.1:1".into(),
        ..Default::default()
    }];

    println!(
        "canary analysis per check round ({} metrics, canary and baseline queries each), medians over {ROUNDS} rounds:",
        METRICS.len()
    );
    println!(
        "  {:<26}{:>12}{:>12}{:>14}{:>10}",
        "samples canary vs baseline", "(q) queries", "(r) round", "judge r - q", "(r-q)/q"
    );
    for (points, series) in SIZES {
        let ctx = context(&url, series, points);
        let call = || Call::Verify {
            ctx: ctx.clone(),
            targets: targets.clone(),
        };
        // Warm up, and check the judge reads every sample.
        let first = registry.invoke("judge", "1.0.0", call()).await??;
        let Output::Verdict(verdict) = first.output else {
            anyhow::bail!("canary-judge answered {:?}", first.output);
        };
        anyhow::ensure!(
            verdict.status != VerdictStatus::Error,
            "canary-judge failed: {}",
            verdict.summary
        );
        let latency = verdict
            .metrics
            .iter()
            .find(|m| m.name == "latency")
            .ok_or_else(|| anyhow::anyhow!("no latency in {verdict:?}"))?;
        anyhow::ensure!(
            latency.samples == Some(points as u64)
                && latency.baseline_samples == Some((points * series) as u64),
            "the judge saw {:?} vs {:?} samples",
            latency.samples,
            latency.baseline_samples
        );

        let (mut q, mut r) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for m in METRICS {
                for (side, n) in [("canary", 1), ("baseline", series)] {
                    let body: Value = http
                        .get(format!("{url}/api/v1/query_range"))
                        .query(&[
                            ("query", query(side, m, n, points).as_str()),
                            ("start", "1700000000"),
                            ("end", "1700003600"),
                            ("step", "10"),
                        ])
                        .send()
                        .await?
                        .json()
                        .await?;
                    anyhow::ensure!(body["status"] == "success");
                }
            }
            q.push(t.elapsed());
            let t = Instant::now();
            registry.invoke("judge", "1.0.0", call()).await??;
            r.push(t.elapsed());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (q, r) = (ms(median(q)), ms(median(r)));
        println!(
            "  {:<26}{:>9.2} ms{:>9.2} ms{:>11.2} ms{:>10.2}",
            format!("{points} vs {}", points * series),
            q,
            r,
            r - q,
            (r - q) / q
        );
    }
    Ok(())
}
