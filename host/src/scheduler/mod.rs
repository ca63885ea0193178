//! The scheduler: fires schedules at their instants on the injected clock
//! and starts their releases through the engine, exactly once per fire.
//!
//! Shape: [`Options`] from the config, a [`Service`] that owns the loop, and
//! a cheap [`Scheduler`] handle the API talks to. The loop keeps each
//! enabled schedule's next fire in order, sleeps until the earliest
//! (`Clock::sleep_until`, no polling), and wakes early when the handle says
//! a schedule changed. Each schedule's due fires are handled in a task of
//! its own, one fire after another, so a slow version endpoint delays only
//! its own schedule.

mod fire;
mod handle;
#[cfg(test)]
mod tests;
mod version;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};

pub use handle::{ScheduleView, Scheduler};

use crate::clock::Clock;
use crate::domain::grant::Origin;
use crate::domain::schedule::{Cron, Fire, Outcome};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::store::{self, Store};

/// How the scheduler behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// A fire handled more than this long after its instant was missed (the
    /// daemon was not running), and its schedule's missed-run policy decides
    /// whether it still runs.
    pub grace_ms: u64,
    /// How long asking a version endpoint may take.
    pub resolve_timeout_ms: u64,
    /// The origins (`scheme://host[:port]`) a schedule's `version_url` may
    /// point at. None by default: a schedule names a fixed version until an
    /// admin allows an endpoint here, so a token that manages schedules
    /// cannot make the daemon call whatever it likes.
    pub version_origins: Vec<String>,
}

impl Options {
    /// The allowed version origins, or the first entry that is not one.
    pub fn origins(&self) -> Result<Vec<Origin>, String> {
        self.version_origins
            .iter()
            .enumerate()
            .map(|(i, o)| {
                Origin::parse(o).map_err(|e| format!("scheduler.version_origins[{i}]: {e}"))
            })
            .collect()
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            grace_ms: 60_000,
            resolve_timeout_ms: 10_000,
            version_origins: Vec::new(),
        }
    }
}

/// Why the scheduler refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", crate::domain::flow::join_errors(.0))]
    Invalid(Vec<crate::domain::flow::FlowError>),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What wakes the loop.
enum Event {
    /// A schedule was created, changed or deleted.
    Changed(String),
    /// A schedule's task handled its due fires up to `cursor_ms`.
    Done { name: String, cursor_ms: u64 },
}

/// What the handle and the fire tasks share.
struct Shared {
    options: Options,
    /// `options.version_origins`, parsed.
    origins: Vec<Origin>,
    store: Store,
    engine: Engine,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    events: mpsc::UnboundedSender<Event>,
    fires: broadcast::Sender<Fire>,
}

/// A schedule the loop is waiting on.
struct Entry {
    schedule: crate::domain::schedule::Schedule,
    cron: Cron,
    /// The newest fire handled (or the instant the schedule began).
    cursor_ms: u64,
    next_ms: Option<u64>,
}

/// The scheduler's loop.
pub struct Service {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Event>,
    entries: HashMap<String, Entry>,
    /// `(next fire, schedule)`, earliest first.
    queue: BTreeSet<(u64, String)>,
    /// Schedules whose task is running, and those changed meanwhile.
    busy: HashSet<String>,
    changed: HashSet<String>,
    tasks: tokio::task::JoinSet<()>,
}

impl Service {
    /// The service and its handle; nothing runs until [`Service::run`].
    pub fn new(
        options: Options,
        store: Store,
        engine: Engine,
        metrics: Arc<Metrics>,
    ) -> (Service, Scheduler) {
        let (tx, rx) = mpsc::unbounded_channel();
        let timeout = std::time::Duration::from_millis(options.resolve_timeout_ms);
        // The daemon checks the options before it starts the scheduler.
        let origins = options.origins().unwrap_or_default();
        let shared = Arc::new(Shared {
            origins,
            options,
            clock: engine.clock().clone(),
            store,
            engine,
            metrics,
            // A redirect could lead anywhere; the allowed origin must
            // answer itself.
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            events: tx,
            fires: broadcast::channel(1024).0,
        });
        let service = Service {
            shared: shared.clone(),
            rx,
            entries: HashMap::new(),
            queue: BTreeSet::new(),
            busy: HashSet::new(),
            changed: HashSet::new(),
            tasks: tokio::task::JoinSet::new(),
        };
        (service, Scheduler::new(shared))
    }

    /// Loads every schedule. A schedule whose newest fire is journaled
    /// without its release having started is due at once, so that the
    /// release starts.
    pub fn load(&mut self) -> Result<usize, Error> {
        for schedule in self.shared.store.schedules()? {
            let name = schedule.name.clone();
            self.reload(&name, Some(schedule))?;
        }
        Ok(self.entries.len())
    }

    /// Reads a schedule again (from `known` or the store) and queues its
    /// next fire.
    fn reload(
        &mut self,
        name: &str,
        known: Option<crate::domain::schedule::Schedule>,
    ) -> Result<(), Error> {
        if let Some(old) = self.entries.remove(name)
            && let Some(next) = old.next_ms
        {
            self.queue.remove(&(next, name.to_string()));
        }
        let schedule = match known {
            Some(s) => s,
            None => match self.shared.store.schedule(name)? {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        if !schedule.enabled {
            return Ok(());
        }
        let cron = match schedule.check() {
            Ok(cron) => cron,
            Err(e) => {
                tracing::error!(schedule = %name, problem = %crate::domain::flow::join_errors(&e),
                    "A stored schedule cannot be read.");
                return Ok(());
            }
        };
        let last = self.shared.store.last_fire(name)?;
        let pending = matches!(
            last,
            Some(Fire {
                outcome: Outcome::Pending { .. },
                ..
            })
        );
        let cursor_ms = last.map_or(0, |f| f.at_ms).max(schedule.since_ms);
        let next_ms = if pending {
            Some(0)
        } else {
            cron.after(cursor_ms).next()
        };
        self.insert(Entry {
            schedule,
            cron,
            cursor_ms,
            next_ms,
        });
        Ok(())
    }

    fn insert(&mut self, entry: Entry) {
        if let Some(next) = entry.next_ms {
            self.queue.insert((next, entry.schedule.name.clone()));
        }
        self.entries.insert(entry.schedule.name.clone(), entry);
    }

    /// Starts a task for each schedule with a fire due at `now`.
    fn start_due(&mut self, now: u64) {
        while let Some((next, name)) = self.queue.first().cloned() {
            if next > now {
                break;
            }
            self.queue.remove(&(next, name.clone()));
            let Some(entry) = self.entries.get(&name) else {
                continue;
            };
            self.busy.insert(name.clone());
            let shared = self.shared.clone();
            let (schedule, cron, cursor) =
                (entry.schedule.clone(), entry.cron.clone(), entry.cursor_ms);
            self.tasks.spawn(async move {
                let cursor_ms = fire::run(&shared, &schedule, &cron, cursor).await;
                let _ = shared.events.send(Event::Done {
                    name: schedule.name.clone(),
                    cursor_ms,
                });
            });
        }
    }

    fn handle(&mut self, event: Event) {
        let result = match event {
            Event::Changed(name) if self.busy.contains(&name) => {
                self.changed.insert(name);
                Ok(())
            }
            Event::Changed(name) => self.reload(&name, None),
            Event::Done { name, cursor_ms } => {
                self.busy.remove(&name);
                if self.changed.remove(&name) {
                    self.reload(&name, None)
                } else if let Some(mut entry) = self.entries.remove(&name) {
                    entry.cursor_ms = entry.cursor_ms.max(cursor_ms);
                    entry.next_ms = entry.cron.after(entry.cursor_ms).next();
                    self.insert(entry);
                    Ok(())
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "A schedule cannot be read.");
        }
    }

    /// Runs until `shutdown` turns true, then waits for fires in flight.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = self.shared.clock.now_ms();
            self.start_due(now);
            let sleep = self
                .queue
                .first()
                .map(|(at, _)| self.shared.clock.sleep_until(*at));
            tokio::select! {
                _ = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => {}
                event = self.rx.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = shutdown.changed() => {}
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }
}
