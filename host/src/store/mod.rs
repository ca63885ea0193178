//! Durable state in sled: the only module that knows sled.
//!
//! One tree per entity. Values are JSON records carrying a version tag `v`,
//! so a later release can read what an earlier one wrote. Keys that are
//! scanned in order are built from length-safe parts separated by `\0`.

mod audit;
mod flows;
mod inventory;
mod kv;
mod plugin_access;
mod plugins;
mod recordings;
mod releases;
mod schedules;
mod seal;
mod secrets;
mod sessions;
mod sync;
mod tokens;
mod trains;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use audit::{AuditEntry, AuditFilter, AuditPage, AuditRetention};
pub use flows::FlowRecord;
pub use plugins::{Approval, PluginRecord, PutOutcome};
pub use recordings::StoredRecording;
pub use releases::{InventoryOutcome, ReleaseSummary, Slot, SummaryProgress};
pub use seal::{SealError, SecretsKey};
pub use secrets::Resealed;
pub use sessions::SessionRecord;
pub use tokens::{Role, TokenRecord};
pub use trains::TrainRecord;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored {tree} record `{key}` cannot be read: {problem}")]
    Corrupt {
        tree: &'static str,
        key: String,
        problem: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// A plugin-author publishing under a name it does not own.
    #[error("{0}")]
    NotOwner(String),
    #[error("release {release} is already active in this environment")]
    Busy { release: String },
    #[error("secret `{name}` of plugin `{plugin}` cannot be opened: {problem}")]
    Secret {
        plugin: String,
        name: String,
        problem: SealError,
    },
    #[error("plugin `{0}` has secrets, and the store was opened without a secrets key")]
    NoSecretsKey(String),
}

/// Version tag written into every record.
const RECORD_VERSION: u32 = 1;

/// A stored value with its version tag.
#[derive(Serialize, serde::Deserialize)]
struct Tagged<T> {
    v: u32,
    #[serde(flatten)]
    record: T,
}

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serializing our own record types to JSON cannot fail: they hold only
    // strings, numbers, maps with string keys and sequences.
    serde_json::to_vec(&Tagged {
        v: RECORD_VERSION,
        record,
    })
    .unwrap_or_default()
}

fn decode<T: DeserializeOwned>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, Error> {
    let corrupt = |problem: String| Error::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        problem,
    };
    let tagged: Tagged<T> = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if tagged.v != RECORD_VERSION {
        return Err(corrupt(format!("unknown record version {}", tagged.v)));
    }
    Ok(tagged.record)
}

/// Decodes every record an iterator over a tree yields.
fn decode_all<T: DeserializeOwned>(
    tree: &'static str,
    entries: sled::Iter,
) -> Result<Vec<T>, Error> {
    entries
        .map(|entry| {
            let (k, v) = entry?;
            decode(tree, &k, &v)
        })
        .collect()
}

/// The prefix under which every key of `name` (`name \0 …`) sorts.
fn name_prefix(name: &str) -> Vec<u8> {
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

/// Joins key parts with `\0`, which never appears in names we accept.
fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// How long opening waits for a lock the same process just let go of.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled. sled takes an exclusive lock on its files, and releases it
/// from background threads shortly after the last handle is dropped; a
/// store reopened in the same process (a restart in place) waits a bounded
/// time for it instead of failing. Another process holding the lock still
/// fails, after the wait, with sled's message naming the path.
fn open_db(dir: &Path) -> Result<sled::Db, Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return Ok(other?),
        }
    }
}

/// The daemon's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    plugins: sled::Tree,
    blobs: sled::Tree,
    grants: sled::Tree,
    /// Who may publish under each plugin name, by name.
    plugin_owners: sled::Tree,
    plugin_kv: sled::Tree,
    /// The bytes of keys and values each plugin keeps, by plugin name.
    plugin_kv_usage: sled::Tree,
    tokens: sled::Tree,
    token_names: sled::Tree,
    audit: sled::Tree,
    flows: sled::Tree,
    inventory: sled::Tree,
    release_specs: sled::Tree,
    journal: sled::Tree,
    /// Recordings of check calls, beside the journal.
    recordings: sled::Tree,
    release_index: sled::Tree,
    active: sled::Tree,
    trains: sled::Tree,
    queue: sled::Tree,
    sessions: sled::Tree,
    schedules: sled::Tree,
    schedule_fires: sled::Tree,
    freezes: sled::Tree,
    syncer: std::sync::Arc<sync::Syncer>,
    /// The key grant secrets are sealed with; see [`Store::with_secrets_key`].
    secrets_key: Option<std::sync::Arc<SecretsKey>>,
    /// The audit log's retention and size.
    audit_keeper: audit::SharedKeeper,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let db = open_db(dir)?;
        Ok(Store {
            plugins: db.open_tree("plugins")?,
            blobs: db.open_tree("blobs")?,
            grants: db.open_tree("grants")?,
            plugin_owners: db.open_tree("plugin_owners")?,
            plugin_kv: db.open_tree("plugin_kv")?,
            plugin_kv_usage: db.open_tree("plugin_kv_usage")?,
            tokens: db.open_tree("tokens")?,
            token_names: db.open_tree("token_names")?,
            audit: db.open_tree("audit")?,
            flows: db.open_tree("flows")?,
            inventory: db.open_tree("inventory")?,
            release_specs: db.open_tree("release_specs")?,
            journal: db.open_tree("journal")?,
            recordings: db.open_tree("recordings")?,
            release_index: db.open_tree("release_index")?,
            active: db.open_tree("active")?,
            trains: db.open_tree("trains")?,
            queue: db.open_tree("queue")?,
            sessions: db.open_tree("sessions")?,
            schedules: db.open_tree("schedules")?,
            schedule_fires: db.open_tree("schedule_fires")?,
            freezes: db.open_tree("freezes")?,
            syncer: sync::new(),
            secrets_key: None,
            audit_keeper: audit::SharedKeeper::default(),
            db,
        })
    }

    /// Writes everything buffered to disk.
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_with_an_unknown_version_are_reported_not_misread() {
        let bytes = br#"{"v":99,"name":"x"}"#;
        let err = decode::<serde_json::Value>("plugins", b"x\x001.0.0", bytes).unwrap_err();
        assert!(
            err.to_string().contains("unknown record version 99"),
            "{err}"
        );
        assert!(err.to_string().contains("x/1.0.0"), "{err}");
    }
}
