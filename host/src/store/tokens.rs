//! API tokens, stored only as hashes of the secret, with a unique name each.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Error, Store, decode, decode_all, encode};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including tokens, grants and inventory.
    Admin,
    /// Approve, reject, pause, resume and roll back releases.
    ReleaseManager,
    /// Upload plugins.
    PluginAuthor,
    /// Start releases and manage schedules.
    Scheduler,
    /// Read only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::ReleaseManager,
        Role::PluginAuthor,
        Role::Scheduler,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release-manager",
            Role::PluginAuthor => "plugin-author",
            Role::Scheduler => "scheduler",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// One token, found by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    pub created_at_ms: u64,
    pub revoked: bool,
    /// Who created it; `None` for the first admin token.
    #[serde(default)]
    pub created_by: Option<String>,
}

impl Store {
    /// Stores a token under the hash of its secret. Prefer
    /// [`Store::create_token`], which keeps names unique.
    pub fn put_token(&self, hash: &str, record: &TokenRecord) -> Result<(), Error> {
        (&self.tokens, &self.token_names)
            .transaction(|(tokens, names)| {
                tokens.insert(hash.as_bytes(), encode(record))?;
                names.insert(record.name.as_bytes(), hash.as_bytes())?;
                Ok(())
            })
            .map_err(|e: TransactionError<Error>| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => Error::Sled(e),
            })
    }

    /// Stores a new token; refused when its name is taken (names stay
    /// unique, revoked or not, so the audit log never confuses two callers).
    pub fn create_token(&self, hash: &str, record: &TokenRecord) -> Result<(), Error> {
        (&self.tokens, &self.token_names)
            .transaction(|(tokens, names)| {
                if names.get(record.name.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Error::Conflict(
                        format!("a token named `{}` already exists", record.name),
                    )));
                }
                tokens.insert(hash.as_bytes(), encode(record))?;
                names.insert(record.name.as_bytes(), hash.as_bytes())?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => Error::Sled(e),
            })
    }

    /// Revokes the token with this name; returns it, or `None` if there is
    /// no such token.
    pub fn revoke_token(&self, name: &str) -> Result<Option<TokenRecord>, Error> {
        let Some(hash) = self.token_names.get(name.as_bytes())? else {
            return Ok(None);
        };
        let Some(mut record) = self.token(&String::from_utf8_lossy(&hash))? else {
            return Ok(None);
        };
        record.revoked = true;
        self.tokens.insert(&hash, encode(&record))?;
        Ok(Some(record))
    }

    /// The token whose secret has this hash.
    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, Error> {
        self.tokens
            .get(hash.as_bytes())?
            .map(|v| decode("tokens", hash.as_bytes(), &v))
            .transpose()
    }

    /// Every token, by name (never their secrets or hashes).
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, Error> {
        let mut all: Vec<TokenRecord> = decode_all("tokens", self.tokens.iter())?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Whether any token exists (the first start creates the admin's).
    pub fn has_tokens(&self) -> Result<bool, Error> {
        Ok(!self.tokens.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> TokenRecord {
        TokenRecord {
            name: name.to_string(),
            role: Role::Viewer,
            created_at_ms: 1,
            revoked: false,
            created_by: Some("admin".into()),
        }
    }

    #[test]
    fn names_are_unique_and_revocation_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_token("h1", &record("ci")).unwrap();
        let err = store.create_token("h2", &record("ci")).unwrap_err();
        assert!(err.to_string().contains("`ci` already exists"), "{err}");
        assert!(store.token("h2").unwrap().is_none());
        assert!(store.revoke_token("ci").unwrap().unwrap().revoked);
        assert!(store.token("h1").unwrap().unwrap().revoked);
        assert!(store.revoke_token("nobody").unwrap().is_none());
        assert_eq!(store.tokens().unwrap().len(), 1);
    }
}
