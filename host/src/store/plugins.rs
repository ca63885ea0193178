//! Plugin versions, their component bytes (deduplicated by digest) and
//! their grants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::seal::Sealed;
use super::{Error, Store, decode, decode_all, encode, key, name_prefix};
use crate::domain::grant::{Grant, LimitOverrides, Origin, OriginTls};

/// One uploaded plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub name: String,
    pub version: String,
    /// `sha256:` followed by the hex digest of the component bytes.
    pub digest: String,
    /// The world it implements, as a kind name (`check`, `deployer`…).
    pub kind: String,
    pub size_bytes: u64,
    pub imports: Vec<String>,
    pub uploaded_at_ms: u64,
    pub uploaded_by: String,
    /// The component's stack size, when it says; absent from records
    /// stored before it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_bytes: Option<u64>,
    /// Who let this version run under the plugin's grant, and when; `None`
    /// while it waits for an admin. Versions stored before approvals existed
    /// already ran under the grant, so they read as approved.
    #[serde(default = "Approval::before_approvals")]
    pub approval: Option<Approval>,
}

/// An admin's approval of a plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub at_ms: u64,
}

impl Approval {
    /// What a version stored before approvals existed reads as.
    fn before_approvals() -> Option<Approval> {
        Some(Approval {
            by: "(stored before approvals)".to_string(),
            at_ms: 0,
        })
    }
}

/// What storing a plugin version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new version was stored.
    Created,
    /// The same bytes were already stored under this name and version.
    Unchanged,
}

/// How a grant reaches one private HTTPS origin, as stored.
#[derive(Serialize, Deserialize, Clone)]
struct TlsRecord {
    origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_cert_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key_secret: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
pub(super) struct GrantRecord {
    allowed_hosts: Vec<String>,
    /// Private HTTPS origins; absent from grants stored before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tls: Vec<TlsRecord>,
    config: BTreeMap<String, String>,
    /// Secrets in the clear, as releases before sealing stored them; read,
    /// and sealed on the next start or write, never written again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) secrets: BTreeMap<String, String>,
    /// Secrets sealed with the store's secrets key (`seal.rs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) sealed_secrets: BTreeMap<String, Sealed>,
    deadline_ms: Option<u64>,
    memory_mib: Option<u64>,
    max_output_bytes: Option<u64>,
    max_outbound_requests: Option<u32>,
    /// Whether the plugin may call its releases' targets; absent from
    /// grants stored before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    release_targets: bool,
}

impl Store {
    /// Stores a plugin version and its bytes atomically. A version is
    /// immutable: the same bytes again is `Unchanged`, other bytes a conflict.
    /// Only the plugin's owners (or an admin) publish under its name; the
    /// first to publish a name owns it.
    pub fn put_plugin(
        &self,
        record: &PluginRecord,
        bytes: &[u8],
        by_admin: bool,
    ) -> Result<PutOutcome, Error> {
        let k = key(&[&record.name, &record.version]);
        let value = encode(record);
        let owners = self.owners_or_uploaders(&record.name)?;
        let result = (&self.plugins, &self.blobs, &self.plugin_owners).transaction(|(plugins, blobs, owners_tree)| {
            let stored_owners = owners_tree.get(record.name.as_bytes())?;
            let owners = match &stored_owners {
                Some(bytes) => super::plugin_access::decode_owners(&record.name, bytes)
                    .map_err(ConflictableTransactionError::Abort)?,
                None if owners.is_empty() => vec![record.uploaded_by.clone()],
                None => owners.clone(),
            };
            if !by_admin && !owners.contains(&record.uploaded_by) {
                return Err(ConflictableTransactionError::Abort(Error::NotOwner(format!(
                    "plugin `{}` belongs to {}; `{}` is not among its owners, so ask an admin to add it (greenlight plugin owners {} --add {})",
                    record.name,
                    owners.join(", "),
                    record.uploaded_by,
                    record.name,
                    record.uploaded_by
                ))));
            }
            if let Some(existing) = plugins.get(&k)? {
                let existing: PluginRecord = decode("plugins", &k, &existing)
                    .map_err(ConflictableTransactionError::Abort)?;
                if existing.digest == record.digest {
                    return Ok(PutOutcome::Unchanged);
                }
                return Err(ConflictableTransactionError::Abort(Error::Conflict(format!(
                    "{}@{} already exists with digest {}; versions are immutable, upload under a new version",
                    record.name, record.version, existing.digest
                ))));
            }
            if blobs.get(record.digest.as_bytes())?.is_none() {
                blobs.insert(record.digest.as_bytes(), bytes)?;
            }
            if stored_owners.is_none() {
                owners_tree.insert(
                    record.name.as_bytes(),
                    super::plugin_access::encode_owners(&owners),
                )?;
            }
            plugins.insert(k.as_slice(), value.as_slice())?;
            Ok(PutOutcome::Created)
        });
        match result {
            Ok(outcome) => Ok(outcome),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
        }
    }

    /// One plugin version.
    pub fn plugin(&self, name: &str, version: &str) -> Result<Option<PluginRecord>, Error> {
        let k = key(&[name, version]);
        self.plugins
            .get(&k)?
            .map(|v| decode("plugins", &k, &v))
            .transpose()
    }

    /// Every plugin version, in name order.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>, Error> {
        decode_all("plugins", self.plugins.iter())
    }

    /// Every version of one plugin.
    pub fn plugin_versions(&self, name: &str) -> Result<Vec<PluginRecord>, Error> {
        decode_all("plugins", self.plugins.scan_prefix(name_prefix(name)))
    }

    /// Whether any version of a plugin is stored, without reading them.
    pub fn has_plugin(&self, name: &str) -> Result<bool, Error> {
        Ok(self
            .plugins
            .scan_prefix(name_prefix(name))
            .next()
            .transpose()?
            .is_some())
    }

    /// The component bytes with this digest.
    pub fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.blobs.get(digest.as_bytes())?.map(|v| v.to_vec()))
    }

    /// A plugin's grant; the empty grant when none was set.
    pub fn grant(&self, name: &str) -> Result<Grant, Error> {
        let Some(bytes) = self.grants.get(name.as_bytes())? else {
            return Ok(Grant::default());
        };
        let r: GrantRecord = decode("grants", name.as_bytes(), &bytes)?;
        let secrets = self.open_secrets(name, &r)?;
        let allowed_hosts = r
            .allowed_hosts
            .iter()
            .map(|o| Origin::parse(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| Error::Corrupt {
                tree: "grants",
                key: name.to_string(),
                problem,
            })?;
        let tls = r
            .tls
            .iter()
            .map(|t| {
                Ok(OriginTls {
                    origin: Origin::parse(&t.origin)?,
                    ca_pem: t.ca_pem.clone(),
                    client_cert_secret: t.client_cert_secret.clone(),
                    client_key_secret: t.client_key_secret.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|problem| Error::Corrupt {
                tree: "grants",
                key: name.to_string(),
                problem,
            })?;
        Ok(Grant {
            allowed_hosts,
            tls,
            config: r.config,
            secrets,
            limits: LimitOverrides {
                deadline_ms: r.deadline_ms,
                memory_mib: r.memory_mib,
                max_output_bytes: r.max_output_bytes,
                max_outbound_requests: r.max_outbound_requests,
            },
            release_targets: r.release_targets,
        })
    }

    /// Replaces a plugin's grant, its secrets sealed.
    pub fn set_grant(&self, name: &str, grant: &Grant) -> Result<(), Error> {
        let record = GrantRecord {
            allowed_hosts: grant.allowed_hosts.iter().map(|o| o.to_string()).collect(),
            tls: grant
                .tls
                .iter()
                .map(|t| TlsRecord {
                    origin: t.origin.to_string(),
                    ca_pem: t.ca_pem.clone(),
                    client_cert_secret: t.client_cert_secret.clone(),
                    client_key_secret: t.client_key_secret.clone(),
                })
                .collect(),
            config: grant.config.clone(),
            secrets: BTreeMap::new(),
            sealed_secrets: self.seal_secrets(name, &grant.secrets)?,
            deadline_ms: grant.limits.deadline_ms,
            memory_mib: grant.limits.memory_mib,
            max_output_bytes: grant.limits.max_output_bytes,
            max_outbound_requests: grant.limits.max_outbound_requests,
            release_targets: grant.release_targets,
        };
        self.grants.insert(name.as_bytes(), encode(&record))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stored_before_the_stack_was_read_still_reads() {
        let old = r#"{"name":"probe","version":"1.0.0","digest":"sha256:aa","kind":"check",
            "size_bytes":3,"imports":[],"uploaded_at_ms":0,"uploaded_by":"test"}"#;
        let record: PluginRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.stack_bytes, None);
        assert_eq!(record.name, "probe");
    }

    fn record(name: &str, version: &str, digest: &str) -> PluginRecord {
        PluginRecord {
            name: name.into(),
            version: version.into(),
            digest: digest.into(),
            kind: "check".into(),
            size_bytes: 3,
            imports: vec![],
            uploaded_at_ms: 1,
            uploaded_by: "admin".into(),
            stack_bytes: Some(65536),
            approval: None,
        }
    }

    #[test]
    fn versions_are_immutable_and_identical_bytes_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = record("probe", "1.0.0", "sha256:aa");
        assert_eq!(
            store.put_plugin(&r, b"abc", false).unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.put_plugin(&r, b"abc", false).unwrap(),
            PutOutcome::Unchanged
        );
        let other = record("probe", "1.0.0", "sha256:bb");
        let err = store.put_plugin(&other, b"xyz", false).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        // The first upload is untouched by the refused one.
        assert_eq!(store.plugin("probe", "1.0.0").unwrap(), Some(r));
        assert_eq!(store.blob("sha256:aa").unwrap(), Some(b"abc".to_vec()));
        assert_eq!(store.blob("sha256:bb").unwrap(), None);
    }

    #[test]
    fn versions_of_one_plugin_do_not_include_prefixed_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_plugin(&record("probe", "1.0.0", "sha256:aa"), b"a", false)
            .unwrap();
        store
            .put_plugin(&record("probe-two", "1.0.0", "sha256:aa"), b"a", false)
            .unwrap();
        assert_eq!(store.plugin_versions("probe").unwrap().len(), 1);
        assert_eq!(store.plugins().unwrap().len(), 2);
    }

    #[test]
    fn grants_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::store::SecretsKey::generate().unwrap();
        let store = Store::open(dir.path()).unwrap().with_secrets_key(key);
        assert_eq!(store.grant("probe").unwrap(), Grant::default());
        let grant = Grant {
            tls: Vec::new(),
            allowed_hosts: vec![Origin::parse("http://127.0.0.1:9").unwrap()],
            config: [("k".to_string(), "v".to_string())].into(),
            secrets: [("token".to_string(), "s3cret".to_string())].into(),
            limits: LimitOverrides {
                memory_mib: Some(64),
                ..Default::default()
            },
            release_targets: true,
        };
        store.set_grant("probe", &grant).unwrap();
        assert_eq!(store.grant("probe").unwrap(), grant);
    }
}
