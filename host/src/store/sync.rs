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
    /// Tickets handed out: one per `sync` call, taken after its writes.
    requested: AtomicU64,
    /// The highest ticket a completed flush covers; held while flushing.
    flushed: tokio::sync::Mutex<u64>,
    /// Flushes run.
    flushes: AtomicU64,
}

impl Store {
    /// Makes everything written so far durable.
    pub async fn sync(&self) -> Result<(), Error> {
        let ticket = self.syncer.requested.fetch_add(1, Ordering::SeqCst) + 1;
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
