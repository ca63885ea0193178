//! The inventory: each application's environments and their targets, keyed
//! `application \0 environment`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Error, Store, decode, decode_all, encode, key};
use crate::domain::inventory::Environment;
use crate::domain::plugin::Target;

#[derive(Serialize, Deserialize)]
struct TargetRecord {
    id: String,
    address: String,
    group: String,
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct EnvironmentRecord {
    application: String,
    name: String,
    targets: Vec<TargetRecord>,
    live_group: Option<String>,
    current_version: Option<String>,
    #[serde(default)]
    version_unknown: Option<String>,
}

impl From<&Environment> for EnvironmentRecord {
    fn from(e: &Environment) -> EnvironmentRecord {
        EnvironmentRecord {
            application: e.application.clone(),
            name: e.name.clone(),
            targets: e
                .targets
                .iter()
                .map(|t| TargetRecord {
                    id: t.id.clone(),
                    address: t.address.clone(),
                    group: t.group.clone(),
                    labels: t.labels.iter().cloned().collect(),
                    attributes: t.attributes.iter().cloned().collect(),
                })
                .collect(),
            live_group: e.live_group.clone(),
            current_version: e.current_version.clone(),
            version_unknown: e.version_unknown.clone(),
        }
    }
}

impl From<EnvironmentRecord> for Environment {
    fn from(r: EnvironmentRecord) -> Environment {
        Environment {
            application: r.application,
            name: r.name,
            targets: r
                .targets
                .into_iter()
                .map(|t| Target {
                    id: t.id,
                    address: t.address,
                    group: t.group,
                    labels: t.labels.into_iter().collect(),
                    attributes: t.attributes.into_iter().collect(),
                })
                .collect(),
            live_group: r.live_group,
            current_version: r.current_version,
            version_unknown: r.version_unknown,
        }
    }
}

/// Runs a read-modify-write on one tree, passing our own errors through.
fn transact<T>(
    tree: &sled::Tree,
    f: impl Fn(&sled::transaction::TransactionalTree) -> Result<T, ConflictableTransactionError<Error>>,
) -> Result<T, Error> {
    tree.transaction(f).map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => Error::Sled(e),
    })
}

impl Store {
    /// Stores an environment, replacing its targets and live group but
    /// keeping the version a release left running there. Returns whether
    /// the environment is new.
    pub fn put_environment(&self, environment: &Environment) -> Result<bool, Error> {
        let k = key(&[&environment.application, &environment.name]);
        transact(&self.inventory, |tx| {
            let mut record = EnvironmentRecord::from(environment);
            let existing = tx.get(&k)?;
            if let Some(bytes) = &existing {
                let current: EnvironmentRecord =
                    decode("inventory", &k, bytes).map_err(ConflictableTransactionError::Abort)?;
                record.current_version = current.current_version;
                record.version_unknown = current.version_unknown;
            }
            tx.insert(k.as_slice(), encode(&record))?;
            Ok(existing.is_none())
        })
    }

    /// One environment of an application.
    pub fn environment(
        &self,
        application: &str,
        environment: &str,
    ) -> Result<Option<Environment>, Error> {
        let k = key(&[application, environment]);
        self.inventory
            .get(&k)?
            .map(|v| decode::<EnvironmentRecord>("inventory", &k, &v).map(Into::into))
            .transpose()
    }

    /// Every environment, by application then name.
    pub fn environments(&self) -> Result<Vec<Environment>, Error> {
        let records: Vec<EnvironmentRecord> = decode_all("inventory", self.inventory.iter())?;
        Ok(records.into_iter().map(Into::into).collect())
    }

    /// Removes an environment; returns whether it existed.
    pub fn delete_environment(&self, application: &str, environment: &str) -> Result<bool, Error> {
        Ok(self
            .inventory
            .remove(key(&[application, environment]))?
            .is_some())
    }

    /// Records what a successful release left behind: the version now
    /// running and, when the release moved traffic, the group now live
    /// (`None` keeps the live group as it was).
    pub fn set_release_outcome(
        &self,
        application: &str,
        environment: &str,
        current_version: &str,
        live_group: Option<String>,
    ) -> Result<(), Error> {
        transact(&self.inventory, |tx| {
            record_outcome(
                tx,
                application,
                environment,
                Some(current_version),
                live_group.as_deref(),
                None,
            )
        })
    }
}

/// Within a transaction on the inventory tree: records a release's outcome.
pub(super) fn record_outcome(
    tx: &sled::transaction::TransactionalTree,
    application: &str,
    environment: &str,
    current_version: Option<&str>,
    live_group: Option<&str>,
    version_unknown: Option<&str>,
) -> Result<(), ConflictableTransactionError<Error>> {
    let k = key(&[application, environment]);
    let bytes = tx.get(&k)?.ok_or_else(|| {
        ConflictableTransactionError::Abort(Error::NotFound(format!(
            "no environment `{environment}` in application `{application}`"
        )))
    })?;
    let mut record: EnvironmentRecord =
        decode("inventory", &k, &bytes).map_err(ConflictableTransactionError::Abort)?;
    record.current_version = current_version.map(str::to_string);
    record.version_unknown = version_unknown.map(str::to_string);
    if let Some(live) = live_group {
        record.live_group = Some(live.to_string());
    }
    tx.insert(k.as_slice(), encode(&record))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(application: &str, name: &str, ids: &[&str]) -> Environment {
        Environment {
            application: application.into(),
            name: name.into(),
            targets: ids
                .iter()
                .map(|id| Target {
                    id: id.to_string(),
                    address: format!("{id}:80"),
                    group: "blue".into(),
                    labels: vec![("zone".into(), "eu-1".into())],
                    attributes: vec![],
                })
                .collect(),
            live_group: Some("blue".into()),
            current_version: None,
            version_unknown: None,
        }
    }

    #[test]
    fn environments_round_trip_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for (app, name) in [("shop", "prod"), ("shop-eu", "beta"), ("shop", "beta")] {
                assert!(store.put_environment(&env(app, name, &["a"])).unwrap());
            }
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let order: Vec<(String, String)> = store
            .environments()
            .unwrap()
            .into_iter()
            .map(|e| (e.application, e.name))
            .collect();
        assert_eq!(
            order,
            [
                ("shop".into(), "beta".into()),
                ("shop".into(), "prod".into()),
                ("shop-eu".into(), "beta".into()),
            ]
        );
        assert_eq!(
            store.environment("shop", "prod").unwrap(),
            Some(env("shop", "prod", &["a"]))
        );
        assert_eq!(store.environment("shop", "qa").unwrap(), None);
    }

    #[test]
    fn replacing_keeps_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_environment(&env("shop", "prod", &["a"])).unwrap();
        store
            .set_release_outcome("shop", "prod", "2.0.0", Some("green".into()))
            .unwrap();
        assert!(
            !store
                .put_environment(&env("shop", "prod", &["a", "b"]))
                .unwrap()
        );
        let stored = store.environment("shop", "prod").unwrap().unwrap();
        assert_eq!(stored.current_version.as_deref(), Some("2.0.0"));
        assert_eq!(stored.live_group.as_deref(), Some("blue"));
        assert_eq!(stored.targets.len(), 2);

        store
            .set_release_outcome("shop", "prod", "2.1.0", None)
            .unwrap();
        let stored = store.environment("shop", "prod").unwrap().unwrap();
        assert_eq!(stored.current_version.as_deref(), Some("2.1.0"));
        assert_eq!(stored.live_group.as_deref(), Some("blue"));
    }

    #[test]
    fn deleted_environments_are_gone_for_the_engine_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_environment(&env("shop", "prod", &["a"])).unwrap();
        assert!(store.delete_environment("shop", "prod").unwrap());
        assert!(!store.delete_environment("shop", "prod").unwrap());
        let err = store
            .set_release_outcome("shop", "prod", "2.0.0", None)
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        assert!(store.environments().unwrap().is_empty());
    }
}
