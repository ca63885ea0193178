//! Durable writes with group commit. sled 0.34's `flush_async` can deadlock
//! when several tasks await it at once (sled issue 1308), so flushes are the
//! blocking `flush` on a blocking thread, one at a time; every caller that
//! wrote before a flush started is served by that flush, so concurrent
//! releases share flushes instead of queueing one each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Error, Store};

/// The group-commit state shared by every clone of a store.
#[derive(Default)]
pub(super) struct Syncer {
    /// Tickets handed out: one per write that wants to become durable,
    /// taken after the write.
    requested: AtomicU64,
    /// The highest ticket a completed flush covers; held while flushing.
    flushed: tokio::sync::Mutex<u64>,
    /// The same as `flushed`, readable without waiting for a flush.
    durable: AtomicU64,
    /// Flushes run.
    flushes: AtomicU64,
}

impl Store {
    /// Makes everything written so far durable.
    pub async fn sync(&self) -> Result<(), Error> {
        let ticket = self.ticket();
        self.sync_through(ticket).await
    }

    /// A ticket for everything written so far: once a flush covers it
    /// ([`Store::sync_through`], [`Store::is_durable`]), those writes are
    /// durable. Taking one costs nothing; it flushes nothing by itself.
    pub fn ticket(&self) -> u64 {
        self.syncer.requested.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether a flush has covered `ticket`.
    pub fn is_durable(&self, ticket: u64) -> bool {
        self.syncer.durable.load(Ordering::SeqCst) >= ticket
    }

    /// Waits until the writes before `ticket` are durable, flushing unless
    /// a flush already covered them.
    pub async fn sync_through(&self, ticket: u64) -> Result<(), Error> {
        let mut flushed = self.syncer.flushed.lock().await;
        if *flushed >= ticket {
            return Ok(());
        }
        // Every ticket handed out so far belongs to writes made before this
        // flush starts, so this flush covers them all.
        let covers = self.syncer.requested.load(Ordering::SeqCst);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| Error::Sled(sled::Error::Io(std::io::Error::other(e.to_string()))))??;
        *flushed = covers;
        self.syncer.durable.store(covers, Ordering::SeqCst);
        self.syncer.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// How many syncs were asked for, and how many flushes served them.
    pub fn sync_counts(&self) -> (u64, u64) {
        (
            self.syncer.requested.load(Ordering::SeqCst),
            self.syncer.flushes.load(Ordering::SeqCst),
        )
    }
}

pub(super) fn new() -> Arc<Syncer> {
    Arc::new(Syncer::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_is_durable_once_a_flush_covers_it_and_one_flush_serves_many() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (_, flushes_before) = store.sync_counts();
        let first = store.ticket();
        let second = store.ticket();
        assert!(!store.is_durable(first) && !store.is_durable(second));
        store.sync_through(first).await.unwrap();
        // The flush for the first ticket started after the second was
        // taken, so it covers both.
        assert!(store.is_durable(first) && store.is_durable(second));
        store.sync_through(second).await.unwrap();
        let (_, flushes) = store.sync_counts();
        assert_eq!(flushes - flushes_before, 1, "the second needed no flush");
        let third = store.ticket();
        assert!(
            !store.is_durable(third),
            "a ticket taken later is not covered"
        );
        store.sync().await.unwrap();
        assert!(store.is_durable(third));
    }
}
