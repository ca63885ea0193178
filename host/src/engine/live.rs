//! A release the engine holds in memory, and the tail of its journal that is
//! written but not yet durable. Events are announced (to event streams and
//! notifiers) and shown to readers only once a flush covers them, in
//! journal order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{Mutex, Notify};

use crate::domain::release::{Event, ReleaseSpec, State, Status};
use crate::store::{self, Store};

/// A release the engine holds in memory.
pub(super) struct Live {
    pub(super) spec: Arc<ReleaseSpec>,
    pub(super) state: Mutex<State>,
    pub(super) wake: Notify,
    /// Whether a task drives the release. At most one does: two would both
    /// carry out the work the state asks for, calling the deployer twice.
    driving: AtomicBool,
    /// The newest durable state a reader was given or a flush made durable.
    /// Readers that find `state` locked by a commit in flight are served
    /// this copy instead of waiting for the flush.
    last_read: std::sync::Mutex<Option<Arc<State>>>,
    /// Commits written but not yet announced, oldest first.
    unannounced: std::sync::Mutex<VecDeque<Unannounced>>,
    /// The store ticket of the newest commit written; 0 before any.
    newest: AtomicU64,
}

/// One commit's events, waiting for a flush to cover its ticket.
struct Unannounced {
    ticket: u64,
    /// Journal sequence number, the release's status after it, the event.
    events: Vec<(u64, Status, Event)>,
    /// The state right after the commit, kept only when someone reads the
    /// release (a release nobody reads costs no copy).
    snapshot: Option<Arc<State>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Live {
    pub(super) fn new(spec: ReleaseSpec, state: State) -> Live {
        Live {
            spec: Arc::new(spec),
            state: Mutex::new(state),
            wake: Notify::new(),
            driving: AtomicBool::new(false),
            last_read: std::sync::Mutex::new(None),
            unannounced: std::sync::Mutex::new(VecDeque::new()),
            newest: AtomicU64::new(0),
        }
    }

    /// Claims the driving of the release: true for the one caller that is
    /// to start a driver, false while a driver runs.
    pub(super) fn claim_driving(&self) -> bool {
        !self.driving.swap(true, Ordering::SeqCst)
    }

    /// Gives the driving up. The driver calls it holding the state lock,
    /// having seen the release finished: a command that revives the release
    /// later finds no driver and starts one, and one that revived it before
    /// left work the driver saw.
    pub(super) fn stop_driving(&self) {
        self.driving.store(false, Ordering::SeqCst);
    }

    /// Records a commit just written under `ticket`, with `state` as it
    /// stands after it. Called with the state locked, so commits queue in
    /// journal order.
    pub(super) fn written(&self, ticket: u64, events: Vec<(u64, Status, Event)>, state: &State) {
        let snapshot = lock(&self.last_read)
            .is_some()
            .then(|| Arc::new(state.clone()));
        lock(&self.unannounced).push_back(Unannounced {
            ticket,
            events,
            snapshot,
        });
        self.newest.store(ticket, Ordering::SeqCst);
    }

    /// Hands every commit a flush has covered to `announce`, oldest first,
    /// and brings the last reading up to date. Whoever calls it after a
    /// flush announces what that flush made durable, so concurrent callers
    /// never reorder or repeat an event.
    pub(super) fn announce_durable(&self, store: &Store, announce: impl Fn(u64, Status, Event)) {
        let mut queue = lock(&self.unannounced);
        while queue.front().is_some_and(|c| store.is_durable(c.ticket)) {
            let Some(commit) = queue.pop_front() else {
                break;
            };
            if let Some(snapshot) = commit.snapshot {
                self.offer(snapshot);
            }
            for (seq, status, event) in commit.events {
                announce(seq, status, event);
            }
        }
    }

    /// Makes every commit written so far durable.
    pub(super) async fn flush_tail(&self, store: &Store) -> Result<(), store::Error> {
        store.sync_through(self.newest.load(Ordering::SeqCst)).await
    }

    /// Keeps `state` as the last reading unless a newer one is there.
    fn offer(&self, state: Arc<State>) {
        let mut last = lock(&self.last_read);
        if last.as_ref().is_none_or(|l| l.events <= state.events) {
            *last = Some(state);
        }
    }

    /// The release's durable state, without waiting for a flush when an
    /// earlier reading exists: while a commit is in flight or a tail is
    /// not yet flushed, the newest durable state is the last reading. Only
    /// a first reader waits, flushing the tail, so that no reader ever sees
    /// what a crash could take back.
    pub(super) async fn read(&self, store: &Store) -> Result<Arc<State>, store::Error> {
        if let Ok(guard) = self.state.try_lock()
            && store.is_durable(self.newest.load(Ordering::SeqCst))
        {
            return Ok(self.keep(guard));
        }
        if let Some(last) = lock(&self.last_read).clone() {
            return Ok(last);
        }
        let guard = self.state.lock().await;
        // Under the lock nothing new is written, so this covers all of it.
        self.flush_tail(store).await?;
        Ok(self.keep(guard))
    }

    /// Copies a durable state out of the lock and keeps it as the last
    /// reading.
    fn keep(&self, guard: tokio::sync::MutexGuard<'_, State>) -> Arc<State> {
        let fresh = Arc::new(guard.clone());
        drop(guard);
        self.offer(fresh.clone());
        fresh
    }
}
