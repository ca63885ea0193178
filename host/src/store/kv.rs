//! Plugins' key-value stores: one `plugin_kv` tree keyed by plugin name and
//! key, and in `plugin_kv_usage` the bytes of keys and values each plugin
//! keeps, updated in the same transaction as every write, so that a
//! plugin's total is checked without scanning its keys.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Store, key};
use crate::plugins::{KvBackend, KvRefusal};

fn read_u64(bytes: Option<sled::IVec>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

impl Store {
    /// The plugin's bytes counted from its keys, for a store written before
    /// usage was kept; written down once, so later writes only adjust it.
    fn counted_kv_usage(&self, plugin: &str) -> Result<u64, String> {
        if let Some(used) = self
            .plugin_kv_usage
            .get(plugin)
            .map_err(|e| e.to_string())?
        {
            return Ok(read_u64(Some(used)));
        }
        let prefix = key(&[plugin, ""]);
        let mut used = 0u64;
        for item in self.plugin_kv.scan_prefix(&prefix) {
            let (k, v) = item.map_err(|e| e.to_string())?;
            used += (k.len() - prefix.len() + v.len()) as u64;
        }
        // Another writer may have written it meanwhile; theirs stands.
        let _ = self
            .plugin_kv_usage
            .compare_and_swap(plugin, None::<&[u8]>, Some(&used.to_be_bytes()[..]))
            .map_err(|e| e.to_string())?;
        Ok(read_u64(
            self.plugin_kv_usage
                .get(plugin)
                .map_err(|e| e.to_string())?,
        ))
    }

    /// Replaces (`Some`) or removes (`None`) a key, adjusting the plugin's
    /// usage in the same transaction; a write that grows the total past
    /// `quota` is refused.
    fn write_kv(
        &self,
        plugin: &str,
        k: &str,
        value: Option<&[u8]>,
        quota: u64,
    ) -> Result<(), KvRefusal> {
        self.counted_kv_usage(plugin)
            .map_err(KvRefusal::Unavailable)?;
        let full_key = key(&[plugin, k]);
        let new_size = value.map_or(0, |v| (k.len() + v.len()) as u64);
        let result = (&self.plugin_kv, &self.plugin_kv_usage).transaction(|(kv, usage)| {
            let used = read_u64(usage.get(plugin)?);
            let old_size = kv.get(&full_key)?.map_or(0, |v| (k.len() + v.len()) as u64);
            let after = used.saturating_sub(old_size).saturating_add(new_size);
            if new_size > old_size && after > quota {
                return Err(ConflictableTransactionError::Abort(KvRefusal::Full {
                    used,
                    needed: new_size - old_size,
                    quota,
                }));
            }
            match value {
                Some(value) => kv.insert(full_key.as_slice(), value)?,
                None => kv.remove(full_key.as_slice())?,
            };
            usage.insert(plugin.as_bytes(), &after.to_be_bytes())?;
            Ok(())
        });
        result.map_err(|e| match e {
            TransactionError::Abort(refusal) => refusal,
            TransactionError::Storage(e) => KvRefusal::Unavailable(e.to_string()),
        })
    }
}

impl KvBackend for Store {
    fn get(&self, plugin: &str, k: &str) -> Result<Option<Vec<u8>>, String> {
        self.plugin_kv
            .get(key(&[plugin, k]))
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| e.to_string())
    }

    fn set(&self, plugin: &str, k: &str, value: &[u8], quota: u64) -> Result<(), KvRefusal> {
        self.write_kv(plugin, k, Some(value), quota)
    }

    fn delete(&self, plugin: &str, k: &str) -> Result<(), String> {
        self.write_kv(plugin, k, None, u64::MAX)
            .map_err(|e| match e {
                KvRefusal::Unavailable(e) => e,
                KvRefusal::Full { .. } => "a removal never needs room".to_string(),
            })
    }

    fn used_bytes(&self, plugin: &str) -> Result<u64, String> {
        self.counted_kv_usage(plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_kv_is_scoped_by_plugin_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.set("a", "k", b"one", 100).unwrap();
            store.set("b", "k", b"two", 100).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("a", "k").unwrap(), Some(b"one".to_vec()));
        assert_eq!(store.get("b", "k").unwrap(), Some(b"two".to_vec()));
        assert_eq!(store.used_bytes("a").unwrap(), 4);
        store.delete("a", "k").unwrap();
        assert_eq!(store.get("a", "k").unwrap(), None);
        assert_eq!(store.used_bytes("a").unwrap(), 0);
        assert_eq!(store.used_bytes("b").unwrap(), 4, "b is counted apart");
    }

    #[test]
    fn a_write_past_the_total_is_refused_and_shrinking_always_fits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set("p", "a", &[0; 50], 100).unwrap();
        store.set("p", "b", &[0; 40], 100).unwrap();
        assert_eq!(store.used_bytes("p").unwrap(), 92);
        assert_eq!(
            store.set("p", "c", &[0; 10], 100),
            Err(KvRefusal::Full {
                used: 92,
                needed: 11,
                quota: 100
            })
        );
        assert_eq!(store.get("p", "c").unwrap(), None, "nothing was written");
        // Replacing a value counts only the difference.
        store.set("p", "a", &[0; 57], 100).unwrap();
        assert_eq!(store.used_bytes("p").unwrap(), 99);
        // A smaller value always fits, even over a lowered total.
        store.set("p", "a", &[0; 1], 10).unwrap();
        assert_eq!(store.used_bytes("p").unwrap(), 43);
        store.delete("p", "b").unwrap();
        store.delete("p", "missing").unwrap();
        assert_eq!(store.used_bytes("p").unwrap(), 2);
    }

    #[test]
    fn a_store_written_before_usage_was_kept_is_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .plugin_kv
            .insert(key(&["old", "key"]), &[0u8; 7][..])
            .unwrap();
        assert_eq!(store.used_bytes("old").unwrap(), 10);
        store.set("old", "other", &[0; 5], 100).unwrap();
        assert_eq!(store.used_bytes("old").unwrap(), 20);
    }
}
