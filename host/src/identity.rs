//! Who may call: API tokens and the browser sessions opened with them.
//! Minting and hashing secrets, creating and revoking tokens, opening and
//! ending sessions live here, so the API's token and session routes only
//! extract, call and map, and the daemon's first admin token is made the
//! same way as every other.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::{self, Role, SessionRecord, Store, TokenRecord};

/// How long a browser stays signed in.
pub const SESSION_MS: u64 = 12 * 60 * 60 * 1000;

/// Why a token or session operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field is not acceptable; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A token of that name exists.
    #[error("{0}")]
    Exists(String),
    /// No token of that name.
    #[error("no token named `{0}`")]
    NotFound(String),
    /// A token may not revoke itself, which would lock its holder out.
    #[error("a token cannot revoke itself; use another admin token")]
    SelfRevoke,
    /// The token presented to sign in is unknown or revoked.
    #[error("token: unknown or revoked")]
    Unknown,
    /// The system gave no randomness for a secret.
    #[error("no randomness for a secret: {0}")]
    Randomness(String),
    /// The first admin token could not be kept where its holder finds it.
    #[error("the first admin token cannot be written: {0}")]
    Keep(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The hash a token (or session id) is stored under; the secret itself is
/// never stored.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// A new random token: `glt_` and 32 random bytes in hex.
pub fn new_secret() -> Result<String, Error> {
    Ok(format!("glt_{}", random_hex()?))
}

/// A session just opened: the token it was opened with, the id to give the
/// browser (never stored), and what is stored under the id's hash.
pub struct OpenedSession {
    pub token: TokenRecord,
    pub id: String,
    pub session: SessionRecord,
}

/// What a request was let in with: its token's hash, and its session's
/// when it came from a browser. A long-lived answer (an event stream) keeps
/// it to end as soon as it no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub token_hash: String,
    pub session_hash: Option<String>,
}

/// Tokens and sessions; cheap to clone.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Counts revocations and sign-outs, so that holders of an [`Access`]
    /// learn when to check theirs again.
    ended: Arc<watch::Sender<u64>>,
}

impl Identity {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Identity {
        Identity {
            store,
            clock,
            ended: Arc::new(watch::channel(0).0),
        }
    }

    /// Changes whenever a token is revoked or a session ends.
    pub fn endings(&self) -> watch::Receiver<u64> {
        self.ended.subscribe()
    }

    /// Whether an access still holds: its token is not revoked and its
    /// session, if any, is open.
    pub fn holds(&self, access: &Access) -> Result<bool, Error> {
        let token = self.store.token(&access.token_hash)?;
        if !token.is_some_and(|t| !t.revoked) {
            return Ok(false);
        }
        let Some(session) = &access.session_hash else {
            return Ok(true);
        };
        Ok(self
            .store
            .session(session)?
            .is_some_and(|s| s.expires_ms > self.clock.now_ms()))
    }

    fn announce_ending(&self) {
        self.ended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Creates a token; returns its record and its secret, which is shown
    /// once and kept only as a hash.
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        created_by: Option<&str>,
    ) -> Result<(TokenRecord, String), Error> {
        crate::domain::name::check_name("name", name).map_err(|e| Error::Invalid(e.to_string()))?;
        let role = Role::parse(role).ok_or_else(|| {
            Error::Invalid(format!(
                "role: `{role}` is not a role: admin, release-manager, plugin-author, scheduler or viewer"
            ))
        })?;
        let secret = new_secret()?;
        let record = self.store_token(name, role, &secret, created_by)?;
        Ok((record, secret))
    }

    fn store_token(
        &self,
        name: &str,
        role: Role,
        secret: &str,
        created_by: Option<&str>,
    ) -> Result<TokenRecord, Error> {
        let record = TokenRecord {
            name: name.to_string(),
            role,
            created_at_ms: self.clock.now_ms(),
            revoked: false,
            created_by: created_by.map(str::to_string),
        };
        match self.store.create_token(&hash(secret), &record) {
            Err(store::Error::Conflict(m)) => Err(Error::Exists(m)),
            other => other.map(|()| record).map_err(Error::Store),
        }
    }

    /// Every token, without secrets.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, Error> {
        Ok(self.store.tokens()?)
    }

    /// Revokes a token at once; `by` is the revoking token's name.
    pub fn revoke_token(&self, name: &str, by: &str) -> Result<TokenRecord, Error> {
        if name == by {
            return Err(Error::SelfRevoke);
        }
        let record = self
            .store
            .revoke_token(name)?
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        self.announce_ending();
        Ok(record)
    }

    /// On a store with no tokens at all, creates the first admin token:
    /// `keep` puts its secret where its holder finds it before the token is
    /// stored, so a crash between the two never leaves a token no one
    /// holds. Returns whether a token was made.
    pub fn bootstrap_admin(
        &self,
        keep: impl FnOnce(&str) -> std::io::Result<()>,
    ) -> Result<bool, Error> {
        if self.store.has_tokens()? {
            return Ok(false);
        }
        let secret = new_secret()?;
        keep(&secret).map_err(Error::Keep)?;
        self.store_token("admin", Role::Admin, &secret, None)?;
        Ok(true)
    }

    /// Opens a browser session with a token.
    pub fn sign_in(&self, token: &str) -> Result<OpenedSession, Error> {
        let token_hash = hash(token.trim());
        let record = self
            .store
            .token(&token_hash)?
            .filter(|r| !r.revoked)
            .ok_or(Error::Unknown)?;
        let now = self.clock.now_ms();
        // Sessions that ran out are forgotten as new ones open, so the tree
        // holds only live ones.
        if let Err(e) = self.store.purge_sessions(now) {
            tracing::warn!(error = %e, "Expired sessions cannot be purged.");
        }
        let id = random_hex()?;
        let session = SessionRecord {
            token_hash,
            csrf: random_hex()?,
            created_ms: now,
            expires_ms: now.saturating_add(SESSION_MS),
        };
        self.store.put_session(&hash(&id), &session)?;
        tracing::info!(token = %record.name, "Browser signed in.");
        Ok(OpenedSession {
            token: record,
            id,
            session,
        })
    }

    /// The session a browser's session id names, if it is open.
    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>, Error> {
        Ok(self.store.session(&hash(id))?)
    }

    /// Ends a browser session.
    pub fn sign_out(&self, id: &str) -> Result<(), Error> {
        self.store.delete_session(&hash(id))?;
        self.announce_ending();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn identity() -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_000));
        (dir, Identity::new(store, clock))
    }

    #[test]
    fn the_first_admin_is_made_once_and_a_token_signs_in_until_revoked() {
        let (_dir, ids) = identity();
        let mut admin = String::new();
        assert!(
            ids.bootstrap_admin(|s| {
                admin = s.to_string();
                Ok(())
            })
            .unwrap()
        );
        assert!(admin.starts_with("glt_"));
        assert!(
            ids.sign_in(&admin).is_ok(),
            "the kept secret is the admin's"
        );
        assert!(!ids.bootstrap_admin(|_| Ok(())).unwrap(), "only once");
        let (record, secret) = ids
            .create_token("rita", "release-manager", Some("admin"))
            .unwrap();
        assert_eq!(record.role, Role::ReleaseManager);
        let opened = ids.sign_in(&format!(" {secret}\n")).unwrap();
        assert_eq!(opened.token.name, "rita");
        assert_eq!(opened.session.expires_ms, 1_000 + SESSION_MS);
        assert!(ids.session(&opened.id).unwrap().is_some());
        ids.sign_out(&opened.id).unwrap();
        assert!(ids.session(&opened.id).unwrap().is_none());
        assert!(matches!(
            ids.revoke_token("rita", "rita"),
            Err(Error::SelfRevoke)
        ));
        ids.revoke_token("rita", "admin").unwrap();
        assert!(matches!(ids.sign_in(&secret), Err(Error::Unknown)));
        assert!(matches!(
            ids.revoke_token("nobody", "admin"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn bad_names_roles_and_duplicates_are_refused_with_the_field() {
        let (_dir, ids) = identity();
        let err = ids.create_token("a b", "viewer", None).unwrap_err();
        assert!(err.to_string().starts_with("name: `a b`"), "{err}");
        let err = ids.create_token("ok", "boss", None).unwrap_err();
        assert!(err.to_string().starts_with("role: `boss`"), "{err}");
        ids.create_token("ok", "viewer", None).unwrap();
        assert!(matches!(
            ids.create_token("ok", "viewer", None),
            Err(Error::Exists(_))
        ));
    }
}
