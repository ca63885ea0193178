//! The release engine: starts releases, drives each one in its own task
//! through the state machine, journals every event in the store before the
//! next action, and resumes every unfinished release when the daemon starts.
//!
//! One slow plugin or one release waiting for a human never delays another
//! release: each release has its own task, and waits are on the injected
//! clock or on a wake-up from a command.

#[cfg(test)]
pub(crate) mod bed;
mod freeze;
mod live;
mod notify;
mod perform;
mod replay;
#[cfg(test)]
mod tests;
mod trains;

pub use replay::{
    FlowSource, MAX_REPLAYED, Outcome, ReleaseReplay, ReplayReport, ReplayRequest, RoundChange,
    VerdictChange,
};
pub use trains::TrainView;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, Notify, broadcast, watch};

use crate::catalog::{self, Catalog};
use crate::clock::Clock;
use crate::domain::flow::{FlowError, WhenBusy};
use crate::domain::plugin::Artifact;
use crate::domain::recording::CheckRecording;
use crate::domain::release::{
    Action, Actor, Command, CommandError, Event, ReleaseSpec, Start, State, Status, Step, Work,
    compile,
};
use crate::registry::Registry;
use crate::store::{self, InventoryOutcome, ReleaseSummary, Slot, Store, SummaryProgress};
use live::Live;

/// Why the engine refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{}", crate::domain::flow::join_errors(.0))]
    Invalid(Vec<FlowError>),
    #[error(
        "release {release} is already active for {application} in {environment}; wait for it to finish"
    )]
    Busy {
        application: String,
        environment: String,
        release: String,
    },
    #[error("{0}")]
    Refused(CommandError),
    #[error("{0}")]
    Forbidden(String),
    /// A freeze window forbids starting now; the text says which and why.
    #[error("{0}")]
    Frozen(String),
    #[error(transparent)]
    Catalog(catalog::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What starting a release asks for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub application: String,
    pub environment: String,
    pub version: String,
    pub flow: String,
    pub flow_version: Option<u32>,
    pub emergency: bool,
    pub artifacts: Vec<Artifact>,
    /// The train starting this release, if any.
    pub train: Option<String>,
}

impl StartRequest {
    /// Every field that breaks its rule: the application, environment and
    /// flow are names, the version is a version.
    pub fn problems(&self) -> Vec<FlowError> {
        use crate::domain::name::{check_name, check_version};
        [
            check_name("application", &self.application),
            check_name("environment", &self.environment),
            check_name("flow", &self.flow),
            check_version("version", &self.version),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }
}

/// How a start is made, beyond what it asks for.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The release's id, minted beforehand: a schedule journals it before
    /// the start, so that after a crash it finds the release it started.
    pub id: Option<String>,
    /// Queue behind the environment's active release even when the flow
    /// does not.
    pub queue: bool,
    /// Start even inside a freeze window (admins only).
    pub override_freeze: bool,
}

/// One journaled event, as streamed to subscribers.
#[derive(Debug, Clone)]
pub struct Published {
    pub release: String,
    pub seq: u64,
    pub status: Status,
    pub event: Event,
}

/// How long a commit followed only by observing work waits for another
/// commit to share its flush before flushing on its own: long enough for a
/// quick check round to finish, short enough that nobody watching notices.
const LAZY_FLUSH: std::time::Duration = std::time::Duration::from_millis(2);

/// The most recorded events one commit takes after its own.
const MAX_FOLLOWING: usize = 16;

struct Inner {
    store: Store,
    registry: Registry,
    catalog: Catalog,
    clock: Arc<dyn Clock>,
    releases: Mutex<HashMap<String, Arc<Live>>>,
    events: broadcast::Sender<Published>,
    shutdown: watch::Receiver<bool>,
    tasks: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// Where release and train tasks run: threads of their own, so that a
    /// burst of plugin calls and journal commits never queues API requests.
    work: tokio::runtime::Handle,
    train_wakes: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
    /// Trains a task drives. At most one task drives a train: a second
    /// would send every rollback twice.
    train_drivers: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Held by every read-modify-write of a train record, so that a train's
    /// task and a human's rollback never write over each other's change.
    train_writes: Mutex<()>,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn summary_of(spec: &ReleaseSpec, state: &State) -> ReleaseSummary {
    ReleaseSummary {
        id: spec.id.clone(),
        application: spec.application.clone(),
        environment: spec.environment.clone(),
        version: spec.version.clone(),
        flow: spec.flow.clone(),
        flow_version: spec.flow_version,
        started_by: spec.started_by.clone(),
        emergency: spec.emergency,
        status: state.status(),
        created_ms: spec.created_ms,
        updated_ms: state.updated_ms,
        outcome: state.outcome.clone(),
        progress: progress_of(spec, state),
    }
}

fn progress_of(spec: &ReleaseSpec, state: &State) -> SummaryProgress {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut progress = SummaryProgress {
        steps_done: count(state.pc.min(spec.steps.len())),
        steps_total: count(spec.steps.len()),
        stages: count(spec.stages.len()),
        gate_expires_ms: state.gate.as_ref().and_then(|g| g.expires_at_ms),
        bake_until_ms: state.bake_until_ms,
        finished_ms: state.finished_ms,
        train: spec.train.clone(),
        ..SummaryProgress::default()
    };
    if let Some(step) = spec.steps.get(state.pc) {
        let stage = step.stage();
        progress.stage = spec.stages.get(stage).map(|s| s.name.clone());
        progress.stage_number = count(stage + 1);
        progress.step = Some(step.kind().to_string());
        progress.batch = step.batch().map(crate::domain::release::batch_number);
        progress.batches = spec
            .steps
            .iter()
            .filter(|s| s.stage() == stage)
            .filter_map(Step::batch)
            .max()
            .map_or(0, crate::domain::release::batch_number);
    }
    progress
}

/// A new release id: the creation time in hex, then randomness, so that
/// ids sort by creation.
pub(crate) fn new_id(now_ms: u64) -> String {
    let mut random = [0u8; 4];
    // Without randomness ids still sort and are unique per millisecond.
    let _ = getrandom::fill(&mut random);
    format!("{now_ms:012x}{}", hex::encode(random))
}

impl Engine {
    /// Creates the engine and resumes every unfinished release; release
    /// and train tasks run on `work`.
    pub fn start(
        store: Store,
        registry: Registry,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
        work: tokio::runtime::Handle,
    ) -> Result<Engine, Error> {
        let (events, _) = broadcast::channel(4096);
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                registry,
                catalog,
                clock,
                releases: Mutex::new(HashMap::new()),
                events,
                shutdown,
                tasks: std::sync::Mutex::new(tokio::task::JoinSet::new()),
                work,
                train_wakes: std::sync::Mutex::new(HashMap::new()),
                train_drivers: std::sync::Mutex::new(Default::default()),
                train_writes: Mutex::new(()),
            }),
        };
        let mut resumed = 0;
        for summary in engine.inner.store.release_summaries()? {
            if summary.status.is_terminal() {
                continue;
            }
            match engine.load(&summary.id) {
                Ok(live) => {
                    let live = Arc::new(live);
                    engine
                        .inner
                        .releases
                        .try_lock()
                        .map(|mut m| m.insert(summary.id.clone(), live.clone()))
                        .ok();
                    engine.spawn(live);
                    resumed += 1;
                }
                Err(e) => {
                    tracing::error!(release = %summary.id, error = %e, "A release cannot be resumed.")
                }
            }
        }
        let queued = engine.inner.store.queued_environments()?;
        let starter = engine.clone();
        engine.inner.work.spawn(async move {
            for (application, environment) in queued {
                starter.start_queued(&application, &environment).await;
            }
        });
        let trains = engine.resume_trains()?;
        tracing::info!(resumed, trains, "Release engine started.");
        Ok(engine)
    }

    /// Whether the engine is serving (not shutting down).
    pub fn running(&self) -> bool {
        !*self.inner.shutdown.borrow()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Loads a release from the store and replays its journal.
    fn load(&self, id: &str) -> Result<Live, Error> {
        let spec = self
            .inner
            .store
            .release_spec(id)?
            .ok_or_else(|| Error::NotFound(format!("no release `{id}`")))?;
        let journal = self.inner.store.journal(id)?;
        let state = State::replay(&spec, &journal).map_err(|e| {
            Error::Store(store::Error::Corrupt {
                tree: "journal",
                key: id.to_string(),
                problem: e.to_string(),
            })
        })?;
        Ok(Live::new(spec, state))
    }

    /// Starts a task driving the release, unless one drives it already.
    fn spawn(&self, live: Arc<Live>) {
        if !live.claim_driving() {
            return;
        }
        let engine = self.clone();
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            // Finished tasks are reaped as new ones start.
            while tasks.try_join_next().is_some() {}
            tasks.spawn_on(async move { engine.drive(live).await }, &self.inner.work);
        }
    }

    /// Subscribes to every journaled event.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.inner.events.subscribe()
    }

    /// Starts a release.
    pub async fn start_release(
        &self,
        request: StartRequest,
        actor: &Actor,
    ) -> Result<(Arc<ReleaseSpec>, State), Error> {
        self.start_release_with(request, actor, StartOptions::default())
            .await
    }

    /// Starts a release with options beyond the request.
    pub async fn start_release_with(
        &self,
        request: StartRequest,
        actor: &Actor,
        options: StartOptions,
    ) -> Result<(Arc<ReleaseSpec>, State), Error> {
        if options.override_freeze && !actor.admin {
            return Err(Error::Forbidden(
                "only an admin may start a release inside a freeze window".to_string(),
            ));
        }
        if request.emergency && !actor.admin {
            return Err(Error::Forbidden(
                "only an admin may start an emergency release".to_string(),
            ));
        }
        let problems = request.problems();
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let flow = self
            .inner
            .catalog
            .flow(&request.flow, request.flow_version)
            .map_err(|e| match e {
                catalog::Error::NotFound(m) => Error::NotFound(m),
                other => Error::Catalog(other),
            })?;
        let environment = self
            .inner
            .store
            .environment(&request.application, &request.environment)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no environment `{}` in application `{}`",
                    request.environment, request.application
                ))
            })?;
        let now = self.inner.clock.now_ms();
        if let Some(why) = self.frozen(&request.application, &request.environment, now)? {
            if !options.override_freeze {
                return Err(Error::Frozen(format!(
                    "{why}; an admin may start it anyway, overriding the freeze (`override_freeze` in the API)"
                )));
            }
            tracing::warn!(application = %request.application, environment = %request.environment,
                by = %actor.name, reason = %why, "A release starts inside a freeze window.");
        }
        let registry = &self.inner.registry;
        let resolve = |u: &crate::domain::flow::PluginUse| {
            registry
                .release_version(&u.plugin, &u.version)
                .map_err(|e| e.to_string())
        };
        let spec = compile(
            &flow,
            Start {
                id: options.id.unwrap_or_else(|| new_id(now)),
                application: request.application.clone(),
                environment: request.environment.clone(),
                version: request.version.clone(),
                previous_version: environment.current_version.clone(),
                started_by: actor.name.clone(),
                emergency: request.emergency,
                created_ms: now,
                artifacts: request.artifacts,
                train: request.train,
            },
            environment.targets,
            environment.live_group.as_deref(),
            &resolve,
        )
        .map_err(|e| Error::Invalid(vec![e]))?;
        let first = Event::Started {
            by: actor.name.clone(),
            at_ms: now,
        };
        let mut state = State::default();
        state
            .apply(&spec, &first)
            .map_err(|e| Error::Invalid(vec![FlowError::new("", e.to_string())]))?;
        let summary = summary_of(&spec, &state);
        let queue = options.queue || flow.when_busy == WhenBusy::Queue;
        let started = match self
            .inner
            .store
            .create_release(&spec, &first, &summary, queue)
        {
            Err(store::Error::Busy { release }) => {
                return Err(Error::Busy {
                    application: spec.application.clone(),
                    environment: spec.environment.clone(),
                    release,
                });
            }
            other => other?,
        };
        self.inner.store.sync().await?;
        if !started {
            tracing::info!(release = %spec.id, application = %spec.application,
                environment = %spec.environment, "Release queued behind the active one.");
            return Ok((Arc::new(spec), State::default()));
        }
        tracing::info!(release = %spec.id, application = %spec.application,
            environment = %spec.environment, version = %spec.version, "Release started.");
        let live = Arc::new(Live::new(spec, state.clone()));
        self.publish(&live.spec, 0, Status::Running, first);
        self.inner
            .releases
            .lock()
            .await
            .insert(live.spec.id.clone(), live.clone());
        self.spawn(live.clone());
        Ok((live.spec.clone(), state))
    }

    /// Announces what flushes have made durable of a release's journal.
    fn announce(&self, live: &Live) {
        live.announce_durable(&self.inner.store, |seq, status, event| {
            self.publish(&live.spec, seq, status, event)
        });
    }

    fn publish(&self, spec: &ReleaseSpec, seq: u64, status: Status, event: Event) {
        notify::send(&self.inner.registry, &self.inner.work, spec, &event, status);
        // Nobody listening is not an error.
        let _ = self.inner.events.send(Published {
            release: spec.id.clone(),
            seq,
            status,
            event,
        });
    }

    /// A release's spec and current state.
    pub async fn release(&self, id: &str) -> Result<(Arc<ReleaseSpec>, State), Error> {
        let live = self.live(id).await?;
        let state = live.read(&self.inner.store).await?;
        self.announce(&live);
        Ok((live.spec.clone(), (*state).clone()))
    }

    /// A release's journal, oldest first.
    pub async fn journal(&self, id: &str) -> Result<Vec<Event>, Error> {
        if self.inner.store.release_summary(id)?.is_none() {
            return Err(Error::NotFound(format!("no release `{id}`")));
        }
        // A running release's newest events may still wait for their flush;
        // a reader gets only what a crash cannot take back.
        let live = self.inner.releases.lock().await.get(id).cloned();
        if let Some(live) = live {
            live.flush_tail(&self.inner.store).await?;
            self.announce(&live);
        }
        Ok(self.inner.store.journal(id)?)
    }

    /// Every release, newest first.
    pub fn list(&self) -> Result<Vec<ReleaseSummary>, Error> {
        let mut all = self.inner.store.release_summaries()?;
        all.reverse();
        Ok(all)
    }

    /// [`Engine::list`], with each unfinished release's summary as it
    /// stands now: stored summaries change with a release's status only,
    /// while its place (stage, batch, step) moves with every event.
    pub async fn list_now(&self) -> Result<Vec<ReleaseSummary>, Error> {
        let mut all = self.list()?;
        let live: Vec<Arc<Live>> = self.inner.releases.lock().await.values().cloned().collect();
        let mut now = HashMap::with_capacity(live.len());
        for release in live {
            let state = release.state.lock().await;
            now.insert(release.spec.id.clone(), summary_of(&release.spec, &state));
        }
        for summary in &mut all {
            if !summary.status.is_terminal()
                && let Some(fresh) = now.remove(&summary.id)
            {
                *summary = fresh;
            }
        }
        Ok(all)
    }

    /// A release in memory, or loaded from the store. Finished releases are
    /// not kept in memory: reading one loads it afresh.
    async fn live(&self, id: &str) -> Result<Arc<Live>, Error> {
        let mut releases = self.inner.releases.lock().await;
        if let Some(live) = releases.get(id) {
            return Ok(live.clone());
        }
        let live = Arc::new(self.load(id)?);
        if !live.state.lock().await.status().is_terminal() {
            releases.insert(id.to_string(), live.clone());
        }
        Ok(live)
    }

    /// Forgets a finished release, unless a command revived it meanwhile.
    async fn retire(&self, live: &Arc<Live>) {
        let mut releases = self.inner.releases.lock().await;
        let finished = live.state.lock().await.status().is_terminal();
        let same = releases
            .get(&live.spec.id)
            .is_some_and(|held| Arc::ptr_eq(held, live));
        if finished && same {
            releases.remove(&live.spec.id);
        }
    }

    /// Applies a human's command to a release.
    pub async fn command(
        &self,
        id: &str,
        actor: &Actor,
        command: Command,
    ) -> Result<(Arc<ReleaseSpec>, State), Error> {
        // A finished release is not in memory; it is loaded and held under
        // the lock, so that no second copy of it can be loaded while a
        // command revives it.
        let mut releases = self.inner.releases.lock().await;
        let live = match releases.get(id) {
            Some(live) => live.clone(),
            None => {
                let live = Arc::new(self.load(id)?);
                releases.insert(id.to_string(), live.clone());
                live
            }
        };
        let held = if live.state.lock().await.status().is_terminal() {
            Some(releases)
        } else {
            drop(releases);
            None
        };
        let succeeded = live.state.lock().await.status() == Status::Succeeded;
        if succeeded && matches!(command, Command::Rollback { .. }) {
            // Only what runs now can be rolled back: a later release of the
            // environment supersedes this one.
            let spec = &live.spec;
            let running = self
                .inner
                .store
                .environment(&spec.application, &spec.environment)?
                .and_then(|e| e.current_version);
            if running.as_deref() != Some(spec.version.as_str()) {
                return Err(Error::Refused(CommandError {
                    code: "release.superseded",
                    message: format!(
                        "{} now runs {} in {}, not {}; roll back the latest release instead",
                        spec.application,
                        running.as_deref().unwrap_or("nothing known"),
                        spec.environment,
                        spec.version
                    ),
                }));
            }
        }
        // The state stays locked from the check to the journal, so the
        // command applies to exactly the state it was checked against.
        let mut guard = live.state.lock().await;
        let event = guard
            .command(&live.spec, actor, command, self.inner.clock.now_ms())
            .map_err(Error::Refused)?;
        let was_terminal = guard.status().is_terminal();
        self.commit_locked(&live, &mut guard, vec![event], false)
            .await?;
        let state = guard.clone();
        drop(guard);
        if was_terminal && !state.status().is_terminal() {
            // The driver that finished the release may not have seen the
            // end yet; it then carries on with the revived release itself.
            self.spawn(live.clone());
        }
        drop(held);
        live.wake.notify_one();
        Ok((live.spec.clone(), state))
    }

    /// Applies events to a release and journals the ones that fit. With
    /// `follow`, the events the
    /// release records next without calling anything (a deploy's start, a
    /// gate opening, the end) join the same write, so they cost no flush of
    /// their own.
    ///
    /// When what the release does next only observes (a check round, a
    /// health check, a policy decision), the commit does not wait for its
    /// flush: that call changes nothing a crash could leave half done, so it
    /// starts at once, and the flush follows within [`LAZY_FLUSH`] or with
    /// the next commit, whichever comes first. Work that changes targets or
    /// traffic starts only after everything before it is durable, and
    /// nothing is announced or shown to a reader before it is durable.
    async fn commit(
        &self,
        live: &Arc<Live>,
        events: Vec<Event>,
        follow: bool,
    ) -> Result<(), Error> {
        let mut state = live.state.lock().await;
        self.commit_locked(live, &mut state, events, follow).await
    }

    /// [`Self::commit`] on a state already locked.
    async fn commit_locked(
        &self,
        live: &Arc<Live>,
        state: &mut State,
        events: Vec<Event>,
        follow: bool,
    ) -> Result<(), Error> {
        let spec = &live.spec;
        let before = state.status();
        let seq = state.events;
        let stages_before = state.stage_times.clone();
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            match state.apply(spec, &event) {
                Ok(()) => accepted.push((event, state.status())),
                // The release moved on while the work ran (a human rolled
                // it back, say); the stale outcome is dropped.
                Err(e) => tracing::info!(release = %spec.id, event = event.name(), reason = %e,
                    "An event no longer fits the release and is dropped."),
            }
        }
        if follow && !accepted.is_empty() {
            let now = self.inner.clock.now_ms();
            // A handful at most follow one another; the bound only guards
            // against a state machine that kept asking to record.
            for _ in 0..MAX_FOLLOWING {
                let Action::Record(event) = state.next(spec, now) else {
                    break;
                };
                if state.apply(spec, &event).is_err() {
                    break;
                }
                accepted.push((event, state.status()));
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        let after = state.status();
        let slot = match (before.is_terminal(), after.is_terminal()) {
            (false, true) => Slot::Free,
            (true, false) => Slot::Take,
            _ => Slot::Keep,
        };
        let inventory = match after {
            Status::Succeeded if before != Status::Succeeded => Some(InventoryOutcome {
                version: Some(spec.version.clone()),
                live_group: spec.final_live_group(),
                unknown: None,
            }),
            // A release undone after it succeeded puts back what ran before
            // it, which for a first release is nothing.
            Status::RolledBack if state.succeeded => Some(InventoryOutcome {
                version: spec.previous_version.clone(),
                live_group: spec.stages.iter().find_map(|s| s.live_group.clone()),
                unknown: None,
            }),
            // An abandoned release may have left any mix of versions; one
            // abandoned while queued never touched the environment.
            Status::Abandoned if before != Status::Queued => Some(InventoryOutcome {
                version: None,
                live_group: None,
                unknown: Some(format!(
                    "release {} of {} was abandoned: {}",
                    spec.id,
                    spec.version,
                    state.outcome.clone().unwrap_or_default()
                )),
            }),
            _ => None,
        };
        let summary = (after != before || after.is_terminal()).then(|| summary_of(spec, state));
        let events: Vec<Event> = accepted.iter().map(|(e, _)| e.clone()).collect();
        let written = self.inner.store.append_events(
            spec,
            seq,
            &events,
            summary.as_ref(),
            slot,
            inventory.as_ref(),
        );
        if let Err(e) = written {
            // Nothing was written: the state goes back to what the journal
            // holds, so that memory never runs ahead of the disk.
            match self
                .inner
                .store
                .journal(&spec.id)
                .map(|j| State::replay(spec, &j))
            {
                Ok(Ok(replayed)) => *state = replayed,
                _ => tracing::error!(release = %spec.id, "The release's journal cannot be reread."),
            }
            return Err(match e {
                store::Error::Busy { release } => Error::Busy {
                    application: spec.application.clone(),
                    environment: spec.environment.clone(),
                    release,
                },
                other => other.into(),
            });
        }
        let ticket = self.inner.store.ticket();
        let lazy = follow
            && slot == Slot::Keep
            && inventory.is_none()
            && after == before
            && matches!(state.next(spec, self.inner.clock.now_ms()),
                Action::Call(ref work) if work.observes_only());
        let numbered = accepted
            .into_iter()
            .enumerate()
            .map(|(i, (event, status))| (seq + i as u64, status, event))
            .collect();
        // Counted before the commit can be seen, so that a reader who sees a
        // stage finished also finds it in the metrics.
        for (stage, time) in &state.stage_times {
            let newly_done = stages_before
                .get(stage)
                .is_none_or(|t| t.finished_ms.is_none());
            if let (Some(end), true) = (time.finished_ms, newly_done) {
                let kind = spec.stages.get(*stage).map_or("?", |s| s.kind.as_str());
                let seconds = end.saturating_sub(time.started_ms) as f64 / 1000.0;
                self.inner.registry.metrics().stage(kind, seconds);
            }
        }
        live.written(ticket, numbered, state);
        if lazy {
            let (engine, live) = (self.clone(), live.clone());
            self.inner.work.spawn(async move {
                tokio::time::sleep(LAZY_FLUSH).await;
                match engine.inner.store.sync_through(ticket).await {
                    Ok(()) => engine.announce(&live),
                    Err(e) => tracing::error!(release = %live.spec.id, error = %e,
                        "The release's journal cannot be flushed."),
                }
            });
        } else {
            self.inner.store.sync_through(ticket).await?;
            self.announce(live);
        }
        if slot == Slot::Free {
            // In its own task: the caller may hold locks the start needs.
            let engine = self.clone();
            let (application, environment) = (spec.application.clone(), spec.environment.clone());
            self.inner
                .work
                .spawn(async move { engine.start_queued(&application, &environment).await });
        }
        Ok(())
    }

    /// Starts the release queued first for an environment, if its slot is
    /// free.
    async fn start_queued(&self, application: &str, environment: &str) {
        let now = self.inner.clock.now_ms();
        let first = |spec: &ReleaseSpec| Event::Started {
            by: spec.started_by.clone(),
            at_ms: now,
        };
        let started = self
            .inner
            .store
            .start_next_queued(application, environment, first, now);
        let id = match started {
            Ok(Some(id)) => id,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%application, %environment, error = %e, "A queued release cannot start.");
                return;
            }
        };
        if let Err(e) = self.inner.store.sync().await {
            tracing::error!(release = %id, error = %e, "A queued release cannot start.");
            return;
        }
        match self.load(&id) {
            Ok(live) => {
                let live = Arc::new(live);
                tracing::info!(release = %id, "Queued release started.");
                self.publish(&live.spec, 0, Status::Running, first(&live.spec));
                self.inner
                    .releases
                    .lock()
                    .await
                    .insert(id.clone(), live.clone());
                self.spawn(live);
            }
            Err(e) => tracing::error!(release = %id, error = %e, "A queued release cannot start."),
        }
    }

    /// Drives one release until it is over or the daemon stops.
    async fn drive(self, live: Arc<Live>) {
        let mut shutdown = self.inner.shutdown.clone();
        let id = live.spec.id.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = self.inner.clock.now_ms();
            let action = {
                let state = live.state.lock().await;
                let action = state.next(&live.spec, now);
                if matches!(action, Action::Done) {
                    live.stop_driving();
                }
                action
            };
            let result = match action {
                Action::Done => {
                    self.retire(&live).await;
                    return;
                }
                Action::Record(event) => self.commit(&live, vec![event], true).await,
                Action::Call(work) => {
                    let (outcome, recordings) = perform::perform(&self.inner.registry, &work).await;
                    self.keep_recordings(&live.spec.id, &work, recordings);
                    let now = self.inner.clock.now_ms();
                    let mut state = live.state.lock().await;
                    let events = state.conclude(&live.spec, &work, outcome, now);
                    if state.note_unchanged_progress(&events) {
                        continue;
                    }
                    self.commit_locked(&live, &mut state, events, true).await
                }
                Action::Wait(until) => {
                    let sleep = until.map(|at| self.inner.clock.sleep_until(at));
                    tokio::select! {
                        _ = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => {}
                        _ = live.wake.notified() => {}
                        _ = shutdown.changed() => {}
                    }
                    Ok(())
                }
            };
            if let Err(e) = result {
                // The journal could not be written: stop driving rather than
                // act on state that is not durable. A restart resumes the
                // release from what was written.
                tracing::error!(release = %id, error = %e, "The release stopped: its journal cannot be written.");
                return;
            }
        }
    }

    /// Keeps what a check round's calls saw, before the round is journaled,
    /// so that the journal's flush makes it durable too. A recording that
    /// cannot be written is logged, never a reason to stop the release.
    fn keep_recordings(&self, release: &str, work: &Work, recordings: Vec<CheckRecording>) {
        let Work::Verify { pc, round, .. } = work else {
            return;
        };
        if recordings.is_empty() {
            return;
        }
        if let Err(e) = self
            .inner
            .store
            .put_round_recordings(release, *pc, *round, recordings)
        {
            tracing::error!(release = %release, pc, round, error = %e,
                "A check round's recordings cannot be kept.");
        }
    }

    /// Waits for the release tasks to notice shutdown and finish the plugin
    /// calls they are in.
    pub async fn stopped(&self) {
        let tasks = self
            .inner
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .ok();
        if let Some(mut tasks) = tasks {
            while tasks.join_next().await.is_some() {}
        }
    }
}
