//! The scheduler at scale, in one run with 10,000 schedules loaded:
//!   (1) resident memory of the loaded schedules (the RSS grown by loading
//!       them into the scheduler);
//!   (2) the time to compute the next fire of every schedule, against a
//!       baseline of the `cron` crate alone computing the same expressions
//!       in UTC without daylight-saving handling;
//!   (3) the scheduling error of real fires on the system clock: 100 of the
//!       schedules fire every second for a few seconds, each starting a
//!       release through the engine; the error is the release's start
//!       (as the engine stamps it) minus the instant the schedule named
//!       (target: p99 < 50 ms).
//! The data directory is a temporary directory, so `TMPDIR` chooses the
//! disk under test.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use greenlight::catalog::Catalog;
use greenlight::clock::{Clock, SystemClock};
use greenlight::domain::inventory::Environment;
use greenlight::domain::plugin::Target;
use greenlight::domain::schedule::{MissedRun, Outcome, Overlap, Schedule, VersionSource};
use greenlight::engine::Engine;
use greenlight::plugins::Runtime;
use greenlight::registry::Registry;
use greenlight::scheduler::{Options, Service};
use greenlight::store::Store;
use tokio::sync::watch;

const SCHEDULES: usize = 10_000;
/// How many schedules fire every second (`SCHEDULES_FIRING` overrides).
const FIRING: usize = 100;
const FIRING_FOR: Duration = Duration::from_secs(5);
const TIMEZONES: [&str; 6] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
];

fn rss_mib() -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Schedule `i`: the first `FIRING` fire every second in their own
/// environment; the rest fire on leap days at varied times and zones, so
/// they are loaded and computed but do not fire during the run.
fn schedule(i: usize, now: u64, firing: usize) -> Schedule {
    let (cron, environment) = if i < firing {
        ("* * * * * *".to_string(), format!("b{i:03}"))
    } else {
        (
            format!("{} {} 29 2 *", i % 60, (i / 60) % 24),
            "b000".to_string(),
        )
    };
    Schedule {
        name: format!("s{i:05}"),
        cron,
        timezone: TIMEZONES[i % TIMEZONES.len()].to_string(),
        application: "shop".into(),
        environment,
        flow: "nightly".into(),
        flow_version: None,
        version: VersionSource::Fixed {
            version: "1.0.0".into(),
        },
        missed: MissedRun::Skip,
        overlap: Overlap::Skip,
        enabled: true,
        since_ms: now,
        created_by: "bench".into(),
        created_ms: now,
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let firing: usize = std::env::var("SCHEDULES_FIRING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FIRING)
        .min(SCHEDULES);
    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Store::open(&dir.path().join("db"))?;
    let options = greenlight::plugins::Options {
        artifact_dir: Some(dir.path().join("artifacts")),
        ..Default::default()
    };
    let runtime = Runtime::new(options, Arc::new(store.clone()), clock.clone())?;
    let registry = Registry::new(store.clone(), runtime, clock.clone());
    let path = format!("{}/fixture_deployer.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
    let bytes = std::fs::read(&path).with_context(|| path.clone())?;
    registry
        .upload(
            "agent",
            "1.0.0",
            bytes,
            greenlight::registry::Publisher::admin("bench"),
        )
        .await?;
    let catalog = Catalog::new(store.clone(), registry.clone(), clock.clone());
    catalog.apply(
        "name = \"nightly\"\nversion = 1\n\n[[stages]]\nname = \"rollout\"\nkind = \"deploy\"\n\
         strategy = \"rolling\"\ndeployer = { plugin = \"agent\" }\nbatch = 1\n",
        "bench",
    )?;
    for i in 0..firing {
        store.put_environment(&Environment {
            application: "shop".into(),
            name: format!("b{i:03}"),
            targets: vec![Target {
                id: "web-0".into(),
                address: "10.0.0.1:8080".into(),
                ..Default::default()
            }],
            live_group: None,
            current_version: None,
            version_unknown: None,
        })?;
    }
    let (stop, stopped) = watch::channel(false);
    let engine = Engine::start(
        store.clone(),
        registry.clone(),
        catalog,
        clock.clone(),
        stopped.clone(),
        tokio::runtime::Handle::current(),
    )?;

    let now = clock.now_ms();
    let schedules: Vec<Schedule> = (0..SCHEDULES).map(|i| schedule(i, now, firing)).collect();
    for s in &schedules {
        store.create_schedule(s)?;
    }
    store.flush()?;

    // (2) The next fire of every schedule, against the cron crate alone.
    let t = Instant::now();
    let crons: Vec<_> = schedules
        .iter()
        .map(|s| s.check().map_err(|e| anyhow::anyhow!("{e:?}")))
        .collect::<anyhow::Result<_>>()?;
    let parsed = t.elapsed();
    let t = Instant::now();
    let nexts: usize = crons.iter().filter_map(|c| c.after(now).next()).count();
    let ours = t.elapsed();
    let plain: Vec<cron::Schedule> = schedules
        .iter()
        .map(|s| {
            let fields = if s.cron.split_whitespace().count() == 5 {
                format!("0 {}", s.cron)
            } else {
                s.cron.clone()
            };
            cron::Schedule::from_str(&fields).expect("a valid expression")
        })
        .collect();
    let from = chrono::DateTime::<Utc>::from_timestamp_millis(now as i64).unwrap_or_default();
    let t = Instant::now();
    let baseline_nexts: usize = plain.iter().filter_map(|c| c.after(&from).next()).count();
    let baseline = t.elapsed();
    assert_eq!(nexts, baseline_nexts);

    // (1) Memory: load every schedule into the scheduler. The parsed
    // expressions above are dropped first so they are not counted twice.
    drop((crons, plain));
    let before = rss_mib();
    let t = Instant::now();
    let (mut service, scheduler) = Service::new(
        Options::default(),
        store.clone(),
        engine.clone(),
        registry.metrics().clone(),
    );
    let loaded = service.load()?;
    let load_time = t.elapsed();
    let after = rss_mib();

    // (3) Real fires on the system clock.
    let mut fires = scheduler.subscribe();
    // Fires that fell while the schedules were loading are late because the
    // loop was not running yet; they are counted apart.
    let running_from = clock.now_ms();
    let task = tokio::spawn(service.run(stopped));
    let until = Instant::now() + FIRING_FOR;
    let mut errors: Vec<i64> = Vec::new();
    let mut wakes: Vec<i64> = Vec::new();
    let mut skipped = 0usize;
    let mut failed = 0usize;
    let mut before_start = 0usize;
    while let Ok(Ok(fire)) = tokio::time::timeout_at(until.into(), fires.recv()).await {
        match &fire.outcome {
            _ if fire.at_ms < running_from => before_start += 1,
            Outcome::Started { release, .. } => {
                if let Some(summary) = store.release_summary(release)? {
                    errors.push(summary.created_ms as i64 - fire.at_ms as i64);
                    wakes.push(fire.fired_ms as i64 - fire.at_ms as i64);
                }
            }
            Outcome::Skipped { .. } => skipped += 1,
            _ => failed += 1,
        }
    }
    let _ = stop.send(true);
    let _ = task.await;
    engine.stopped().await;
    errors.sort_unstable();
    wakes.sort_unstable();

    println!("scheduler benchmark: {SCHEDULES} schedules ({firing} firing every second)");
    println!(
        "  memory:  {:.1} MiB RSS grown loading {loaded} enabled of {SCHEDULES} schedules in {:.1} ms \
         ({:.2} KiB each enabled; RSS now {after:.1} MiB)",
        after - before,
        load_time.as_secs_f64() * 1e3,
        (after - before) * 1024.0 / loaded.max(1) as f64,
    );
    println!(
        "  next fire of all: {:.2} ms ({:.2} us each), parse {:.2} ms; cron crate alone in UTC {:.2} ms; \
         ratio {:.2}x",
        ours.as_secs_f64() * 1e3,
        ours.as_secs_f64() * 1e6 / SCHEDULES as f64,
        parsed.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        ours.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
    );
    let p50 = percentile(&errors, 0.50);
    let p99 = percentile(&errors, 0.99);
    println!(
        "  scheduling error over {} started fires ({skipped} skipped as overlapping, {failed} failed, \
         {before_start} before the loop ran): \
         p50 {p50} ms, p99 {p99} ms, max {} ms (target p99 < 50 ms: {})",
        errors.len(),
        errors.last().copied().unwrap_or(0),
        if p99 < 50 { "met" } else { "MISSED" },
    );
    println!(
        "    of which waking and deciding (fire handled minus scheduled instant): p50 {} ms, p99 {} ms",
        percentile(&wakes, 0.50),
        percentile(&wakes, 0.99),
    );
    Ok(())
}
