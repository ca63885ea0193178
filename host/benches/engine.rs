//! The release engine at scale, measured in one run on the fixture plugins
//! (a deployer that only records its idempotency key, a check that passes):
//!   (1) one rolling release over 10,000 targets, in batches of one and of
//!       ten: wall time, time per target-step, the share spent inside plugin
//!       invocations, the journal written, and engine events/s against the
//!       durable writes/s of a bare sled database measured in the same run
//!       with values of the same size (target: release < 5 s, ratio >= 50%);
//!   (2) resuming 1,000 active releases after a stop: opening the store,
//!       starting the engine and every release reaching its wait again
//!       (target < 2 s);
//!   (3) resident memory with the engine up and idle (target <= 50 MiB) and
//!       with 1,000 active releases (target <= 200 MiB).
//! The data directories are temporary directories, so `TMPDIR` chooses the
//! disk under test.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use greenlight::catalog::Catalog;
use greenlight::clock::{Clock, ManualClock};
use greenlight::domain::inventory::Environment;
use greenlight::domain::plugin::Target;
use greenlight::domain::release::{Action, Actor, Event, ReleaseSpec, State, Status};
use greenlight::engine::{Engine, Published, StartRequest};
use greenlight::plugins::{Options, Runtime};
use greenlight::registry::Registry;
use greenlight::store::{ReleaseSummary, Slot, Store};
use tokio::sync::{broadcast, watch};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const FLEET: usize = 10_000;
const ACTIVE: usize = 1_000;
/// How long each measurement of bare sled runs.
const RAW_BUDGET: Duration = Duration::from_secs(2);
const CLOCK_START_MS: u64 = 1_800_000_000_000;

/// Adds up how long the runtime's `invoke` spans live: the time the engine
/// spends inside plugin invocations.
#[derive(Default)]
struct Invocations {
    count: AtomicU64,
    nanos: AtomicU64,
}

#[derive(Clone, Copy)]
struct Opened(Instant);

struct InvokeTimer(Arc<Invocations>);

impl<S> Layer<S> for InvokeTimer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(Instant::now()));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: LayerContext<'_, S>) {
        if let Some(Opened(at)) = ctx.span(&id).and_then(|s| s.extensions().get().copied()) {
            self.0.count.fetch_add(1, Ordering::Relaxed);
            let nanos = at.elapsed().as_nanos() as u64;
            self.0.nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }
}

impl Invocations {
    fn take(&self) -> (u64, Duration) {
        let count = self.count.swap(0, Ordering::Relaxed);
        let nanos = self.nanos.swap(0, Ordering::Relaxed);
        (count, Duration::from_nanos(nanos))
    }
}

/// A line of `/proc/self/status` or `/proc/self/io`, in its own unit.
fn proc_field(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn rss_mib() -> f64 {
    proc_field("status", "VmRSS:").map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

fn disk_writes() -> Option<u64> {
    proc_field("io", "write_bytes:")
}

/// The daemon's parts, wired as `server.rs` wires them.
struct Daemon {
    store: Store,
    registry: Registry,
    catalog: Catalog,
    engine: Engine,
    shutdown: watch::Sender<bool>,
    /// How long opening the store and starting the engine took.
    opened: Duration,
    engine_started: Duration,
}

impl Daemon {
    fn start(dir: &Path, clock: &ManualClock) -> anyhow::Result<Daemon> {
        let clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let t = Instant::now();
        let store = Store::open(&dir.join("db"))?;
        let opened = t.elapsed();
        let options = Options {
            artifact_dir: Some(dir.join("artifacts")),
            ..Options::default()
        };
        let runtime = Runtime::new(options, Arc::new(store.clone()), clock.clone())?;
        let registry = Registry::new(store.clone(), runtime, clock.clone());
        let catalog = Catalog::new(store.clone(), registry.clone(), clock.clone());
        let (shutdown, stop) = watch::channel(false);
        let t = Instant::now();
        let engine = Engine::start(
            store.clone(),
            registry.clone(),
            catalog.clone(),
            clock,
            stop,
            tokio::runtime::Handle::current(),
        )?;
        let engine_started = t.elapsed();
        Ok(Daemon {
            store,
            registry,
            catalog,
            engine,
            shutdown,
            opened,
            engine_started,
        })
    }

    /// Stops the release tasks and drops every handle on the store, which
    /// sled flushes as it closes. Every event was already made durable by
    /// the engine when it was committed.
    async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.engine.stopped().await;
    }

    async fn install(&self, flows: &[String]) -> anyhow::Result<()> {
        for (name, file) in [("deployer", "fixture_deployer"), ("check", "fixture_check")] {
            let path = format!("{}/{file}.wasm", env!("GREENLIGHT_PLUGINS_DIR"));
            let bytes = std::fs::read(&path).with_context(|| path.clone())?;
            self.registry
                .upload(
                    name,
                    "1.0.0",
                    bytes,
                    greenlight::registry::Publisher::admin("bench"),
                )
                .await?;
        }
        for flow in flows {
            self.catalog.apply(flow, "bench")?;
        }
        Ok(())
    }

    fn environment(&self, application: &str, name: &str, targets: usize) -> anyhow::Result<()> {
        self.store.put_environment(&Environment {
            application: application.into(),
            name: name.into(),
            targets: (0..targets)
                .map(|i| Target {
                    id: format!("host-{i:05}"),
                    address: format!("10.{}.{}.{}:8080", i >> 16, (i >> 8) & 255, i & 255),
                    ..Default::default()
                })
                .collect(),
            live_group: None,
            current_version: None,
            version_unknown: None,
        })?;
        Ok(())
    }

    async fn start_release(
        &self,
        application: &str,
        env: &str,
        flow: &str,
    ) -> anyhow::Result<String> {
        let request = StartRequest {
            application: application.into(),
            environment: env.into(),
            version: "2.0.0".into(),
            flow: flow.into(),
            flow_version: None,
            emergency: false,
            artifacts: Vec::new(),
            train: None,
        };
        let (spec, _) = self.engine.start_release(request, &actor()).await?;
        Ok(spec.id.clone())
    }

    /// Whether a release has nothing to do until time passes or a human
    /// acts: what its task finds when it asks for the next action.
    async fn waiting(&self, id: &str, now_ms: u64) -> anyhow::Result<bool> {
        let (spec, state) = self.engine.release(id).await?;
        match state.next(&spec, now_ms) {
            Action::Wait(_) => Ok(true),
            Action::Done => bail!("release {id} ended: {:?}", state.outcome),
            _ => Ok(false),
        }
    }
}

fn actor() -> Actor {
    Actor {
        name: "bench".into(),
        role: "release-manager".into(),
        admin: true,
    }
}

fn rolling_flow(name: &str, batch: usize) -> String {
    format!(
        r#"name = "{name}"
version = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = {{ plugin = "deployer" }}
batch = {batch}
checks = [{{ plugin = "check" }}]
"#
    )
}

/// Releases that stop at an approval gate, and releases that stop in a
/// canary's hour-long bake after its first check round.
fn waiting_flows() -> Vec<String> {
    let gated = r#"name = "gated"
version = 1

[[stages]]
name = "go-ahead"
kind = "approval"
roles = ["release-manager"]
"#;
    let baked = r#"name = "baked"
version = 1

[[stages]]
name = "canary"
kind = "deploy"
strategy = "canary"
deployer = { plugin = "deployer" }
count = 1
bake = "1h"
check_interval = "10m"
checks = [{ plugin = "check" }]
"#;
    vec![
        format!("{gated}{}", rolling_stage()),
        format!("{baked}{}", rolling_stage()),
    ]
}

fn rolling_stage() -> &'static str {
    r#"
[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "deployer" }
batch = "50%"
checks = [{ plugin = "check" }]
"#
}

/// Durable writes of a bare sled database: one insert of `value_len` bytes
/// and one `flush_async` each, configured as the store configures sled.
/// Returns writes per second and bytes written to disk per write.
async fn raw_sled(value_len: usize) -> anyhow::Result<(f64, Option<f64>)> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .mode(sled::Mode::HighThroughput)
        .open()?;
    let tree = db.open_tree("journal")?;
    let value = vec![b'x'; value_len];
    let disk_before = disk_writes();
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed() < RAW_BUDGET {
        let mut key = b"0000018bcfe56800deadbeef\0".to_vec();
        key.extend_from_slice(&n.to_be_bytes());
        tree.insert(key, value.as_slice())?;
        tree.flush_async().await?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let disk = disk_writes()
        .zip(disk_before)
        .map(|(a, b)| (a - b) as f64 / n as f64);
    Ok((rate, disk))
}

/// The store's share of a release: its journal written again to a fresh
/// store in the same commits (a round's verdicts with their decision), with
/// no plugin and no engine. Returns the time taken and the bytes written
/// to disk.
async fn store_alone(
    spec: &ReleaseSpec,
    journal: &[Event],
) -> anyhow::Result<(Duration, Option<u64>)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut state = State::default();
    // The engine commits a round's verdicts with their decision, and the
    // events a release records without calling anything with the commit
    // before them.
    let mut commits: Vec<Vec<Event>> = Vec::new();
    let mut replay = State::default();
    for event in journal {
        let joins = matches!(event, Event::Decided { .. })
            || replay.next(spec, event.at_ms()) == Action::Record(event.clone());
        replay.apply(spec, event)?;
        match commits.last_mut() {
            Some(last) if joins => last.push(event.clone()),
            _ => commits.push(vec![event.clone()]),
        }
    }
    let summary = |state: &State| ReleaseSummary {
        id: spec.id.clone(),
        application: spec.application.clone(),
        environment: spec.environment.clone(),
        version: spec.version.clone(),
        flow: spec.flow.clone(),
        flow_version: spec.flow_version,
        started_by: spec.started_by.clone(),
        emergency: false,
        status: state.status(),
        created_ms: spec.created_ms,
        updated_ms: state.updated_ms,
        outcome: state.outcome.clone(),
        progress: Default::default(),
    };
    let disk_before = disk_writes();
    let started = Instant::now();
    let mut seq = 0;
    for events in commits {
        for event in &events {
            state.apply(spec, event)?;
        }
        if seq == 0 {
            store.create_release(spec, &events[0], &summary(&state), false)?;
        } else {
            let last = state.status().is_terminal().then(|| summary(&state));
            let slot = if last.is_some() {
                Slot::Free
            } else {
                Slot::Keep
            };
            store.append_events(spec, seq, &events, last.as_ref(), slot, None)?;
        }
        // As the engine does: a commit followed only by observing work
        // shares the flush of the commit after it.
        let at = events.last().map_or(0, Event::at_ms);
        let observing =
            matches!(state.next(spec, at), Action::Call(ref work) if work.observes_only());
        if !observing {
            store.sync().await?;
        }
        seq += events.len() as u64;
    }
    let elapsed = started.elapsed();
    Ok((elapsed, disk_writes().zip(disk_before).map(|(a, b)| a - b)))
}

/// Waits until the release `id` publishes a terminal status.
async fn finished(events: &mut broadcast::Receiver<Published>, id: &str) -> anyhow::Result<Status> {
    loop {
        match events.recv().await {
            Ok(p) if p.release == id && p.status.is_terminal() => return Ok(p.status),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => bail!("the engine stopped"),
        }
    }
}

struct Rolling {
    batch: usize,
    wall: Duration,
    invocations: u64,
    inside: Duration,
    events: usize,
    commits: usize,
    flushes: usize,
    journal_bytes: usize,
    disk_bytes: Option<u64>,
    raw_writes_per_s: f64,
    raw_disk_per_write: Option<f64>,
    store_alone: Duration,
    store_disk_bytes: Option<u64>,
}

impl Rolling {
    fn steps(&self) -> usize {
        2 * FLEET.div_ceil(self.batch)
    }
}

async fn rolling(
    d: &Daemon,
    env: &str,
    batch: usize,
    timer: &Invocations,
) -> anyhow::Result<Rolling> {
    let mut events = d.engine.subscribe();
    timer.take();
    let disk_before = disk_writes();
    let syncs_before = d.store.sync_counts();
    let started = Instant::now();
    let id = d.start_release("fleet", env, env).await?;
    let status = finished(&mut events, &id).await?;
    let wall = started.elapsed();
    let syncs = d.store.sync_counts();
    let disk_bytes = disk_writes().zip(disk_before).map(|(a, b)| a - b);
    let (invocations, inside) = timer.take();
    if status != Status::Succeeded {
        bail!("the {env} release ended {status:?}");
    }
    let journal = d.engine.journal(&id).await?;
    let (spec, _) = d.engine.release(&id).await?;
    let (store_alone, store_disk_bytes) = store_alone(&spec, &journal).await?;
    // The store keeps each event as `{"v":1,"event":…}` under `id \0 seq`.
    let wrapper = r#"{"v":1,"event":}"#.len();
    let key = id.len() + 1 + 8;
    let journal_bytes = journal
        .iter()
        .map(|e| serde_json::to_vec(e).map(|v| key + wrapper + v.len()))
        .sum::<Result<usize, _>>()?;
    // Bare sled, with values of the journal's average size, on the same
    // disk right after the release, twice.
    let value_len = journal_bytes / journal.len() - key;
    let (rate, disk) = raw_sled(value_len).await?;
    let (rate2, disk2) = raw_sled(value_len).await?;
    let raw_writes_per_s = (rate + rate2) / 2.0;
    let raw_disk_per_write = disk.zip(disk2).map(|(a, b)| (a + b) / 2.0);
    Ok(Rolling {
        batch,
        wall,
        invocations,
        inside,
        events: journal.len(),
        commits: (syncs.0 - syncs_before.0) as usize,
        flushes: (syncs.1 - syncs_before.1) as usize,
        journal_bytes,
        disk_bytes,
        raw_writes_per_s,
        raw_disk_per_write,
        store_alone,
        store_disk_bytes,
    })
}

struct Resume {
    started: Duration,
    /// Syncs asked for while starting, and the flushes that served them.
    syncs: (u64, u64),
    open: Duration,
    engine_start: Duration,
    daemon: Duration,
    ready: Duration,
    rss_active: f64,
    rss_resumed: f64,
}

async fn resume(dir: &Path, clock: &ManualClock, idle: Daemon) -> anyhow::Result<Resume> {
    let d = idle;
    for i in 0..ACTIVE {
        d.environment(&format!("app-{i:04}"), "prod", 4)?;
    }
    let mut events = d.engine.subscribe();
    let syncs_before = d.store.sync_counts();
    let started = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..ACTIVE {
        let engine = d.engine.clone();
        let flow = if i % 2 == 0 { "gated" } else { "baked" };
        let request = StartRequest {
            application: format!("app-{i:04}"),
            environment: "prod".into(),
            version: "2.0.0".into(),
            flow: flow.into(),
            flow_version: None,
            emergency: false,
            artifacts: Vec::new(),
            train: None,
        };
        starts.spawn(async move { engine.start_release(request, &actor()).await });
    }
    let mut pending = HashSet::new();
    while let Some(joined) = starts.join_next().await {
        pending.insert(joined??.0.id.clone());
    }
    let ids: Vec<String> = pending.iter().cloned().collect();
    // Every release reaches its gate or its bake; a lagging subscriber
    // looks at them all again.
    let mut scan = true;
    while !pending.is_empty() {
        if scan {
            let mut reached = Vec::new();
            for id in &pending {
                if d.waiting(id, clock.now_ms()).await? {
                    reached.push(id.clone());
                }
            }
            for id in reached {
                pending.remove(&id);
            }
            scan = false;
            continue;
        }
        match events.recv().await {
            Ok(p) => {
                if pending.contains(&p.release) && d.waiting(&p.release, clock.now_ms()).await? {
                    pending.remove(&p.release);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => scan = true,
            Err(broadcast::error::RecvError::Closed) => bail!("the engine stopped"),
        }
    }
    let started = started.elapsed();
    let after = d.store.sync_counts();
    let syncs = (after.0 - syncs_before.0, after.1 - syncs_before.1);
    let rss_active = rss_mib();
    d.stop().await;

    let t = Instant::now();
    let d = Daemon::start(dir, clock)?;
    let daemon = t.elapsed();
    for id in &ids {
        if !d.waiting(id, clock.now_ms()).await? {
            bail!("release {id} was not resumed at its wait");
        }
    }
    let ready = t.elapsed();
    let rss_resumed = rss_mib();
    let (open, engine_start) = (d.opened, d.engine_started);
    d.stop().await;
    Ok(Resume {
        started,
        syncs,
        open,
        engine_start,
        daemon,
        ready,
        rss_active,
        rss_resumed,
    })
}

fn main() -> anyhow::Result<()> {
    let timer = Arc::new(Invocations::default());
    let only_invoke = tracing_subscriber::filter::filter_fn(|m| {
        m.is_span() && m.name() == "invoke" && m.target().starts_with("greenlight::plugins")
    });
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(InvokeTimer(timer.clone()).with_filter(only_invoke)),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(&timer))
}

async fn run(timer: &Invocations) -> anyhow::Result<()> {
    let clock = ManualClock::new(CLOCK_START_MS);

    // Resident memory and resume first, before the big release grows the
    // heap.
    let active_dir = tempfile::tempdir()?;
    let d = Daemon::start(active_dir.path(), &clock)?;
    let rss_idle = rss_mib();
    d.install(&waiting_flows()).await?;
    let rss_loaded = rss_mib();
    let resumed = resume(active_dir.path(), &clock, d).await?;

    let fleet_dir = tempfile::tempdir()?;
    let d = Daemon::start(fleet_dir.path(), &clock)?;
    let sizes = [1, 10];
    let flows: Vec<String> = sizes
        .iter()
        .map(|b| rolling_flow(&format!("batch-{b}"), *b))
        .collect();
    d.install(&flows).await?;
    let mut runs = Vec::new();
    for batch in sizes {
        let env = format!("batch-{batch}");
        d.environment("fleet", &env, FLEET)?;
        runs.push(rolling(&d, &env, batch, timer).await?);
    }
    d.stop().await;

    report(&runs, &resumed, (rss_idle, rss_loaded), fleet_dir.path());
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn report(runs: &[Rolling], r: &Resume, (rss_idle, rss_loaded): (f64, f64), dir: &Path) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("release engine at scale (data under {})", dir.display());
    println!("(1) one rolling release over {FLEET} targets");
    let row = |label: &str, cell: &dyn Fn(&Rolling) -> String| {
        print!("  {label:<42}");
        for run in runs {
            print!("{:>16}", cell(run));
        }
        println!();
    };
    row("batch size", &|x| x.batch.to_string());
    row("steps (deploy + verify)", &|x| x.steps().to_string());
    row("wall time", &|x| format!("{:.2} s", x.wall.as_secs_f64()));
    row("  per target-step", &|x| {
        format!("{:.1} µs", us(x.wall) / (2 * FLEET) as f64)
    });
    row("  per step", &|x| {
        format!("{:.1} µs", us(x.wall) / x.steps() as f64)
    });
    row("plugin invocations", &|x| x.invocations.to_string());
    row("  time inside them", &|x| {
        format!("{:.2} s", x.inside.as_secs_f64())
    });
    row("  share of wall time", &|x| {
        format!(
            "{:.0}%",
            100.0 * x.inside.as_secs_f64() / x.wall.as_secs_f64()
        )
    });
    row("outside them (engine + store), per step", &|x| {
        format!(
            "{:.1} µs",
            us(x.wall.saturating_sub(x.inside)) / x.steps() as f64
        )
    });
    row("journal events", &|x| x.events.to_string());
    row("durable commits", &|x| x.commits.to_string());
    row("  flushes run for them", &|x| x.flushes.to_string());
    row("journal bytes (keys + values)", &|x| {
        format!("{:.2} MiB", x.journal_bytes as f64 / (1 << 20) as f64)
    });
    row("  per event", &|x| {
        format!("{} B", x.journal_bytes / x.events)
    });
    row("bytes written to disk (/proc io)", &|x| {
        x.disk_bytes.map_or("n/a".into(), |b| {
            format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
        })
    });
    row("  per commit", &|x| {
        x.disk_bytes.map_or("n/a".into(), |b| {
            format!("{:.1} KiB", b as f64 / x.commits as f64 / 1024.0)
        })
    });
    row("engine events/s", &|x| {
        format!("{:.0}", x.events as f64 / x.wall.as_secs_f64())
    });
    row("engine commits/s", &|x| {
        format!("{:.0}", x.commits as f64 / x.wall.as_secs_f64())
    });
    row("store alone: same commits and flushes", &|x| {
        format!("{:.2} s", x.store_alone.as_secs_f64())
    });
    row("  commits/s", &|x| {
        format!("{:.0}", x.commits as f64 / x.store_alone.as_secs_f64())
    });
    row("  disk bytes per commit", &|x| {
        x.store_disk_bytes.map_or("n/a".into(), |b| {
            format!("{:.1} KiB", b as f64 / x.commits as f64 / 1024.0)
        })
    });
    row("neither plugin nor store, per commit", &|x| {
        let rest = x
            .wall
            .saturating_sub(x.inside)
            .saturating_sub(x.store_alone);
        format!("{:.1} µs", us(rest) / x.commits as f64)
    });
    row("bare sled durable writes/s (same size)", &|x| {
        format!("{:.0}", x.raw_writes_per_s)
    });
    row("  disk bytes per write", &|x| {
        x.raw_disk_per_write
            .map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0))
    });
    row("events/s ÷ sled writes/s", &|x| {
        let ratio = x.events as f64 / x.wall.as_secs_f64() / x.raw_writes_per_s;
        format!("{:.0}% {}", 100.0 * ratio, verdict(ratio >= 0.5))
    });
    row("floor: its flushes at bare sled speed", &|x| {
        format!("{:.2} s", x.flushes as f64 / x.raw_writes_per_s)
    });
    row("  + its plugin time", &|x| {
        format!(
            "{:.2} s",
            x.flushes as f64 / x.raw_writes_per_s + x.inside.as_secs_f64()
        )
    });
    row("release < 5 s", &|x| {
        verdict(x.wall.as_secs_f64() < 5.0).into()
    });

    println!("(2) resuming {ACTIVE} active releases (half at a gate, half baking)");
    println!(
        "  {:<42}{:>10.0} ms",
        "start them all and reach their waits",
        ms(r.started)
    );
    println!(
        "  {:<42}{:>10} commits, {} flushes",
        "  … while they committed at once", r.syncs.0, r.syncs.1
    );
    println!("  {:<42}{:>10.0} ms", "open the store", ms(r.open));
    println!(
        "  {:<42}{:>10.0} ms",
        "Engine::start (load, replay, spawn)",
        ms(r.engine_start)
    );
    println!(
        "  {:<42}{:>10.0} ms",
        "store, runtime, registry and engine up",
        ms(r.daemon)
    );
    println!(
        "  {:<42}{:>10.0} ms  (target < 2000: {})",
        "… and every release at its wait",
        ms(r.ready),
        verdict(r.ready < Duration::from_secs(2))
    );

    println!("(3) resident memory (VmRSS)");
    println!(
        "  {:<42}{:>10.1} MiB  (target <= 50: {})",
        "engine up, idle",
        rss_idle,
        verdict(rss_idle <= 50.0)
    );
    println!(
        "  {:<42}{:>10.1} MiB  (target <= 50: {})",
        "… after compiling and loading two plugins",
        rss_loaded,
        verdict(rss_loaded <= 50.0)
    );
    println!(
        "  {:<42}{:>10.1} MiB  (target <= 200: {})",
        format!("{ACTIVE} active releases"),
        r.rss_active,
        verdict(r.rss_active <= 200.0)
    );
    println!(
        "  {:<42}{:>10.1} MiB",
        format!("{ACTIVE} releases resumed after a stop"),
        r.rss_resumed
    );
}
