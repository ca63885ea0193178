//! Invocation overhead, measured in one run on each of two healthy `check`
//! components that run the same logic: `fixture-check`, built with the
//! standard library (so importing the WASI CLI, filesystem, I/O and clock
//! interfaces), and `fixture-no-std-check`, built without it (importing only
//! `greenlight:plugin`). For each:
//!   (a) bare wasmtime: pooled allocator, pre-linked instance, fresh store, call;
//!   (b) Greenlight's full path: version and grant lookup, limits, host
//!       context, call, result decoding and validation;
//!   (c) spawning `/bin/true` per check, the cost of the process-per-check
//!       model plugins replace.
//! Prints medians and the ratios b/a (target ≤ 1.5) and c/b (target ≥ 20),
//! and c/a, the most c/b can be: the full path includes bare wasmtime.
//! Rounds interleave every measurement so machine noise hits them alike;
//! (c) does not depend on the component and is shared.

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

/// One component under test: its bare baseline, its name in the registry
/// and its samples.
struct Subject {
    label: &'static str,
    raw: RawCheck,
    name: &'static str,
    a: Vec<Duration>,
    b: Vec<Duration>,
}

async fn run() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let store = Store::open(scratch.path())?;
    let clock = Arc::new(SystemClock);
    // `GL_KEEP_RESIDENT_KIB` compares resident windows in one build.
    let mut options = Options::default();
    if let Ok(kib) = std::env::var("GL_KEEP_RESIDENT_KIB") {
        options.keep_resident_kib = kib.parse()?;
    }
    let keep_resident_kib = options.keep_resident_kib;
    let runtime = Runtime::new(options, Arc::new(store.clone()), clock.clone())?;
    let registry = Registry::new(store, runtime.clone(), clock);
    let (ctx, targets) = (context(), targets());
    let call = || Call::Verify {
        ctx: ctx.clone(),
        targets: targets.clone(),
    };

    let mut subjects = Vec::new();
    for (label, name, file) in [
        ("fixture-check (std)", "probe", "fixture_check"),
        ("fixture-no-std-check", "lean", "fixture_no_std_check"),
    ] {
        let path = format!("{}/{file}.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
        let bytes = std::fs::read(&path)?;
        registry
            .upload(
                name,
                "1.0.0",
                bytes.clone(),
                greenlight::registry::Publisher::admin("bench"),
            )
            .await?;
        let raw = RawCheck::new(&runtime, &bytes)?;
        // Warm both paths and check they answer the same.
        let raw_verdict = raw.verify(&ctx, &targets).await?;
        assert_eq!(raw_verdict.status, VerdictStatus::Fail);
        let full = registry.invoke(name, "1.0.0", call()).await??;
        assert!(
            matches!(full.output, greenlight::domain::plugin::Output::Verdict(ref v) if *v == raw_verdict)
        );
        subjects.push(Subject {
            label,
            raw,
            name,
            a: Vec::new(),
            b: Vec::new(),
        });
    }

    let mut c = Vec::new();
    for _ in 0..ROUNDS {
        for s in &mut subjects {
            for _ in 0..PER_ROUND {
                let t = Instant::now();
                s.raw.verify(&ctx, &targets).await?;
                s.a.push(t.elapsed());
            }
            for _ in 0..PER_ROUND {
                let t = Instant::now();
                registry.invoke(s.name, "1.0.0", call()).await??;
                s.b.push(t.elapsed());
            }
        }
        for _ in 0..SPAWNS_PER_ROUND {
            let t = Instant::now();
            let status = std::process::Command::new("/bin/true").status()?;
            assert!(status.success());
            c.push(t.elapsed());
        }
    }

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let c = us(median(c));
    let rows: Vec<(&str, f64, f64)> = subjects
        .into_iter()
        .map(|s| (s.label, us(median(s.a)), us(median(s.b))))
        .collect();
    println!(
        "invocation overhead, medians over {} calls each ({} spawns), {} KiB of memory kept resident:",
        ROUNDS * PER_ROUND,
        ROUNDS * SPAWNS_PER_ROUND,
        keep_resident_kib
    );
    print!("  {:<28}", "");
    for (label, _, _) in &rows {
        print!("{label:>24}");
    }
    println!();
    let line = |label: &str, cell: &dyn Fn(f64, f64) -> String| {
        print!("  {label:<28}");
        for (_, a, b) in &rows {
            print!("{:>24}", cell(*a, *b));
        }
        println!();
    };
    line("(a) bare wasmtime", &|a, _| format!("{a:.1} µs"));
    line("(b) greenlight full path", &|_, b| format!("{b:.1} µs"));
    line("(c) spawn /bin/true", &|_, _| format!("{c:.1} µs"));
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    line("b/a (target <= 1.5)", &|a, b| {
        format!("{:.2} {}", b / a, verdict(b / a <= 1.5))
    });
    line("c/b (target >= 20)", &|_, b| {
        format!("{:.1} {}", c / b, verdict(c / b >= 20.0))
    });
    // The full path includes bare wasmtime's instantiation and call, so c/a
    // is the most c/b could be with no host overhead at all.
    line("c/a (ceiling of c/b)", &|a, _| format!("{:.1}", c / a));
    Ok(())
}
