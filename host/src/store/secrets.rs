//! Grant secrets at the record boundary: sealed as a grant is written,
//! opened as it is read, and all sealed again at once, on every start (to
//! seal what an earlier release stored in the clear, and to prove that the
//! key opens everything) and to rotate the key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::plugins::GrantRecord;
use super::seal::{Sealed, SecretsKey};
use super::{Error, Store, decode, encode};

/// What sealing every stored secret again found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Secrets stored; every one is now sealed with the target key.
    pub secrets: usize,
    /// Of those, how many had been stored in the clear.
    pub were_clear: usize,
    /// Of those, how many had been sealed with another key.
    pub were_other_key: usize,
}

impl Store {
    /// This store, sealing and opening grant secrets with `key`. Without a
    /// key, a grant with secrets can be neither written nor read.
    pub fn with_secrets_key(mut self, key: SecretsKey) -> Store {
        self.secrets_key = Some(Arc::new(key));
        self
    }

    /// Seals a grant's secrets for storing.
    pub(super) fn seal_secrets(
        &self,
        plugin: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, Sealed>, Error> {
        if secrets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let key = self
            .secrets_key
            .as_deref()
            .ok_or_else(|| Error::NoSecretsKey(plugin.to_string()))?;
        seal_all(key, plugin, secrets)
    }

    /// A stored grant's secrets, opened.
    pub(super) fn open_secrets(
        &self,
        plugin: &str,
        record: &GrantRecord,
    ) -> Result<BTreeMap<String, String>, Error> {
        let keys: Vec<&SecretsKey> = self.secrets_key.as_deref().into_iter().collect();
        open_all(plugin, record, &keys)
    }

    /// The ids of the keys that stored secrets are sealed with.
    pub fn sealed_key_ids(&self) -> Result<BTreeSet<String>, Error> {
        let mut ids = BTreeSet::new();
        for entry in self.grants.iter() {
            let (k, v) = entry?;
            let record: GrantRecord = decode("grants", &k, &v)?;
            ids.extend(record.sealed_secrets.into_values().map(|s| s.key));
        }
        Ok(ids)
    }

    /// Opens every stored secret (with the store's key, or with `to` for
    /// those already sealed with it) and seals with `to` every one that is
    /// not yet: those stored in the clear by an earlier release, and all of
    /// them when `to` is a new key. One transaction does it, so a crash
    /// leaves every secret as it was or every one sealed with `to`; a
    /// secret that does not open stops it with nothing written.
    pub fn reseal_secrets(&self, to: &SecretsKey) -> Result<Resealed, Error> {
        let keys: Vec<&SecretsKey> = self
            .secrets_key
            .as_deref()
            .into_iter()
            .chain([to])
            .collect();
        self.rewrite_grants(|plugin, record, done: &mut Resealed| {
            let opened = open_all(plugin, record, &keys)?;
            let other_key = record
                .sealed_secrets
                .values()
                .filter(|s| s.key != to.id())
                .count();
            done.secrets += opened.len();
            done.were_clear += record.secrets.len();
            done.were_other_key += other_key;
            if record.secrets.is_empty() && other_key == 0 {
                return Ok(false);
            }
            record.secrets.clear();
            record.sealed_secrets = seal_all(to, plugin, &opened)?;
            Ok(true)
        })
    }

    /// Drops every sealed secret that the store's key does not open (every
    /// sealed one, without a key), for when their key is lost for good; the
    /// rest of each grant stays. One transaction; returns the plugin and
    /// name of each secret dropped, or that would be unless `confirm`.
    pub fn drop_unopened_secrets(&self, confirm: bool) -> Result<Vec<(String, String)>, Error> {
        let key = self.secrets_key.as_deref();
        self.rewrite_grants(|plugin, record, dropped: &mut Vec<(String, String)>| {
            let before = record.sealed_secrets.len();
            record.sealed_secrets.retain(|name, sealed| {
                let opens = key.is_some_and(|key| key.open(plugin, name, sealed).is_ok());
                if !opens {
                    dropped.push((plugin.to_string(), name.clone()));
                }
                opens
            });
            Ok(confirm && record.sealed_secrets.len() != before)
        })
    }

    /// Goes through every grant in one transaction: `change` sees each
    /// plugin's record and what it has gathered so far, and says whether
    /// the record is to be written back. An error writes nothing. The
    /// transaction may run again after a conflict, so what is gathered
    /// starts afresh each time.
    fn rewrite_grants<T: Default>(
        &self,
        change: impl Fn(&str, &mut GrantRecord, &mut T) -> Result<bool, Error>,
    ) -> Result<T, Error> {
        let plugins = self
            .grants
            .iter()
            .keys()
            .collect::<Result<Vec<sled::IVec>, _>>()?;
        let result = self.grants.transaction(|tree| {
            let mut gathered = T::default();
            for k in &plugins {
                let Some(bytes) = tree.get(k)? else { continue };
                let mut record: GrantRecord =
                    decode("grants", k, &bytes).map_err(ConflictableTransactionError::Abort)?;
                let plugin = String::from_utf8_lossy(k);
                if change(&plugin, &mut record, &mut gathered)
                    .map_err(ConflictableTransactionError::Abort)?
                {
                    tree.insert(k, encode(&record))?;
                }
            }
            Ok(gathered)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => Error::Sled(e),
        })
    }
}

fn seal_all(
    key: &SecretsKey,
    plugin: &str,
    secrets: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Sealed>, Error> {
    secrets
        .iter()
        .map(|(name, value)| {
            let sealed = key
                .seal(plugin, name, value)
                .map_err(|problem| Error::Secret {
                    plugin: plugin.to_string(),
                    name: name.clone(),
                    problem,
                })?;
            Ok((name.clone(), sealed))
        })
        .collect()
}

/// A record's secrets: those in the clear as they are, the sealed ones
/// opened with the key among `keys` they name, or, when none is theirs,
/// refused naming the first.
fn open_all(
    plugin: &str,
    record: &GrantRecord,
    keys: &[&SecretsKey],
) -> Result<BTreeMap<String, String>, Error> {
    let mut secrets = record.secrets.clone();
    for (name, sealed) in &record.sealed_secrets {
        let key = keys
            .iter()
            .find(|k| k.id() == sealed.key)
            .or(keys.first())
            .ok_or_else(|| Error::NoSecretsKey(plugin.to_string()))?;
        let value = key
            .open(plugin, name, sealed)
            .map_err(|problem| Error::Secret {
                plugin: plugin.to_string(),
                name: name.clone(),
                problem,
            })?;
        secrets.insert(name.clone(), value);
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::grant::{Grant, Origin};
    use crate::store::SealError;

    fn grant(secret: &str) -> Grant {
        Grant {
            tls: Vec::new(),
            allowed_hosts: vec![Origin::parse("http://127.0.0.1:9").unwrap()],
            config: [("greeting".to_string(), "hello".to_string())].into(),
            secrets: [("token".to_string(), secret.to_string())].into(),
            ..Grant::default()
        }
    }

    /// The bytes of every file under `dir`.
    fn files(dir: &std::path::Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                all.extend(files(&path));
            } else {
                all.extend(std::fs::read(&path).unwrap());
            }
        }
        all
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[test]
    fn secrets_are_sealed_on_disk_and_open_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretsKey::generate().unwrap();
        {
            let store = Store::open(dir.path())
                .unwrap()
                .with_secrets_key(key.clone());
            store.set_grant("probe", &grant("hunter2-plain")).unwrap();
            store.flush().unwrap();
        }
        assert!(!contains(&files(dir.path()), "hunter2-plain"));
        let store = Store::open(dir.path())
            .unwrap()
            .with_secrets_key(key.clone());
        assert_eq!(store.grant("probe").unwrap(), grant("hunter2-plain"));
        assert_eq!(
            store.sealed_key_ids().unwrap(),
            [key.id().to_string()].into()
        );
    }

    #[test]
    fn without_a_key_secrets_are_neither_written_nor_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store.set_grant("probe", &grant("x")).unwrap_err();
        assert!(matches!(err, Error::NoSecretsKey(_)), "{err}");
        // A grant without secrets needs no key.
        store.set_grant("probe", &Grant::default()).unwrap();
        let keyed = store.with_secrets_key(SecretsKey::generate().unwrap());
        keyed.set_grant("probe", &grant("x")).unwrap();
        let bare = Store {
            secrets_key: None,
            ..keyed
        };
        let err = bare.grant("probe").unwrap_err();
        assert!(matches!(err, Error::NoSecretsKey(_)), "{err}");
    }

    /// A grant exactly as releases before sealing wrote it.
    const CLEAR_RECORD: &str = r#"{"v":1,"allowed_hosts":["http://127.0.0.1:9"],"config":{"greeting":"hello"},"secrets":{"token":"old-plain"},"deadline_ms":null,"memory_mib":null,"max_output_bytes":null,"max_outbound_requests":null}"#;

    #[test]
    fn secrets_stored_in_the_clear_are_read_and_then_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretsKey::generate().unwrap();
        let store = Store::open(dir.path())
            .unwrap()
            .with_secrets_key(key.clone());
        store.grants.insert("probe", CLEAR_RECORD).unwrap();
        assert_eq!(store.grant("probe").unwrap(), grant("old-plain"));
        let done = store.reseal_secrets(&key).unwrap();
        assert_eq!(
            done,
            Resealed {
                secrets: 1,
                were_clear: 1,
                were_other_key: 0
            }
        );
        let stored = store.grants.get("probe").unwrap().unwrap();
        let stored = String::from_utf8_lossy(&stored);
        assert!(!stored.contains("old-plain"), "{stored}");
        assert!(stored.contains("sealed_secrets"), "{stored}");
        assert_eq!(store.grant("probe").unwrap(), grant("old-plain"));
        // Once sealed, a start rewrites nothing.
        let again = store.reseal_secrets(&key).unwrap();
        assert_eq!(again.were_clear + again.were_other_key, 0);
        assert_eq!(
            store.grants.get("probe").unwrap().unwrap(),
            stored.as_bytes()
        );
    }

    #[test]
    fn a_new_key_takes_every_secret_and_the_old_one_then_opens_none() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            SecretsKey::generate().unwrap(),
            SecretsKey::generate().unwrap(),
        );
        let store = Store::open(dir.path())
            .unwrap()
            .with_secrets_key(old.clone());
        store.set_grant("probe", &grant("one")).unwrap();
        store.set_grant("other", &grant("two")).unwrap();
        store.grants.insert("legacy", CLEAR_RECORD).unwrap();
        let done = store.reseal_secrets(&new).unwrap();
        assert_eq!(
            (done.secrets, done.were_clear, done.were_other_key),
            (3, 1, 2)
        );
        assert_eq!(
            store.sealed_key_ids().unwrap(),
            [new.id().to_string()].into()
        );
        // Rotating again to the same key finds it done.
        assert_eq!(store.reseal_secrets(&new).unwrap().were_other_key, 0);
        let err = store.grant("probe").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Secret {
                    problem: SealError::OtherKey { .. },
                    ..
                }
            ),
            "{err}"
        );
        let rotated = store.with_secrets_key(new);
        assert_eq!(rotated.grant("probe").unwrap(), grant("one"));
        assert_eq!(rotated.grant("legacy").unwrap(), grant("old-plain"));
    }

    #[test]
    fn a_secret_that_does_not_open_stops_the_reseal_with_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let (old, stranger) = (
            SecretsKey::generate().unwrap(),
            SecretsKey::generate().unwrap(),
        );
        let store = Store::open(dir.path())
            .unwrap()
            .with_secrets_key(old.clone());
        store.grants.insert("legacy", CLEAR_RECORD).unwrap();
        Store {
            secrets_key: Some(Arc::new(stranger.clone())),
            ..store.clone()
        }
        .set_grant("zeta", &grant("x"))
        .unwrap();
        let before: Vec<_> = store.grants.iter().collect::<Result<_, _>>().unwrap();
        let err = store.reseal_secrets(&old).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("`zeta`"), "{message}");
        assert!(message.contains(stranger.id()), "{message}");
        let after: Vec<_> = store.grants.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            before, after,
            "the clear secret of `legacy` is untouched too"
        );
    }

    #[test]
    fn secrets_of_a_lost_key_are_listed_then_dropped_only_on_confirmation() {
        let dir = tempfile::tempdir().unwrap();
        let (lost, kept) = (
            SecretsKey::generate().unwrap(),
            SecretsKey::generate().unwrap(),
        );
        let store = Store::open(dir.path()).unwrap();
        store
            .clone()
            .with_secrets_key(lost)
            .set_grant("gone", &grant("x"))
            .unwrap();
        let store = store.with_secrets_key(kept);
        store.set_grant("kept", &grant("y")).unwrap();
        store.grants.insert("legacy", CLEAR_RECORD).unwrap();
        let named = vec![("gone".to_string(), "token".to_string())];
        assert_eq!(store.drop_unopened_secrets(false).unwrap(), named);
        assert!(
            store.grant("gone").is_err(),
            "nothing is dropped unconfirmed"
        );
        assert_eq!(store.drop_unopened_secrets(true).unwrap(), named);
        let gone = store.grant("gone").unwrap();
        assert!(gone.secrets.is_empty());
        assert_eq!(
            gone.config,
            grant("x").config,
            "the rest of the grant stays"
        );
        assert_eq!(store.grant("kept").unwrap(), grant("y"));
        assert_eq!(store.grant("legacy").unwrap(), grant("old-plain"));
        assert!(store.drop_unopened_secrets(true).unwrap().is_empty());
    }

    #[test]
    fn a_sealed_value_copied_into_another_grant_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretsKey::generate().unwrap();
        let store = Store::open(dir.path()).unwrap().with_secrets_key(key);
        store.set_grant("probe", &grant("mine")).unwrap();
        store.set_grant("thief", &Grant::default()).unwrap();
        let stolen = store.grants.get("probe").unwrap().unwrap();
        store.grants.insert("thief", stolen).unwrap();
        let err = store.grant("thief").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Secret {
                    problem: SealError::DoesNotOpen(_),
                    ..
                }
            ),
            "{err}"
        );
    }
}
