//! Secrets at rest: AES-256-GCM under a master key from the environment.
//!
//! The master key never touches the store. `CLAWDBOT_MASTER_KEY` holds the key new secrets are
//! sealed with; `CLAWDBOT_MASTER_KEYS_PREVIOUS` (comma-separated) holds retired keys that are
//! still read, so that a rotation needs no downtime: every process gets the new key (and the
//! old one as previous) by a rolling restart, `clawdbot security rotate-keys` re-seals every
//! secret under the new key, then the old key is removed from the environment.
//!
//! A sealed secret is `version (1) | nonce (12) | ciphertext | tag (16)`. The secret's name is
//! the associated data, so a sealed value copied onto another row does not open. Each key is
//! known by its id (the first 4 bytes of its SHA-256, in hex), stored beside each secret so
//! that a rotation knows which secrets still need re-sealing, and so that a missing key is
//! named rather than reported as tampering.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The environment variable holding the current master key.
pub const MASTER_KEY_ENV: &str = "CLAWDBOT_MASTER_KEY";
/// The environment variable holding retired master keys that are still read.
pub const PREVIOUS_KEYS_ENV: &str = "CLAWDBOT_MASTER_KEYS_PREVIOUS";

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Why a key could not be used or a secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    #[error(
        "`{variable}` is not set: secrets in the store are encrypted under a master key from the environment (`clawdbot security keygen` makes one)"
    )]
    NoMasterKey { variable: &'static str },
    #[error(
        "`{variable}`: a master key is 32 bytes as base64 (44 characters) or hex (64): {reason}"
    )]
    BadKey {
        variable: &'static str,
        reason: String,
    },
    #[error(
        "secret `{name}` is sealed under master key `{key_id}`, which is neither `{MASTER_KEY_ENV}` nor in `{PREVIOUS_KEYS_ENV}`"
    )]
    UnknownKey { name: String, key_id: String },
    #[error(
        "secret `{name}` does not open under key `{key_id}`: altered, or sealed for another name"
    )]
    Tampered { name: String, key_id: String },
    #[error("secret `{name}`: stored value is not a sealed secret ({reason})")]
    Malformed { name: String, reason: &'static str },
}

/// One 256-bit master key and its id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// Builds a key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            id: hex::encode(&digest[..4]),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// Parses a key as written in the environment: base64 (standard, padded or not) or hex.
    ///
    /// # Errors
    /// Not base64 or hex, or not 32 bytes.
    pub fn parse(text: &str, variable: &'static str) -> Result<Self, KeyringError> {
        let text = text.trim();
        let bad = |reason: String| KeyringError::BadKey { variable, reason };
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| bad(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|e| bad(format!("not base64 ({e})")))?
        };
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(format!("got {} bytes", b.len())))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Makes a fresh random key; returns it and its base64 form for the environment.
    pub fn generate() -> (Self, String) {
        let bytes: [u8; KEY_LEN] = rand::random();
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        (Self::from_bytes(&bytes), text)
    }

    /// The key's id (8 hex characters).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current master key and the retired ones still read.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// Reads the keys from the process environment.
    ///
    /// # Errors
    /// `CLAWDBOT_MASTER_KEY` unset, or any key malformed (naming its variable).
    pub fn from_env() -> Result<Self, KeyringError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the keys through `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    /// As [`Keyring::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, KeyringError> {
        let current = lookup(MASTER_KEY_ENV)
            .filter(|value| !value.trim().is_empty())
            .ok_or(KeyringError::NoMasterKey {
                variable: MASTER_KEY_ENV,
            })?;
        let current = MasterKey::parse(&current, MASTER_KEY_ENV)?;
        let previous = lookup(PREVIOUS_KEYS_ENV)
            .unwrap_or_default()
            .split(',')
            .filter(|text| !text.trim().is_empty())
            .map(|text| MasterKey::parse(text, PREVIOUS_KEYS_ENV))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(current, previous))
    }

    /// The key new secrets are sealed with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Seals `plaintext` as secret `name` under the current key; returns the sealed bytes.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let aad = associated_data(name);
        // Encryption fails only for inputs past GCM's 64 GiB limit, which a secret never is.
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens secret `name`, sealed under the key with id `key_id`.
    ///
    /// # Errors
    /// The key is not in the ring; the value was altered or belongs to another name.
    pub fn open(&self, name: &str, key_id: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| KeyringError::UnknownKey {
                name: name.to_string(),
                key_id: key_id.to_string(),
            })?;
        let malformed = |reason| KeyringError::Malformed {
            name: name.to_string(),
            reason,
        };
        let (&version, rest) = sealed.split_first().ok_or(malformed("empty"))?;
        if version != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed("shorter than nonce and tag"));
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce_bytes: [u8; NONCE_LEN] = nonce_bytes
            .try_into()
            .map_err(|_| malformed("nonce length"))?;
        let aad = associated_data(name);
        key.cipher
            .decrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyringError::Tampered {
                name: name.to_string(),
                key_id: key_id.to_string(),
            })
    }
}

fn associated_data(name: &str) -> Vec<u8> {
    format!("clawdbot-secret:v1:{name}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(current: u8, previous: &[u8]) -> Keyring {
        Keyring::new(
            MasterKey::from_bytes(&[current; 32]),
            previous
                .iter()
                .map(|b| MasterKey::from_bytes(&[*b; 32]))
                .collect(),
        )
    }

    /// The GCM spec's test case 14 (McGrew & Viega): AES-256, zero key, zero IV, one zero
    /// block → the documented ciphertext and tag. Checks the cipher, not our framing.
    #[test]
    fn aes_256_gcm_matches_the_published_vector() {
        let cipher = Aes256Gcm::new(&[0u8; 32].into());
        let out = cipher
            .encrypt(&Nonce::from([0u8; 12]), [0u8; 16].as_slice())
            .expect("encrypt");
        assert_eq!(
            hex::encode(out),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }

    #[test]
    fn sealed_secret_opens_under_its_key_and_name_only() {
        let keys = ring(1, &[]);
        let sealed = keys.seal("notify/hr", b"k3y");
        assert_ne!(&sealed[13..16], b"k3y", "ciphertext is not the plaintext");
        let id = keys.current().id().to_string();
        assert_eq!(keys.open("notify/hr", &id, &sealed).expect("ok"), b"k3y");
        assert!(matches!(
            keys.open("notify/ops", &id, &sealed),
            Err(KeyringError::Tampered { .. })
        ));
        let mut altered = sealed.clone();
        *altered.last_mut().expect("ok") ^= 1;
        assert!(matches!(
            keys.open("notify/hr", &id, &altered),
            Err(KeyringError::Tampered { .. })
        ));
        assert!(matches!(
            keys.open("notify/hr", &id, &sealed[..10]),
            Err(KeyringError::Malformed { .. })
        ));
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let keys = ring(1, &[]);
        assert_ne!(keys.seal("a", b"same"), keys.seal("a", b"same"));
    }

    #[test]
    fn previous_keys_open_and_retired_keys_are_named() {
        let old = ring(1, &[]);
        let sealed = old.seal("token", b"t");
        let old_id = old.current().id().to_string();
        assert_eq!(
            ring(2, &[1]).open("token", &old_id, &sealed).expect("ok"),
            b"t"
        );
        assert_eq!(
            ring(2, &[]).open("token", &old_id, &sealed),
            Err(KeyringError::UnknownKey {
                name: "token".into(),
                key_id: old_id
            })
        );
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_errors_name_the_variable() {
        let (key, text) = MasterKey::generate();
        assert_eq!(
            MasterKey::parse(&text, MASTER_KEY_ENV).expect("ok").id(),
            key.id()
        );
        let hex_key = "00".repeat(32);
        assert_eq!(
            MasterKey::parse(&hex_key, MASTER_KEY_ENV).expect("ok").id(),
            MasterKey::from_bytes(&[0; 32]).id()
        );
        let short = MasterKey::parse("c2hvcnQ=", PREVIOUS_KEYS_ENV).expect_err("refused");
        assert!(short.to_string().contains(PREVIOUS_KEYS_ENV), "{short}");
        assert!(short.to_string().contains("got 5 bytes"), "{short}");
        let missing = Keyring::from_lookup(|_| None).expect_err("refused");
        assert!(missing.to_string().contains(MASTER_KEY_ENV));
        let ring = Keyring::from_lookup(|name| match name {
            MASTER_KEY_ENV => Some(text.clone()),
            PREVIOUS_KEYS_ENV => Some(format!("{hex_key}, ")),
            _ => None,
        })
        .expect("ok");
        assert_eq!(ring.previous.len(), 1);
    }
}
