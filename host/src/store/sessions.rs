//! Browser sessions: a signed-in token, found by the hash of a random
//! session id that lives only in the browser's HttpOnly cookie.

use serde::{Deserialize, Serialize};

use super::{Error, Store, decode, encode};

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Hash of the token the session was opened with: revoking the token
    /// ends every session opened with it.
    pub token_hash: String,
    /// The value every state-changing request of this session must carry in
    /// its `X-CSRF-Token` header.
    pub csrf: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

impl Store {
    /// Stores a session under the hash of its id.
    pub fn put_session(&self, id_hash: &str, record: &SessionRecord) -> Result<(), Error> {
        self.sessions.insert(id_hash.as_bytes(), encode(record))?;
        Ok(())
    }

    /// The session whose id has this hash.
    pub fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, Error> {
        self.sessions
            .get(id_hash.as_bytes())?
            .map(|v| decode("sessions", id_hash.as_bytes(), &v))
            .transpose()
    }

    /// Ends a session; true if there was one.
    pub fn delete_session(&self, id_hash: &str) -> Result<bool, Error> {
        Ok(self.sessions.remove(id_hash.as_bytes())?.is_some())
    }

    /// Forgets sessions that expired before `now_ms`; returns how many.
    pub fn purge_sessions(&self, now_ms: u64) -> Result<usize, Error> {
        let mut purged = 0;
        for item in self.sessions.iter() {
            let (k, v) = item?;
            let record: SessionRecord = decode("sessions", &k, &v)?;
            if record.expires_ms < now_ms {
                self.sessions.remove(k)?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_survive_a_reopen_and_expired_ones_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let record = |expires_ms| SessionRecord {
            token_hash: "t".into(),
            csrf: "c".into(),
            created_ms: 1,
            expires_ms,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_session("old", &record(10)).unwrap();
            store.put_session("new", &record(1_000)).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.session("new").unwrap(), Some(record(1_000)));
        assert_eq!(store.purge_sessions(500).unwrap(), 1);
        assert_eq!(store.session("old").unwrap(), None);
        assert!(store.delete_session("new").unwrap());
        assert!(!store.delete_session("new").unwrap());
    }
}
