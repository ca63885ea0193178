//! The audit log: one append-only entry per state-changing request, allowed
//! or not, in the order they were made.

use serde::{Deserialize, Serialize};

use super::{Error, Store, decode, encode};

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from one.
    #[serde(default)]
    pub seq: u64,
    pub at_ms: u64,
    /// The token's name, or `anonymous` when none was valid.
    pub actor: String,
    pub role: Option<String>,
    /// `METHOD /route/{param}`.
    pub action: String,
    /// The path as requested.
    pub target: String,
    /// The caller's address.
    pub from: Option<String>,
    /// `allowed`, `denied` (401/403) or `refused` (any other error).
    pub outcome: String,
    pub status: u16,
    /// The error code, when refused or denied.
    pub code: Option<String>,
    /// The release concerned, if any.
    pub release: Option<String>,
    /// The comment given (approvals, rejections, rollbacks).
    pub comment: Option<String>,
}

/// What to read from the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub release: Option<String>,
    pub actor: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub limit: usize,
}

impl Store {
    /// Appends an entry; its sequence number comes from the database's
    /// monotonic id generator, so entries sort in order.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<u64, Error> {
        let seq = self.db.generate_id()? + 1;
        let entry = AuditEntry {
            seq,
            ..entry.clone()
        };
        self.audit.insert(seq.to_be_bytes(), encode(&entry))?;
        Ok(seq)
    }

    /// Entries matching the filter, newest first, at most `limit`.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, Error> {
        let mut out = Vec::new();
        for item in self.audit.iter().rev() {
            let (k, v) = item?;
            let entry: AuditEntry = decode("audit", &k, &v)?;
            let keep = filter
                .release
                .as_ref()
                .is_none_or(|r| entry.release.as_ref() == Some(r))
                && filter.actor.as_ref().is_none_or(|a| entry.actor == *a)
                && filter.since_ms.is_none_or(|t| entry.at_ms >= t)
                && filter.until_ms.is_none_or(|t| entry.at_ms <= t);
            if keep {
                out.push(entry);
                if out.len() >= filter.limit.max(1) {
                    break;
                }
            }
        }
        Ok(out)
    }
}
