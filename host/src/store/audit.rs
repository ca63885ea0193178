//! The audit log: one entry per state-changing request, allowed or not, in
//! the order they were made, kept within a size and an age
//! ([`AuditRetention`]), and read newest first a page at a time.

use std::sync::{Arc, Mutex, MutexGuard};

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
    /// `allowed`, `denied` (not authenticated, not authorized, or no such
    /// route or method) or `refused` (any other error).
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
    /// Only entries before this sequence number: the cursor of the next
    /// page.
    pub before: Option<u64>,
    pub limit: usize,
}

/// One page of the log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Where the next (older) page starts, as `before`; none once the log
    /// has nothing older to read.
    pub next_before: Option<u64>,
}

/// How much of the log is kept: entries beyond either bound are removed,
/// oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    /// Entries older than this, against the newest entry's time (or the
    /// time a sweep is given), go.
    pub max_age_ms: Option<u64>,
    /// The most the stored entries (keys and records) may take.
    pub max_bytes: u64,
}

/// The most entries one page reads, matching or not: a page whose filter
/// matches little ends early, with its cursor, rather than reading the
/// whole log in one request.
const SCAN_PER_PAGE: usize = 10_000;

/// What the log's retention needs to know, behind one lock that appends
/// also take, so that counting and removing never interleave.
#[derive(Default)]
pub(super) struct Keeper {
    retention: Option<AuditRetention>,
    /// The bytes the entries take, counted once retention is set.
    bytes: u64,
}

pub(super) type SharedKeeper = Arc<Mutex<Keeper>>;

/// Only the time of an entry, read without the rest.
#[derive(Deserialize)]
struct At {
    at_ms: u64,
}

impl Store {
    fn keeper(&self) -> MutexGuard<'_, Keeper> {
        self.audit_keeper
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps the log within `retention` from now on, and removes what is
    /// already beyond it (`now_ms` judges age). Counts the log's size once,
    /// which reads every entry's key and length.
    pub fn set_audit_retention(
        &self,
        retention: AuditRetention,
        now_ms: u64,
    ) -> Result<usize, Error> {
        let mut keeper = self.keeper();
        let mut bytes = 0u64;
        for item in self.audit.iter() {
            let (k, v) = item?;
            bytes += (k.len() + v.len()) as u64;
        }
        keeper.bytes = bytes;
        keeper.retention = Some(retention);
        self.prune_audit_locked(&mut keeper, now_ms)
    }

    /// Removes the entries older than the retention's age at `now_ms` (a
    /// sweep for when nothing is appended); how many went.
    pub fn sweep_audit(&self, now_ms: u64) -> Result<usize, Error> {
        let mut keeper = self.keeper();
        self.prune_audit_locked(&mut keeper, now_ms)
    }

    /// The bytes the log's entries take, as retention counts them (0
    /// until retention is set).
    pub fn audit_bytes(&self) -> u64 {
        self.keeper().bytes
    }

    fn prune_audit_locked(&self, keeper: &mut Keeper, now_ms: u64) -> Result<usize, Error> {
        let Some(retention) = keeper.retention else {
            return Ok(0);
        };
        let mut removed = 0;
        while let Some((k, v)) = self.audit.first()? {
            let too_big = keeper.bytes > retention.max_bytes;
            let too_old = !too_big
                && retention.max_age_ms.is_some_and(|age| {
                    // An entry that cannot be read is kept: it is not ours
                    // to judge, and the reader reports it.
                    decode::<At>("audit", &k, &v)
                        .is_ok_and(|e| e.at_ms.saturating_add(age) < now_ms)
                });
            if !(too_big || too_old) {
                break;
            }
            if let Some(old) = self.audit.remove(&k)? {
                keeper.bytes = keeper.bytes.saturating_sub((k.len() + old.len()) as u64);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Appends an entry; its sequence number comes from the database's
    /// monotonic id generator, so entries sort in order. Then the oldest
    /// entries beyond the retention go, the new entry's time judging age.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<u64, Error> {
        let seq = self.db.generate_id()? + 1;
        let entry = AuditEntry {
            seq,
            ..entry.clone()
        };
        let key = seq.to_be_bytes();
        let value = encode(&entry);
        let mut keeper = self.keeper();
        let size = (key.len() + value.len()) as u64;
        self.audit.insert(key, value)?;
        if keeper.retention.is_some() {
            keeper.bytes += size;
            self.prune_audit_locked(&mut keeper, entry.at_ms)?;
        }
        Ok(seq)
    }

    /// A page of the entries matching the filter, newest first: at most
    /// `limit`, older than `before` when given. The page ends early, with
    /// a cursor, once it has read [`SCAN_PER_PAGE`] entries.
    pub fn audit(&self, filter: &AuditFilter) -> Result<AuditPage, Error> {
        let limit = filter.limit.max(1);
        let end = filter.before.unwrap_or(u64::MAX);
        let mut page = AuditPage::default();
        let mut scanned = 0;
        let mut last_seen = None;
        for item in self.audit.range(..end.to_be_bytes()).rev() {
            let (k, v) = item?;
            let entry: AuditEntry = decode("audit", &k, &v)?;
            scanned += 1;
            last_seen = Some(entry.seq);
            let keep = filter
                .release
                .as_ref()
                .is_none_or(|r| entry.release.as_ref() == Some(r))
                && filter.actor.as_ref().is_none_or(|a| entry.actor == *a)
                && filter.since_ms.is_none_or(|t| entry.at_ms >= t)
                && filter.until_ms.is_none_or(|t| entry.at_ms <= t);
            if keep {
                page.entries.push(entry);
            }
            if page.entries.len() >= limit || scanned >= SCAN_PER_PAGE {
                break;
            }
        }
        // Stopped before the start of the log: the next page goes on from
        // the last entry read, if anything older is left.
        if let Some(seq) = last_seen
            && (page.entries.len() >= limit || scanned >= SCAN_PER_PAGE)
            && self.audit.range(..seq.to_be_bytes()).next_back().is_some()
        {
            page.next_before = Some(seq);
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, target: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms,
            actor: "anonymous".into(),
            role: None,
            action: "POST /x".into(),
            target: target.into(),
            from: None,
            outcome: "denied".into(),
            status: 401,
            code: None,
            release: None,
            comment: None,
        }
    }

    fn seqs(store: &Store) -> Vec<u64> {
        store
            .audit(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .entries
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn the_oldest_entries_go_beyond_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store.append_audit(&entry(1, "/before")).unwrap();
        store
            .set_audit_retention(
                AuditRetention {
                    max_age_ms: None,
                    max_bytes: 4096,
                },
                1,
            )
            .unwrap();
        let mut last = 0;
        for i in 0..100 {
            last = store.append_audit(&entry(2 + i, &"p".repeat(100))).unwrap();
        }
        assert!(store.audit_bytes() <= 4096, "{}", store.audit_bytes());
        let kept = seqs(&store);
        assert_eq!(kept[0], last, "the newest is kept");
        assert!(!kept.contains(&first), "the oldest went first");
        // What is kept is the newest, without gaps.
        assert!(kept.windows(2).all(|w| w[0] == w[1] + 1), "{kept:?}");
        // Reopened, the count starts over from what is stored.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        store
            .set_audit_retention(
                AuditRetention {
                    max_age_ms: None,
                    max_bytes: 2048,
                },
                1,
            )
            .unwrap();
        assert!(store.audit_bytes() <= 2048);
        assert!(seqs(&store).len() < kept.len());
    }

    #[test]
    fn entries_older_than_the_age_go_on_append_and_on_a_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .set_audit_retention(
                AuditRetention {
                    max_age_ms: Some(1000),
                    max_bytes: u64::MAX,
                },
                0,
            )
            .unwrap();
        store.append_audit(&entry(100, "/old")).unwrap();
        let mid = store.append_audit(&entry(900, "/mid")).unwrap();
        let new = store.append_audit(&entry(1500, "/new")).unwrap();
        assert_eq!(
            seqs(&store),
            vec![new, mid],
            "the entry of 100 is past 1000 ms"
        );
        assert_eq!(store.sweep_audit(2000).unwrap(), 1);
        assert_eq!(seqs(&store), vec![new]);
    }

    #[test]
    fn pages_cover_the_log_once_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..25 {
            store
                .append_audit(&entry(i, if i % 2 == 0 { "/even" } else { "/odd" }))
                .unwrap();
        }
        let mut before = None;
        let mut seen = Vec::new();
        loop {
            let page = store
                .audit(&AuditFilter {
                    before,
                    limit: 7,
                    ..Default::default()
                })
                .unwrap();
            seen.extend(page.entries.iter().map(|e| e.seq));
            match page.next_before {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        let all = seqs(&store);
        assert_eq!(seen, all);
        assert_eq!(all.len(), 25);
        // The last full page ends the log without a cursor.
        let page = store
            .audit(&AuditFilter {
                before: Some(all[24 - 4]),
                limit: 4,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.entries.len(), 4);
        assert_eq!(page.next_before, None);
    }
}
