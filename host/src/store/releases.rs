//! Releases: the spec fixed when a release starts, its journal of events,
//! a summary per release for listings, and the active slot that keeps one
//! release at a time per application and environment.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Error, Store, decode, decode_all, encode, key, name_prefix};
use crate::domain::release::{Event, ReleaseSpec, Status};

/// What a listing shows of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub id: String,
    pub application: String,
    pub environment: String,
    pub version: String,
    pub flow: String,
    pub flow_version: u32,
    pub started_by: String,
    pub emergency: bool,
    pub status: Status,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub outcome: Option<String>,
    /// Where the release stands, for a listing; empty in summaries stored
    /// before it was kept.
    #[serde(default)]
    pub progress: SummaryProgress,
}

/// Where a release stands, as a listing shows it (and the API gives it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ListedProgressDto)]
pub struct SummaryProgress {
    /// Steps done of all the flow's steps.
    pub steps_done: u32,
    pub steps_total: u32,
    /// The stage it stands at (under way, waiting, or where it stopped),
    /// numbered from 1 of `stages`; absent once every step is done.
    pub stage: Option<String>,
    pub stage_number: u32,
    pub stages: u32,
    /// The kind of step it stands at: `precheck`, `deploy`, `verify`,
    /// `shift` or `approval`.
    pub step: Option<String>,
    /// The batch it stands at, numbered from 1 of the stage's `batches`.
    pub batch: Option<u32>,
    pub batches: u32,
    /// When the gate it waits at expires, if it does.
    pub gate_expires_ms: Option<u64>,
    /// When the bake under way ends.
    pub bake_until_ms: Option<u64>,
    /// When it finished.
    pub finished_ms: Option<u64>,
    /// The train it belongs to.
    pub train: Option<String>,
}

/// What an append does to the environment's active slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Keep,
    /// The release is over: free the slot if it holds this release.
    Free,
    /// A finished release becomes active again (a rollback of a release
    /// that succeeded); refused if another release holds the slot.
    Take,
}

/// What a finished release leaves in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryOutcome {
    /// The version now running; `None` when nothing known runs.
    pub version: Option<String>,
    pub live_group: Option<String>,
    /// Why what runs is not known, when the release was abandoned.
    pub unknown: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct JournalEntry {
    event: Event,
}

fn journal_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = name_prefix(id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `app \0 env \0 created (big-endian) id`: a queue sorts oldest first.
fn queue_key(spec: &ReleaseSpec) -> Vec<u8> {
    let mut k = key(&[&spec.application, &spec.environment]);
    k.push(0);
    k.extend_from_slice(&spec.created_ms.to_be_bytes());
    k.extend_from_slice(spec.id.as_bytes());
    k
}

fn name_prefix_of(slot: &[u8]) -> Vec<u8> {
    let mut prefix = slot.to_vec();
    prefix.push(0);
    prefix
}

fn abort<T>(e: Error) -> Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(e))
}

fn flatten(e: TransactionError<Error>) -> Error {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => Error::Sled(e),
    }
}

impl Store {
    /// Stores a new release with its first event and takes its
    /// environment's slot. When another release holds the slot, the release
    /// is queued behind it if `queue` says so (and `false` returned), or
    /// refused with [`Error::Busy`].
    pub fn create_release(
        &self,
        spec: &ReleaseSpec,
        first: &Event,
        summary: &ReleaseSummary,
        queue: bool,
    ) -> Result<bool, Error> {
        let slot = key(&[&spec.application, &spec.environment]);
        let spec_bytes = encode(spec);
        let entry = encode(&JournalEntry {
            event: first.clone(),
        });
        let summary_bytes = encode(summary);
        let queued_summary = encode(&ReleaseSummary {
            status: Status::Queued,
            ..summary.clone()
        });
        let queue_key = queue_key(spec);
        (
            &self.release_specs,
            &self.journal,
            &self.release_index,
            &self.active,
            &self.queue,
        )
            .transaction(|(specs, journal, index, active, queued)| {
                if let Some(holder) = active.get(&slot)? {
                    if !queue {
                        return abort(Error::Busy {
                            release: String::from_utf8_lossy(&holder).into_owned(),
                        });
                    }
                    specs.insert(spec.id.as_bytes(), spec_bytes.as_slice())?;
                    index.insert(spec.id.as_bytes(), queued_summary.as_slice())?;
                    queued.insert(queue_key.as_slice(), spec.id.as_bytes())?;
                    return Ok(false);
                }
                active.insert(slot.as_slice(), spec.id.as_bytes())?;
                specs.insert(spec.id.as_bytes(), spec_bytes.as_slice())?;
                journal.insert(journal_key(&spec.id, 0), entry.as_slice())?;
                index.insert(spec.id.as_bytes(), summary_bytes.as_slice())?;
                Ok(true)
            })
            .map_err(flatten)
    }

    /// Starts the oldest release queued for an environment whose slot is
    /// free: takes the slot and journals `first` (built from the queued
    /// spec). Returns the started release's id.
    pub fn start_next_queued(
        &self,
        application: &str,
        environment: &str,
        first: impl Fn(&ReleaseSpec) -> Event,
        now_ms: u64,
    ) -> Result<Option<String>, Error> {
        let slot = key(&[application, environment]);
        if self.active.contains_key(&slot)? {
            return Ok(None);
        }
        let Some(entry) = self.queue.scan_prefix(name_prefix_of(&slot)).next() else {
            return Ok(None);
        };
        let (queue_key, id) = entry?;
        let id = String::from_utf8_lossy(&id).into_owned();
        let Some(mut spec) = self.release_spec(&id)? else {
            self.queue.remove(queue_key)?;
            return Ok(None);
        };
        // What runs now is what the release replaces; the slot is free, so
        // no other release changes it meanwhile.
        if let Some(env) = self.environment(application, environment)? {
            spec.previous_version = env.current_version;
        }
        let spec_bytes = encode(&spec);
        let entry = encode(&JournalEntry {
            event: first(&spec),
        });
        let started = (
            &self.journal,
            &self.release_index,
            &self.active,
            &self.queue,
            &self.release_specs,
        )
            .transaction(|(journal, index, active, queued, specs)| {
                if active.get(&slot)?.is_some() || queued.remove(&queue_key)?.is_none() {
                    return Ok(false);
                }
                active.insert(slot.as_slice(), id.as_bytes())?;
                specs.insert(id.as_bytes(), spec_bytes.as_slice())?;
                journal.insert(journal_key(&id, 0), entry.as_slice())?;
                if let Some(bytes) = index.get(id.as_bytes())? {
                    let mut summary: ReleaseSummary =
                        decode("release_index", id.as_bytes(), &bytes)
                            .map_err(ConflictableTransactionError::Abort)?;
                    summary.status = Status::Running;
                    summary.updated_ms = now_ms;
                    index.insert(id.as_bytes(), encode(&summary))?;
                }
                Ok(true)
            });
        Ok(started.map_err(flatten)?.then_some(id))
    }

    /// The environments with queued releases, as (application, environment).
    pub fn queued_environments(&self) -> Result<Vec<(String, String)>, Error> {
        let mut envs: Vec<(String, String)> = Vec::new();
        for entry in self.queue.iter() {
            let (k, _) = entry?;
            let mut parts = k.split(|b| *b == 0);
            let app = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let env = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            if envs.last() != Some(&(app.clone(), env.clone())) {
                envs.push((app, env));
            }
        }
        Ok(envs)
    }

    /// Appends events to a release's journal from sequence number `seq`,
    /// with the summary when it changed, the slot change and, when the
    /// release finished, what it leaves in the inventory, all at once.
    pub fn append_events(
        &self,
        spec: &ReleaseSpec,
        seq: u64,
        events: &[Event],
        summary: Option<&ReleaseSummary>,
        slot: Slot,
        inventory: Option<&InventoryOutcome>,
    ) -> Result<(), Error> {
        let slot_key = key(&[&spec.application, &spec.environment]);
        let entries: Vec<(Vec<u8>, Vec<u8>)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    journal_key(&spec.id, seq + i as u64),
                    encode(&JournalEntry { event: e.clone() }),
                )
            })
            .collect();
        if slot == Slot::Keep && summary.is_none() && inventory.is_none() {
            // Most commits only add to the journal. One tree needs no
            // transaction: a single insert or an atomic batch does, at a
            // fraction of the cost of staging a transaction over four trees.
            return match entries.as_slice() {
                [(k, v)] => self.journal.insert(k.as_slice(), v.as_slice()).map(drop),
                _ => {
                    let mut batch = sled::Batch::default();
                    for (k, v) in &entries {
                        batch.insert(k.as_slice(), v.as_slice());
                    }
                    self.journal.apply_batch(batch)
                }
            }
            .map_err(Error::Sled);
        }
        let summary_bytes = summary.map(encode);
        let queued_key = queue_key(spec);
        (
            &self.journal,
            &self.release_index,
            &self.active,
            &self.inventory,
            &self.queue,
        )
            .transaction(|(journal, index, active, inventory_tx, queued)| {
                match slot {
                    Slot::Keep => {}
                    Slot::Free => {
                        if active.get(&slot_key)?.as_deref() == Some(spec.id.as_bytes()) {
                            active.remove(slot_key.as_slice())?;
                        }
                        // A release that ends while queued (abandoned) leaves
                        // the queue with it.
                        queued.remove(queued_key.as_slice())?;
                    }
                    Slot::Take => match active.get(&slot_key)? {
                        Some(holder) if holder.as_ref() != spec.id.as_bytes() => {
                            return abort(Error::Busy {
                                release: String::from_utf8_lossy(&holder).into_owned(),
                            });
                        }
                        _ => {
                            active.insert(slot_key.as_slice(), spec.id.as_bytes())?;
                        }
                    },
                }
                for (k, v) in &entries {
                    journal.insert(k.as_slice(), v.as_slice())?;
                }
                if let Some(bytes) = &summary_bytes {
                    index.insert(spec.id.as_bytes(), bytes.as_slice())?;
                }
                if let Some(outcome) = inventory {
                    super::inventory::record_outcome(
                        inventory_tx,
                        &spec.application,
                        &spec.environment,
                        outcome.version.as_deref(),
                        outcome.live_group.as_deref(),
                        outcome.unknown.as_deref(),
                    )?;
                }
                Ok(())
            })
            .map_err(flatten)
    }

    pub fn release_spec(&self, id: &str) -> Result<Option<ReleaseSpec>, Error> {
        self.release_specs
            .get(id.as_bytes())?
            .map(|v| decode("release_specs", id.as_bytes(), &v))
            .transpose()
    }

    /// A release's journal, oldest first.
    pub fn journal(&self, id: &str) -> Result<Vec<Event>, Error> {
        self.journal
            .scan_prefix(name_prefix(id))
            .map(|entry| {
                let (k, v) = entry?;
                decode::<JournalEntry>("journal", &k, &v).map(|e| e.event)
            })
            .collect()
    }

    pub fn release_summary(&self, id: &str) -> Result<Option<ReleaseSummary>, Error> {
        self.release_index
            .get(id.as_bytes())?
            .map(|v| decode("release_index", id.as_bytes(), &v))
            .transpose()
    }

    /// Every release, oldest first (ids sort by creation time).
    pub fn release_summaries(&self) -> Result<Vec<ReleaseSummary>, Error> {
        decode_all("release_index", self.release_index.iter())
    }

    /// The release holding an environment's slot, if any.
    pub fn active_release(
        &self,
        application: &str,
        environment: &str,
    ) -> Result<Option<String>, Error> {
        Ok(self
            .active
            .get(key(&[application, environment]))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::release::tests::sample_spec;

    fn summary(spec: &ReleaseSpec, status: Status) -> ReleaseSummary {
        ReleaseSummary {
            id: spec.id.clone(),
            application: spec.application.clone(),
            environment: spec.environment.clone(),
            version: spec.version.clone(),
            flow: spec.flow.clone(),
            flow_version: spec.flow_version,
            started_by: spec.started_by.clone(),
            emergency: false,
            status,
            created_ms: 1,
            updated_ms: 1,
            outcome: None,
            progress: Default::default(),
        }
    }

    #[test]
    fn one_release_per_environment_and_the_journal_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spec = sample_spec("r1");
        let started = Event::Started {
            by: "sam".into(),
            at_ms: 1,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .create_release(&spec, &started, &summary(&spec, Status::Running), false)
                .unwrap();
            let other = sample_spec("r2");
            match store.create_release(&other, &started, &summary(&other, Status::Running), false) {
                Err(Error::Busy { release }) => assert_eq!(release, "r1"),
                other => panic!("expected busy, got {other:?}"),
            }
            let paused = Event::Paused {
                by: "alice".into(),
                reason: "look".into(),
                at_ms: 2,
            };
            store
                .append_events(&spec, 1, &[paused], None, Slot::Keep, None)
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.release_spec("r1").unwrap().as_ref(), Some(&spec));
        let journal = store.journal("r1").unwrap();
        assert_eq!(
            journal.iter().map(|e| e.name()).collect::<Vec<_>>(),
            ["started", "paused"]
        );
        assert_eq!(
            store.active_release("shop", "prod").unwrap().as_deref(),
            Some("r1")
        );
        store
            .append_events(
                &spec,
                2,
                &[],
                Some(&summary(&spec, Status::Succeeded)),
                Slot::Free,
                None,
            )
            .unwrap();
        assert_eq!(store.active_release("shop", "prod").unwrap(), None);
        assert!(store.journal("r2").unwrap().is_empty());
    }

    /// Releases commit on their own tasks; their syncs share flushes.
    /// Each running its own `flush_async` at once deadlocks sled 0.34.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_releases_committing_at_once_all_get_durable() {
        const RELEASES: usize = 200;
        const EVENTS: u64 = 10;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..RELEASES {
            let store = store.clone();
            tasks.spawn(async move {
                let mut spec = sample_spec(&format!("r{i}"));
                spec.application = format!("app{i}");
                let started = Event::Started {
                    by: "sam".into(),
                    at_ms: 1,
                };
                store
                    .create_release(&spec, &started, &summary(&spec, Status::Running), false)
                    .unwrap();
                store.sync().await.unwrap();
                for seq in 1..EVENTS {
                    let paused = Event::Paused {
                        by: "alice".into(),
                        reason: format!("look {seq}"),
                        at_ms: seq,
                    };
                    store
                        .append_events(&spec, seq, &[paused], None, Slot::Keep, None)
                        .unwrap();
                    store.sync().await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        for i in 0..RELEASES {
            assert_eq!(
                store.journal(&format!("r{i}")).unwrap().len(),
                EVENTS as usize
            );
        }
    }
}
