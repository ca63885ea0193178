//! Recordings of check calls: what a check saw of the world (the outbound
//! HTTP exchanges it made and the release clock's readings) kept beside the
//! release, so that an analysis can be replayed exactly against the samples
//! the check judged.
//!
//! Secrets are never kept: request headers (where stores take their keys
//! and credentials) are not recorded at all, and an exchange is known by a
//! *key* made from its URL without user information, with the values of
//! query parameters that carry credentials (`p`, `u`, `api_key`, any name
//! with `key`, `token`, `secret`, `password` or `signature` in it) and every
//! granted secret value replaced. A replay makes the same key from the
//! request it answers, so matching never needs the secrets either.

use serde::{Deserialize, Serialize};

use super::redact::Redactor;

/// The most bytes of response bodies kept of one check call; past it the
/// call's recording is marked incomplete and its bodies dropped.
pub const MAX_CALL_BODY_BYTES: usize = 1 << 20;

/// The most bytes of recordings kept of one release; a call that would pass
/// it is kept without its exchanges, marked incomplete.
pub const MAX_RELEASE_BYTES: u64 = 16 << 20;

/// The most clock readings kept of one call.
pub const MAX_CLOCK_READS: usize = 1024;

/// The response headers kept: those that say how to read the body.
pub const KEPT_HEADERS: &[&str] = &["content-type", "content-encoding"];

/// What replaces a credential in an exchange's key.
const REDACTED: &str = "[redacted]";

/// One outbound request a plugin made and the answer it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    /// The request's key: its URL with credentials taken out
    /// ([`exchange_key`]).
    pub url: String,
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, with = "body")]
    pub body: Vec<u8>,
}

/// What one plugin call saw.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallRecording {
    /// The release clock when the call started.
    pub at_ms: u64,
    /// What the plugin read from the release clock, in order.
    #[serde(default)]
    pub clock_reads: Vec<u64>,
    #[serde(default)]
    pub exchanges: Vec<Exchange>,
    /// Why the recording is not whole, when it is not: such a call is never
    /// replayed, since a replay of part of what it saw would be wrong.
    #[serde(default)]
    pub incomplete: Option<String>,
}

impl CallRecording {
    /// The bytes of bodies kept.
    pub fn body_bytes(&self) -> usize {
        self.exchanges.iter().map(|e| e.body.len()).sum()
    }

    /// Drops every exchange, keeping why.
    pub fn drop_exchanges(&mut self, why: String) {
        self.exchanges.clear();
        self.incomplete.get_or_insert(why);
    }
}

/// The recording of one check of one round, with the release context the
/// check was called with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecording {
    /// `name@version` of the check.
    pub check: String,
    pub stage: String,
    pub batch: Option<u32>,
    pub attempt: u32,
    pub deployed_at_ms: Option<u64>,
    /// The ids of the targets checked.
    #[serde(default)]
    pub targets: Vec<String>,
    pub call: CallRecording,
}

/// Whether a query parameter carries a credential.
fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "p" | "u" | "sig")
        || ["key", "token", "secret", "password", "signature", "auth"]
            .iter()
            .any(|word| name.contains(word))
}

/// The key an exchange is known by: its URL without user information, with
/// credential parameters' values and granted secret values replaced.
pub fn exchange_key(url: &str, redactor: &Redactor) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    let mut key = base;
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_credential(name) => format!("{name}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        key.push('?');
        key.push_str(&pairs.join("&"));
    }
    redactor.text(&key)
}

/// Bodies as base64 in the stored JSON: they may be any bytes.
mod body {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn credentials_never_reach_a_key() {
        let secrets = BTreeMap::from([("token".to_string(), "s3cr3t".to_string())]);
        let redactor = Redactor::new(&secrets);
        let cases = [
            (
                "http://admin:pw@influx:8086/query?db=shop&u=admin&p=pw&q=SELECT",
                "http://influx:8086/query?db=shop&u=[redacted]&p=[redacted]&q=SELECT",
            ),
            (
                "https://dd/api/v1/query?query=avg&api_key=abc&application_key=def",
                "https://dd/api/v1/query?query=avg&api_key=[redacted]&application_key=[redacted]",
            ),
            (
                "http://prom/api/v1/query_range?query=up{x=\"s3cr3t\"}&start=1",
                "http://prom/api/v1/query_range?query=up{x=\"[secret:token]\"}&start=1",
            ),
            ("http://h/p", "http://h/p"),
        ];
        for (url, key) in cases {
            assert_eq!(exchange_key(url, &redactor), key, "{url}");
        }
    }

    #[test]
    fn a_recording_reads_back_with_its_bodies() {
        let recording = CallRecording {
            at_ms: 5,
            clock_reads: vec![5, 6],
            exchanges: vec![Exchange {
                method: "GET".into(),
                url: "http://h/q".into(),
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: vec![0, 159, 146, 150],
            }],
            incomplete: None,
        };
        let json = serde_json::to_string(&recording).unwrap();
        assert_eq!(
            serde_json::from_str::<CallRecording>(&json).unwrap(),
            recording
        );
        // Older or partial records read with defaults.
        let bare: CallRecording = serde_json::from_str(r#"{"at_ms":1}"#).unwrap();
        assert_eq!(bare.at_ms, 1);
        assert!(bare.exchanges.is_empty());
    }
}
