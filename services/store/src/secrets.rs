//! Credentials the cluster keeps itself, sealed with the [`crate::keyring`] (never in clear).

use time::OffsetDateTime;

/// What a stored secret is for.
pub mod kind {
    /// A key clawdbot issued to callers of one of its APIs (`scope`: `notify`).
    pub const API_KEY: &str = "api_key";
    /// A value the config refers to as `${secret:NAME}` (platform secrets, remote-skill tokens).
    pub const VALUE: &str = "value";
}

/// One sealed secret row.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRecord {
    /// Unique name: `notify/hr` for an issued API key, anything for a value.
    pub name: String,
    /// One of [`kind`].
    pub kind: String,
    /// For API keys, the API it opens (`notify`); empty otherwise.
    pub scope: String,
    /// The id of the master key it is sealed under.
    pub key_id: String,
    /// `version | nonce | ciphertext | tag`, as [`crate::keyring::Keyring::seal`] makes it.
    pub sealed: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// When a rotated-out API key stops being accepted; `None`: until revoked.
    pub expires_at: Option<OffsetDateTime>,
}
