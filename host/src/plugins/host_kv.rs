//! `greenlight:plugin/kv`: a key-value store private to each plugin name,
//! backed by the daemon's store through [`KvBackend`](super::KvBackend).

use super::KvRefusal;
use super::bindings::kv::{Host, KvError};
use super::state::InvocationState;

/// The longest key a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// The largest value a plugin may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes, this one is {}",
            key.len()
        )));
    }
    Ok(())
}

impl Host for InvocationState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        check_key(&key)?;
        self.kv
            .get(&self.plugin, &key)
            .map_err(KvError::Unavailable)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::ValueTooLarge(MAX_VALUE_BYTES as u64));
        }
        // Interface 0.1.0 has no case of its own for a full store; the
        // message says what happened and what to do.
        self.kv
            .set(&self.plugin, &key, &value, self.kv_quota_bytes)
            .map_err(|refusal| match refusal {
                KvRefusal::Full {
                    used,
                    needed,
                    quota,
                } => KvError::Unavailable(format!(
                    "the plugin's key-value store is full: it holds {used} of its {quota} bytes \
                     and this write needs {needed} more; delete keys it no longer needs, or ask \
                     an admin to raise [plugins] kv_quota_mib"
                )),
                KvRefusal::Unavailable(e) => KvError::Unavailable(e),
            })
    }

    fn delete(&mut self, key: String) -> Result<(), KvError> {
        check_key(&key)?;
        self.kv
            .delete(&self.plugin, &key)
            .map_err(KvError::Unavailable)
    }
}
