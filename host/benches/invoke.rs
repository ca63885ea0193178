//! Invocation overhead, measured in one run on the same healthy `check`
//! component:
//!   (a) bare wasmtime: pooled allocator, pre-linked instance, fresh store, call;
//!   (b) Greenlight's full path: version and grant lookup, limits, host
//!       context, call, result decoding and validation;
//!   (c) spawning `/bin/true` per check, the cost of the process-per-check
//!       model plugins replace.
//! Prints medians and the ratios b/a (target ≤ 1.5) and c/b (target ≥ 20),
//! and c/a, the most c/b can be: the full path includes bare wasmtime.
//! Rounds interleave the three so machine noise hits them alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlight::clock::SystemClock;
use greenlight::domain::plugin::{Call, ReleaseContext, Target, VerdictStatus};
use greenlight::plugins::baseline::RawCheck;
use greenlight::plugins::{Options, Runtime};
use greenlight::registry::Registry;
use greenlight::store::Store;

const ROUNDS: usize = 20;
const PER_ROUND: usize = 200;
const SPAWNS_PER_ROUND: usize = 20;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn context() -> ReleaseContext {
    ReleaseContext {
        release_id: "bench".into(),
        application: "shop".into(),
        environment: "beta".into(),
        version: "2.0.0".into(),
        stage: "verify".into(),
        attempt: 1,
        // `fail` mode touches no host import, so the bare baseline can run it.
        parameters: vec![("mode".into(), "fail".into())],
        ..Default::default()
    }
}

fn targets() -> Vec<Target> {
    (0..3)
        .map(|i| Target {
            id: format!("web-{i}"),
            address: format!("127.0.0.1:{}", 8000 + i),
            ..Default::default()
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let bytes = std::fs::read(concat!(
        env!("GREENLIGHT_PLUGINS_DIR"),
        "/fixture_check.wasm"
    ))?;
    let scratch = tempfile::tempdir()?;
    let store = Store::open(scratch.path())?;
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::new(Options::default(), Arc::new(store.clone()), clock.clone())?;
    let registry = Registry::new(store, runtime.clone(), clock);
    registry
        .upload("probe", "1.0.0", bytes.clone(), "bench")
        .await?;
    let raw = RawCheck::new(&runtime, &bytes)?;
    let (ctx, targets) = (context(), targets());

    // Warm both paths and check they answer the same.
    let raw_verdict = raw.verify(&ctx, &targets).await?;
    assert_eq!(raw_verdict.status, VerdictStatus::Fail);
    let call = || Call::Verify {
        ctx: ctx.clone(),
        targets: targets.clone(),
    };
    let full = registry.invoke("probe", "1.0.0", call()).await??;
    assert!(
        matches!(full.output, greenlight::domain::plugin::Output::Verdict(ref v) if *v == raw_verdict)
    );

    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            raw.verify(&ctx, &targets).await?;
            a.push(t.elapsed());
        }
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            registry.invoke("probe", "1.0.0", call()).await??;
            b.push(t.elapsed());
        }
        for _ in 0..SPAWNS_PER_ROUND {
            let t = Instant::now();
            let status = std::process::Command::new("/bin/true").status()?;
            assert!(status.success());
            c.push(t.elapsed());
        }
    }
    let (a, b, c) = (median(a), median(b), median(c));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "invocation overhead, medians over {} calls each ({} spawns):",
        ROUNDS * PER_ROUND,
        ROUNDS * SPAWNS_PER_ROUND
    );
    println!("  (a) bare wasmtime          {:>9.1} µs", us(a));
    println!("  (b) greenlight full path   {:>9.1} µs", us(b));
    println!("  (c) spawn /bin/true        {:>9.1} µs", us(c));
    let ba = us(b) / us(a);
    let cb = us(c) / us(b);
    println!(
        "  b/a = {ba:.2}  (target <= 1.5: {})",
        if ba <= 1.5 { "met" } else { "MISSED" }
    );
    println!(
        "  c/b = {cb:.1}  (target >= 20: {})",
        if cb >= 20.0 { "met" } else { "MISSED" }
    );
    // The full path includes bare wasmtime's instantiation and call, so c/a
    // is the most c/b could be with no host overhead at all.
    println!(
        "  c/a = {:.1}  (the ceiling of c/b on this machine)",
        us(c) / us(a)
    );
    Ok(())
}
