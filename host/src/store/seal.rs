//! The cipher that keeps plugin secrets sealed at rest: XChaCha20-Poly1305
//! under a key the daemon holds apart from the database.
//!
//! Every value gets a fresh random 24-byte nonce, which that cipher's
//! nonce size makes safe to draw without counting. The associated data
//! binds a ciphertext to the key it was sealed under and to where it is
//! stored (plugin name and secret name), so a value copied into another
//! plugin's grant, or under another secret's name, does not open.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format of a sealed value: XChaCha20-Poly1305 with the associated
/// data built by [`associated_data`]. A later format gets a new number.
const SEAL_FORMAT: u32 = 1;

/// Bytes in a key.
pub const KEY_BYTES: usize = 32;

/// Bytes in a nonce.
const NONCE_BYTES: usize = 24;

/// Why a key or a sealed value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a secrets key is 64 hexadecimal digits (32 bytes); {0}")]
    MalformedKey(String),
    #[error("the system gave no randomness: {0}")]
    Randomness(String),
    #[error("sealed with key {sealed_with}, but the key in use is {in_use}")]
    OtherKey { sealed_with: String, in_use: String },
    #[error("it does not open with key {0}: it was altered, or moved from another secret")]
    DoesNotOpen(String),
    #[error("unknown seal format {0}")]
    UnknownFormat(u32),
    #[error("the sealed value is not well formed: {0}")]
    Malformed(String),
}

/// The key that seals plugin secrets. Its bytes are never printed: `Debug`
/// and `Display` show only its id.
#[derive(Clone)]
pub struct SecretsKey {
    bytes: [u8; KEY_BYTES],
    id: String,
}

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Result<SecretsKey, SealError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| SealError::Randomness(e.to_string()))?;
        Ok(SecretsKey::from_bytes(bytes))
    }

    /// A key written as 64 hexadecimal digits; surrounding whitespace (a
    /// file's final newline) is ignored.
    pub fn parse(text: &str) -> Result<SecretsKey, SealError> {
        let text = text.trim();
        if text.len() != 2 * KEY_BYTES {
            return Err(SealError::MalformedKey(format!(
                "this one has {} characters",
                text.chars().count()
            )));
        }
        let mut bytes = [0u8; KEY_BYTES];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| SealError::MalformedKey("this one has other characters".into()))?;
        Ok(SecretsKey::from_bytes(bytes))
    }

    fn from_bytes(bytes: [u8; KEY_BYTES]) -> SecretsKey {
        // The id names a key in messages and stored values without giving
        // anything of it away: a truncated hash under a label of its own.
        let digest = Sha256::new()
            .chain_update(b"greenlight secrets key id\0")
            .chain_update(bytes)
            .finalize();
        SecretsKey {
            bytes,
            id: hex::encode(&digest[..8]),
        }
    }

    /// The key as 64 hexadecimal digits, as a key file holds it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// The key's public id: 16 hexadecimal digits.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals the value of secret `name` of plugin `plugin`.
    pub fn seal(&self, plugin: &str, name: &str, value: &str) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Randomness(e.to_string()))?;
        let aad = associated_data(&self.id, plugin, name);
        let data = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            // Encryption fails only for messages past the cipher's limit
            // (256 GiB), far beyond any request body the API takes.
            .map_err(|_| SealError::Malformed("the value is too long to seal".into()))?;
        Ok(Sealed {
            v: SEAL_FORMAT,
            key: self.id.clone(),
            nonce: hex::encode(nonce),
            data: hex::encode(data),
        })
    }

    /// Opens a value sealed for secret `name` of plugin `plugin`.
    pub fn open(&self, plugin: &str, name: &str, sealed: &Sealed) -> Result<String, SealError> {
        if sealed.v != SEAL_FORMAT {
            return Err(SealError::UnknownFormat(sealed.v));
        }
        if sealed.key != self.id {
            return Err(SealError::OtherKey {
                sealed_with: sealed.key.clone(),
                in_use: self.id.clone(),
            });
        }
        let mut nonce = [0u8; NONCE_BYTES];
        hex::decode_to_slice(&sealed.nonce, &mut nonce)
            .map_err(|e| SealError::Malformed(format!("nonce: {e}")))?;
        let data =
            hex::decode(&sealed.data).map_err(|e| SealError::Malformed(format!("data: {e}")))?;
        let aad = associated_data(&self.id, plugin, name);
        let plain = self
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &data,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::DoesNotOpen(self.id.clone()))?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed("not UTF-8 once opened".into()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.bytes))
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsKey({})", self.id)
    }
}

impl fmt::Display for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A secret's value as stored: the seal format, the id of the key it was
/// sealed under, the nonce and the ciphertext with its tag, in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub v: u32,
    pub key: String,
    pub nonce: String,
    pub data: String,
}

/// What a ciphertext is bound to: the format, the key's id, the plugin and
/// the secret's name, each preceded by its length so that no two
/// different triples give the same bytes.
fn associated_data(key_id: &str, plugin: &str, name: &str) -> Vec<u8> {
    let mut aad = format!("greenlight grant secret v{SEAL_FORMAT}").into_bytes();
    for part in [key_id, plugin, name] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretsKey {
        SecretsKey::generate().unwrap()
    }

    #[test]
    fn a_sealed_value_opens_to_itself_and_shows_nothing_of_it() {
        let k = key();
        let sealed = k.seal("probe", "token", "s3cret-value").unwrap();
        assert_eq!(k.open("probe", "token", &sealed).unwrap(), "s3cret-value");
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("s3cret"), "{stored}");
        assert!(!stored.contains(&hex::encode("s3cret")), "{stored}");
        // Every seal draws its own nonce.
        let again = k.seal("probe", "token", "s3cret-value").unwrap();
        assert_ne!(sealed.nonce, again.nonce);
        assert_ne!(sealed.data, again.data);
    }

    #[test]
    fn another_key_is_named_not_tried() {
        let (k, other) = (key(), key());
        let sealed = k.seal("probe", "token", "v").unwrap();
        let err = other.open("probe", "token", &sealed).unwrap_err();
        assert!(matches!(err, SealError::OtherKey { .. }), "{err}");
        assert!(err.to_string().contains(k.id()), "{err}");
        assert!(err.to_string().contains(other.id()), "{err}");
    }

    #[test]
    fn another_key_claiming_the_same_id_does_not_open_it() {
        let (k, other) = (key(), key());
        let mut sealed = k.seal("probe", "token", "v").unwrap();
        sealed.key = other.id().to_string();
        let err = other.open("probe", "token", &sealed).unwrap_err();
        assert!(matches!(err, SealError::DoesNotOpen(_)), "{err}");
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let k = key();
        let sealed = k.seal("probe", "token", "value").unwrap();
        let mut data = hex::decode(&sealed.data).unwrap();
        data[0] ^= 1;
        let tampered = Sealed {
            data: hex::encode(data),
            ..sealed.clone()
        };
        let err = k.open("probe", "token", &tampered).unwrap_err();
        assert!(matches!(err, SealError::DoesNotOpen(_)), "{err}");
        let mut nonce = hex::decode(&sealed.nonce).unwrap();
        nonce[0] ^= 1;
        let renonced = Sealed {
            nonce: hex::encode(nonce),
            ..sealed
        };
        assert!(matches!(
            k.open("probe", "token", &renonced),
            Err(SealError::DoesNotOpen(_))
        ));
    }

    #[test]
    fn a_value_moved_to_another_plugin_or_name_does_not_open() {
        let k = key();
        let sealed = k.seal("probe", "token", "value").unwrap();
        for (plugin, name) in [("other", "token"), ("probe", "other"), ("probetoken", "")] {
            let err = k.open(plugin, name, &sealed).unwrap_err();
            assert!(
                matches!(err, SealError::DoesNotOpen(_)),
                "{plugin}/{name}: {err}"
            );
        }
    }

    #[test]
    fn keys_are_read_from_hex_and_bad_ones_are_named() {
        let k = key();
        let read = SecretsKey::parse(&format!("{}\n", k.to_hex())).unwrap();
        assert_eq!(read.id(), k.id());
        let sealed = k.seal("p", "n", "v").unwrap();
        assert_eq!(read.open("p", "n", &sealed).unwrap(), "v");
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            let err = SecretsKey::parse(bad).unwrap_err();
            assert!(err.to_string().contains("64 hexadecimal digits"), "{err}");
        }
        assert_eq!(k.id().len(), 16);
        assert!(!format!("{k:?} {k}").contains(&k.to_hex()));
    }

    #[test]
    fn an_unknown_format_is_named() {
        let k = key();
        let mut sealed = k.seal("p", "n", "v").unwrap();
        sealed.v = 9;
        let err = k.open("p", "n", &sealed).unwrap_err();
        assert!(err.to_string().contains("unknown seal format 9"), "{err}");
    }
}
