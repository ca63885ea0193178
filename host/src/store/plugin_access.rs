//! Who may publish under a plugin's name (its owners) and which of its
//! versions run under its grant (those an admin approved).

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::plugins::Approval;
use super::{Error, PluginRecord, Store, decode, encode, key};

/// The stored owners of a plugin name.
#[derive(Serialize, Deserialize)]
pub(super) struct OwnersRecord {
    pub owners: Vec<String>,
}

/// Reads an owners record.
pub(super) fn decode_owners(name: &str, bytes: &[u8]) -> Result<Vec<String>, Error> {
    decode::<OwnersRecord>("plugin_owners", name.as_bytes(), bytes).map(|r| r.owners)
}

/// Writes an owners record.
pub(super) fn encode_owners(owners: &[String]) -> Vec<u8> {
    encode(&OwnersRecord {
        owners: owners.to_vec(),
    })
}

impl Store {
    /// A plugin's owners. A plugin published before owners were kept is
    /// owned by everyone who uploaded a version of it.
    pub fn plugin_owners(&self, name: &str) -> Result<Vec<String>, Error> {
        self.owners_or_uploaders(name)
    }

    /// The stored owners, or the uploaders of the stored versions when none
    /// are stored yet (empty for a new name).
    pub(super) fn owners_or_uploaders(&self, name: &str) -> Result<Vec<String>, Error> {
        if let Some(bytes) = self.plugin_owners.get(name.as_bytes())? {
            return decode_owners(name, &bytes);
        }
        let mut uploaders: Vec<String> = self
            .plugin_versions(name)?
            .into_iter()
            .map(|r| r.uploaded_by)
            .collect();
        uploaders.sort();
        uploaders.dedup();
        Ok(uploaders)
    }

    /// Replaces a plugin's owners.
    pub fn set_plugin_owners(&self, name: &str, owners: &[String]) -> Result<(), Error> {
        self.plugin_owners
            .insert(name.as_bytes(), encode_owners(owners))?;
        Ok(())
    }

    /// Records an admin's approval of a version, unless one is recorded
    /// already (the first approval stands). `None` when there is no such
    /// version.
    pub fn approve_plugin(
        &self,
        name: &str,
        version: &str,
        approval: &Approval,
    ) -> Result<Option<PluginRecord>, Error> {
        let k = key(&[name, version]);
        let result = self.plugins.transaction(|plugins| {
            let Some(bytes) = plugins.get(&k)? else {
                return Ok(None);
            };
            let mut record: PluginRecord =
                decode("plugins", &k, &bytes).map_err(ConflictableTransactionError::Abort)?;
            if record.approval.is_none() {
                record.approval = Some(approval.clone());
                plugins.insert(k.as_slice(), encode(&record))?;
            }
            Ok(Some(record))
        });
        match result {
            Ok(record) => Ok(record),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PutOutcome;

    fn record(name: &str, version: &str, by: &str) -> PluginRecord {
        PluginRecord {
            name: name.into(),
            version: version.into(),
            digest: format!("sha256:{version}"),
            kind: "check".into(),
            size_bytes: 1,
            imports: vec![],
            uploaded_at_ms: 1,
            uploaded_by: by.into(),
            stack_bytes: None,
            approval: None,
        }
    }

    #[test]
    fn the_first_publisher_owns_a_name_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let put = |version: &str, by: &str, admin: bool| {
            store.put_plugin(&record("probe", version, by), b"x", admin)
        };
        assert_eq!(put("1.0.0", "alice", false).unwrap(), PutOutcome::Created);
        assert_eq!(store.plugin_owners("probe").unwrap(), ["alice"]);
        let err = put("1.0.1", "mallory", false).unwrap_err();
        assert!(matches!(err, Error::NotOwner(_)), "{err}");
        assert!(err.to_string().contains("belongs to alice"), "{err}");
        assert_eq!(store.plugin("probe", "1.0.1").unwrap(), None);
        // An admin publishes anywhere without taking the name over.
        assert_eq!(put("1.0.2", "root", true).unwrap(), PutOutcome::Created);
        assert_eq!(store.plugin_owners("probe").unwrap(), ["alice"]);
        store
            .set_plugin_owners("probe", &["alice".into(), "mallory".into()])
            .unwrap();
        assert_eq!(put("1.0.1", "mallory", false).unwrap(), PutOutcome::Created);
    }

    #[test]
    fn a_plugin_from_before_owners_is_owned_by_its_uploaders() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // As an older daemon stored it: versions, no owners record.
        for (version, by) in [("1.0.0", "alice"), ("1.1.0", "bob")] {
            let r = record("probe", version, by);
            store
                .plugins
                .insert(key(&["probe", version]), encode(&r))
                .unwrap();
        }
        assert_eq!(store.plugin_owners("probe").unwrap(), ["alice", "bob"]);
        store
            .put_plugin(&record("probe", "1.2.0", "bob"), b"x", false)
            .unwrap();
        assert!(
            store
                .put_plugin(&record("probe", "1.3.0", "carol"), b"x", false)
                .is_err()
        );
    }

    #[test]
    fn an_approval_is_kept_once_and_old_records_read_as_approved() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_plugin(&record("probe", "1.0.0", "alice"), b"x", false)
            .unwrap();
        assert_eq!(
            store.plugin("probe", "1.0.0").unwrap().unwrap().approval,
            None
        );
        let first = Approval {
            by: "root".into(),
            at_ms: 5,
        };
        let approved = store.approve_plugin("probe", "1.0.0", &first).unwrap();
        assert_eq!(approved.unwrap().approval, Some(first.clone()));
        let again = Approval {
            by: "other".into(),
            at_ms: 9,
        };
        let kept = store.approve_plugin("probe", "1.0.0", &again).unwrap();
        assert_eq!(kept.unwrap().approval, Some(first));
        assert_eq!(
            store.approve_plugin("probe", "9.9.9", &again).unwrap(),
            None
        );

        let old = r#"{"name":"probe","version":"0.1.0","digest":"sha256:aa","kind":"check",
            "size_bytes":3,"imports":[],"uploaded_at_ms":0,"uploaded_by":"test"}"#;
        let old: PluginRecord = serde_json::from_str(old).unwrap();
        assert!(old.approval.is_some());
    }
}
