//! Tests of the scheduler on a manual clock with the real store, engine and
//! fixture deployer: fires start releases as the API would, missed-run and
//! overlap policies, freeze windows, versions from a loopback endpoint, and
//! exactly-once recovery of a journaled fire. Nothing sleeps: every wait is
//! on an event with a timeout.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use tokio::sync::{broadcast, watch};

use super::*;
use crate::clock::ManualClock;
use crate::domain::release::{Actor, Command, Status};
use crate::domain::schedule::freeze::{Effect, FreezeWindow, Period};
use crate::domain::schedule::{MissedRun, Overlap, Schedule, SkipReason, VersionSource};
use crate::engine::bed::{Bed, NIGHTLY, WAIT};
use crate::store::AuditFilter;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

/// 1 June 2026, 00:00 UTC.
fn june_first() -> u64 {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis() as u64
}

/// An approval gate first, so that its releases keep running.
const GATED: &str = r#"
name = "gated"
version = 1

[[stages]]
name = "go-ahead"
kind = "approval"
roles = ["release-manager"]
approvers = 1

[[stages]]
name = "rollout"
kind = "deploy"
strategy = "rolling"
deployer = { plugin = "agent" }
batch = 1
"#;

struct Harness {
    /// Its directory, and the engine's stop when dropped.
    bed: Bed,
    clock: ManualClock,
    store: Store,
    engine: Engine,
    metrics: Arc<Metrics>,
    scheduler: Scheduler,
    fires: broadcast::Receiver<Fire>,
    stop: watch::Sender<bool>,
    service: Option<tokio::task::JoinHandle<()>>,
    options: Options,
}

impl Harness {
    async fn new(now_ms: u64, environments: &[&str]) -> Harness {
        let bed = Bed::new(now_ms, &[NIGHTLY, GATED], environments).await;
        let (clock, store, engine) = (bed.clock.clone(), bed.store.clone(), bed.engine.clone());
        let metrics = bed.registry.metrics().clone();
        let options = Options::default();
        let (scheduler, fires, stop, service) =
            Harness::start_service(&options, &store, &engine, &metrics);
        Harness {
            options,
            bed,
            clock,
            store,
            engine,
            metrics,
            scheduler,
            fires,
            stop,
            service: Some(service),
        }
    }

    #[allow(clippy::type_complexity)]
    fn start_service(
        options: &Options,
        store: &Store,
        engine: &Engine,
        metrics: &Arc<Metrics>,
    ) -> (
        Scheduler,
        broadcast::Receiver<Fire>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let (mut service, scheduler) = Service::new(
            options.clone(),
            store.clone(),
            engine.clone(),
            metrics.clone(),
        );
        service.load().unwrap();
        let fires = scheduler.subscribe();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(service.run(stopped));
        (scheduler, fires, stop, task)
    }

    /// Stops the scheduler (the daemon goes down), lets `outage_ms` pass,
    /// and starts a new one on the same store.
    async fn outage(&mut self, outage_ms: u64) {
        self.stop().await;
        self.clock.advance_ms(outage_ms);
        let (scheduler, fires, stop, service) =
            Harness::start_service(&self.options, &self.store, &self.engine, &self.metrics);
        self.scheduler = scheduler;
        self.fires = fires;
        self.stop = stop;
        self.service = Some(service);
    }

    /// Stops the scheduler, as the daemon going down would.
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(service) = self.service.take() {
            service.await.unwrap();
        }
    }

    async fn add(&self, name: &str, edit: impl FnOnce(&mut Schedule)) {
        let mut schedule = crate::domain::schedule::tests::sample(name);
        edit(&mut schedule);
        self.scheduler.create(schedule, "sam").await.unwrap();
    }

    /// The next `n` fire outcomes journaled.
    async fn next_fires(&mut self, n: usize) -> Vec<Fire> {
        let mut out = Vec::new();
        while out.len() < n {
            let fire = tokio::time::timeout(WAIT, self.fires.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} fires came: {out:#?}", out.len()))
                .unwrap();
            out.push(fire);
        }
        out
    }

    /// Waits until a release has `status`.
    async fn wait_status(&self, id: &str, status: Status) {
        self.bed.wait_status(id, status).await
    }
}

fn started(fire: &Fire) -> &str {
    match &fire.outcome {
        Outcome::Started { release, .. } => release,
        other => panic!("expected a start, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_starts_a_release_as_the_api_would_and_it_completes() {
    let mut h = Harness::new(june_first() + HOUR, &["beta"]).await;
    h.add("nightly-beta", |_| {}).await;
    let view = h.scheduler.show("nightly-beta").unwrap();
    assert_eq!(view.next_ms, Some(june_first() + 2 * HOUR));
    h.clock.set_ms(june_first() + 2 * HOUR);
    let fire = h.next_fires(1).await.remove(0);
    assert_eq!(fire.at_ms, june_first() + 2 * HOUR);
    let release = started(&fire).to_string();
    h.wait_status(&release, Status::Succeeded).await;
    let spec = h.store.release_spec(&release).unwrap().unwrap();
    assert_eq!(spec.started_by, "schedule:nightly-beta");
    assert_eq!(spec.version, "1.0.0");
    let view = h.scheduler.show("nightly-beta").unwrap();
    assert_eq!(view.last.unwrap().outcome.release(), Some(release.as_str()));
    assert_eq!(view.next_ms, Some(june_first() + DAY + 2 * HOUR));
    let audit = h
        .store
        .audit(&AuditFilter {
            release: Some(release.clone()),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .entries;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "FIRE schedule" && e.actor == "schedule:nightly-beta"),
        "{audit:#?}"
    );
    let metrics = h.metrics.render();
    assert!(
        metrics.contains("greenlight_schedule_fires_total{outcome=\"started\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missed_run_policy_after_a_three_day_outage() {
    let mut h = Harness::new(june_first() + HOUR, &["skip", "once", "catch"]).await;
    let policies = [
        ("skip", MissedRun::Skip),
        ("once", MissedRun::RunOnce),
        ("catch", MissedRun::CatchUp { max: 2 }),
    ];
    for (env, policy) in policies {
        h.add(env, |s| {
            s.environment = env.into();
            s.missed = policy;
            s.overlap = Overlap::Queue;
        })
        .await;
    }
    h.clock.set_ms(june_first() + 2 * HOUR);
    h.next_fires(3).await;
    // Down from 02:00 on the 1st to 09:00 on the 4th: the fires of the
    // 2nd, 3rd and 4th fell while it was down.
    h.outage(3 * DAY + 7 * HOUR).await;
    let fires = h.next_fires(9).await;
    let outcomes = |name: &str| -> Vec<&'static str> {
        let mut mine: Vec<&Fire> = fires.iter().filter(|f| f.schedule == name).collect();
        mine.sort_by_key(|f| f.at_ms);
        mine.iter().map(|f| f.outcome.as_str()).collect()
    };
    assert_eq!(outcomes("skip"), ["skipped", "skipped", "skipped"]);
    // A run starts, or queues behind the release of the fire before it if
    // that one still runs.
    let ran = |o: &&str| *o == "started" || *o == "queued";
    let once = outcomes("once");
    assert_eq!(once[..2], ["skipped", "skipped"]);
    assert!(ran(&once[2]), "{once:?}");
    let catch = outcomes("catch");
    assert_eq!(catch[0], "skipped");
    assert!(catch[1..].iter().all(ran), "{catch:?}");
    for fire in fires.iter().filter(|f| f.outcome.as_str() == "skipped") {
        let Outcome::Skipped { reason, message } = &fire.outcome else {
            unreachable!()
        };
        assert_eq!(*reason, SkipReason::Missed);
        assert!(
            message.contains("missed while the daemon was not running"),
            "{message}"
        );
    }
    // Nothing more is due, and the next fire is the 5th's.
    let view = h.scheduler.show("once").unwrap();
    assert_eq!(view.next_ms, Some(june_first() + 4 * DAY + 2 * HOUR));
    assert_eq!(h.store.fires("once", 100).unwrap().len(), 4);
}

/// A schedule firing hourly on the gated flow, whose releases wait for an
/// approval, so the first is still running at the second fire.
async fn overlapping(overlap: Overlap) -> (Harness, String, Fire) {
    let mut h = Harness::new(june_first(), &["beta"]).await;
    h.add("hourly", |s| {
        s.cron = "0 * * * *".into();
        s.flow = "gated".into();
        s.overlap = overlap;
    })
    .await;
    h.clock.set_ms(june_first() + HOUR);
    let first = started(&h.next_fires(1).await[0]).to_string();
    h.wait_status(&first, Status::WaitingApproval).await;
    h.clock.set_ms(june_first() + 2 * HOUR);
    let second = h.next_fires(1).await.remove(0);
    (h, first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_records_the_running_release() {
    let (h, first, second) = overlapping(Overlap::Skip).await;
    match &second.outcome {
        Outcome::Skipped { reason, message } => {
            assert_eq!(*reason, SkipReason::Overlap);
            assert!(message.contains(&first), "{message}");
        }
        other => panic!("expected a skip, got {other:?}"),
    }
    assert_eq!(h.store.release_summaries().unwrap().len(), 1);
    assert!(
        h.metrics
            .render()
            .contains("greenlight_schedule_skips_total{reason=\"overlap\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_queue_starts_the_next_when_the_first_ends() {
    let (h, first, second) = overlapping(Overlap::Queue).await;
    let Outcome::Started { release, queued } = &second.outcome else {
        panic!("expected a start, got {second:?}")
    };
    assert!(queued);
    h.wait_status(release, Status::Queued).await;
    let reject = Command::Reject {
        comment: "not tonight".into(),
    };
    let manager = Actor {
        name: "rita".into(),
        role: "release-manager".into(),
        admin: false,
    };
    h.engine.command(&first, &manager, reject).await.unwrap();
    h.wait_status(release, Status::WaitingApproval).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_supersede_rolls_the_running_release_back_and_starts_anew() {
    let (h, first, second) = overlapping(Overlap::Supersede).await;
    let Outcome::Started { release, .. } = &second.outcome else {
        panic!("expected a start, got {second:?}")
    };
    h.wait_status(&first, Status::RolledBack).await;
    h.wait_status(release, Status::WaitingApproval).await;
    let journal = h.store.journal(&first).unwrap();
    assert!(
        journal
            .iter()
            .any(|e| format!("{e:?}").contains("schedule:hourly")),
        "the rollback is the schedule's: {journal:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_window_blocks_a_fire_and_says_why() {
    let mut h = Harness::new(june_first() + HOUR, &["beta"]).await;
    h.add("nightly", |_| {}).await;
    h.scheduler
        .create_freeze(
            FreezeWindow {
                name: "launch-week".into(),
                effect: Effect::Deny,
                period: Period::Range {
                    start_ms: june_first(),
                    end_ms: june_first() + 7 * DAY,
                },
                application: Some("shop".into()),
                environment: None,
                reason: "the launch".into(),
                created_by: String::new(),
                created_ms: 0,
            },
            "admin",
        )
        .await
        .unwrap();
    h.clock.set_ms(june_first() + 2 * HOUR);
    let fire = h.next_fires(1).await.remove(0);
    let Outcome::Skipped { reason, message } = &fire.outcome else {
        panic!("expected a skip, got {fire:?}")
    };
    assert_eq!(*reason, SkipReason::Frozen);
    assert!(
        message.contains("launch-week") && message.contains("the launch"),
        "{message}"
    );
    assert!(h.store.release_summaries().unwrap().is_empty());
    let audit = h
        .store
        .audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .entries;
    assert_eq!(audit[0].code.as_deref(), Some("schedule.skipped.frozen"));
    assert!(
        audit[0]
            .comment
            .as_deref()
            .unwrap_or("")
            .contains("launch-week")
    );
}

/// A loopback endpoint answering a version, a JSON version or an error.
async fn version_server() -> String {
    let app = axum::Router::new()
        .route("/latest", axum::routing::get(|| async { "2.3.4\n" }))
        .route(
            "/json",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"version": "2.4.0"})) }),
        )
        .route(
            "/broken",
            axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_resolve_at_fire_time_and_failures_are_recorded() {
    let origin = version_server().await;
    let mut h = Harness::new(june_first() + HOUR, &["text", "json", "broken"]).await;
    // Only an allowed origin may name versions: refused before, accepted
    // once the configuration lists it.
    let mut denied = crate::domain::schedule::tests::sample("text");
    denied.environment = "text".into();
    denied.version = VersionSource::Url {
        url: format!("{origin}/latest"),
    };
    let refused = h.scheduler.create(denied, "sam").await.unwrap_err();
    assert!(refused.to_string().contains("version_origins"), "{refused}");
    h.options.version_origins = vec![origin.clone()];
    h.outage(0).await;
    for path in ["text", "json", "broken"] {
        let url = match path {
            "text" => format!("{origin}/latest"),
            other => format!("{origin}/{other}"),
        };
        h.add(path, |s| {
            s.environment = path.into();
            s.version = VersionSource::Url { url };
        })
        .await;
    }
    h.clock.set_ms(june_first() + 2 * HOUR);
    let fires = h.next_fires(3).await;
    let of = |name: &str| fires.iter().find(|f| f.schedule == name).unwrap();
    let release = h.store.release_spec(started(of("text"))).unwrap().unwrap();
    assert_eq!(release.version, "2.3.4");
    let release = h.store.release_spec(started(of("json"))).unwrap().unwrap();
    assert_eq!(release.version, "2.4.0");
    let Outcome::Failed { message } = &of("broken").outcome else {
        panic!("expected a failure, got {:?}", of("broken"))
    };
    assert!(message.contains(&format!("{origin}/broken")), "{message}");
    assert!(message.contains("503"), "{message}");
    let view = h.scheduler.show("broken").unwrap();
    assert_eq!(view.last.unwrap().outcome.as_str(), "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_fire_starts_its_release_once_after_a_crash() {
    let mut h = Harness::new(june_first() + HOUR, &["beta", "gamma"]).await;
    h.add("nightly", |_| {}).await;
    h.add("other", |s| {
        s.cron = "0 3 * * *".into();
        s.environment = "gamma".into();
    })
    .await;
    // As if the daemon died right after journaling these fires: one before
    // its release was created, one after.
    h.stop().await;
    h.clock.set_ms(june_first() + 3 * HOUR);
    let pending = |schedule: &str, at_ms: u64, release: &str| Fire {
        schedule: schedule.into(),
        at_ms,
        fired_ms: at_ms,
        version: None,
        outcome: Outcome::Pending {
            release: release.into(),
        },
    };
    h.store
        .put_fire(&pending("nightly", june_first() + 2 * HOUR, "00aa00000001"))
        .unwrap();
    let already = h
        .engine
        .start_release_with(
            crate::engine::StartRequest {
                application: "shop".into(),
                environment: "gamma".into(),
                version: "1.0.0".into(),
                flow: "nightly".into(),
                flow_version: None,
                emergency: false,
                artifacts: Vec::new(),
                train: None,
            },
            &fire::actor("other"),
            crate::engine::StartOptions {
                id: Some("00bb00000002".into()),
                queue: true,
                override_freeze: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(already.0.id, "00bb00000002");
    h.store
        .put_fire(&pending("other", june_first() + 3 * HOUR, "00bb00000002"))
        .unwrap();
    h.outage(0).await;
    let fires = h.next_fires(2).await;
    let nightly = fires.iter().find(|f| f.schedule == "nightly").unwrap();
    assert_eq!(started(nightly), "00aa00000001");
    let other = fires.iter().find(|f| f.schedule == "other").unwrap();
    assert_eq!(started(other), "00bb00000002");
    let ids: Vec<String> = h
        .store
        .release_summaries()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        ["00aa00000001", "00bb00000002"],
        "each release exactly once"
    );
    assert_eq!(
        h.store.fires("nightly", 10).unwrap().len(),
        1,
        "the fire is not repeated"
    );
}
