//! Applied flows: the source text of each version, as the author wrote it.

use serde::{Deserialize, Serialize};

use super::{Error, Store, decode, decode_all, encode, name_prefix};

/// One applied flow version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub name: String,
    pub version: u32,
    /// The flow file, exactly as applied; the daemon parses it again when
    /// it loads, so the file stays the single source of truth.
    pub source: String,
    pub applied_at_ms: u64,
    pub applied_by: String,
}

/// `name \0 version` with the version big-endian, so a name's versions
/// scan in order.
fn flow_key(name: &str, version: u32) -> Vec<u8> {
    let mut k = name_prefix(name);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

impl Store {
    /// Stores a flow version unless that version exists; returns the
    /// existing record when it does.
    pub fn put_flow(&self, record: &FlowRecord) -> Result<Option<FlowRecord>, Error> {
        let k = flow_key(&record.name, record.version);
        let previous = self
            .flows
            .compare_and_swap(&k, None::<&[u8]>, Some(encode(record)))?;
        match previous {
            Ok(()) => Ok(None),
            Err(e) => {
                let current = e.current.ok_or_else(|| {
                    Error::Conflict(format!(
                        "flow {}@{} changed while applying",
                        record.name, record.version
                    ))
                })?;
                Ok(Some(decode("flows", &k, &current)?))
            }
        }
    }

    /// One flow version.
    pub fn flow(&self, name: &str, version: u32) -> Result<Option<FlowRecord>, Error> {
        let k = flow_key(name, version);
        self.flows
            .get(&k)?
            .map(|v| decode("flows", &k, &v))
            .transpose()
    }

    /// Every version of one flow, oldest first.
    pub fn flow_versions(&self, name: &str) -> Result<Vec<FlowRecord>, Error> {
        decode_all("flows", self.flows.scan_prefix(name_prefix(name)))
    }

    /// Every flow version, by name then version.
    pub fn flows(&self) -> Result<Vec<FlowRecord>, Error> {
        decode_all("flows", self.flows.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u32, source: &str) -> FlowRecord {
        FlowRecord {
            name: "standard".into(),
            version,
            source: source.into(),
            applied_at_ms: 1,
            applied_by: "admin".into(),
        }
    }

    #[test]
    fn versions_are_kept_in_order_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for v in [2, 10, 1] {
            assert_eq!(store.put_flow(&record(v, "a")).unwrap(), None);
        }
        let existing = store.put_flow(&record(2, "b")).unwrap();
        assert_eq!(existing, Some(record(2, "a")));
        let versions: Vec<u32> = store
            .flow_versions("standard")
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(versions, [1, 2, 10]);
    }
}
