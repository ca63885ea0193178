//! API tokens, stored only as hashes of the secret.

use serde::{Deserialize, Serialize};

use super::{Error, Store, decode, encode};

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
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release-manager",
            Role::PluginAuthor => "plugin-author",
            Role::Scheduler => "scheduler",
            Role::Viewer => "viewer",
        }
    }
}

/// One token, found by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    pub created_at_ms: u64,
    pub revoked: bool,
}

impl Store {
    /// Stores a token under the hash of its secret.
    pub fn put_token(&self, hash: &str, record: &TokenRecord) -> Result<(), Error> {
        self.tokens.insert(hash.as_bytes(), encode(record))?;
        Ok(())
    }

    /// The token whose secret has this hash.
    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, Error> {
        self.tokens
            .get(hash.as_bytes())?
            .map(|v| decode("tokens", hash.as_bytes(), &v))
            .transpose()
    }

    /// Whether any token exists (the first start creates the admin's).
    pub fn has_tokens(&self) -> Result<bool, Error> {
        Ok(!self.tokens.is_empty())
    }
}
