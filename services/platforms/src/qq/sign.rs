//! QQ's Ed25519 signatures. The key is derived from the bot secret: the secret repeated until
//! it is at least 32 bytes, the first 32 bytes as the seed. Events are signed over
//! `X-Signature-Timestamp` + the raw body bytes (never re-serialized JSON: the official demo
//! only verifies over the pretty-printed body it was signed with); the callback-URL validation
//! (op 13) is answered with the signature over `event_ts` + `plain_token`.
//! Vectors: `fixtures/qq.vectors.json`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Returns the bot's signing key derived from its secret.
pub fn signing_key(secret: &str) -> SigningKey {
    let mut seed = [0u8; 32];
    if !secret.is_empty() {
        for (slot, byte) in seed.iter_mut().zip(secret.bytes().cycle()) {
            *slot = byte;
        }
    }
    SigningKey::from_bytes(&seed)
}

/// Returns the hex signature of `parts` concatenated.
pub fn sign_hex(key: &SigningKey, parts: &[&[u8]]) -> String {
    let message: Vec<u8> = parts.concat();
    hex::encode(key.sign(&message).to_bytes())
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature is not hex")]
    NotHex,
    #[error("signature is {0} bytes, not 64")]
    Length(usize),
    #[error("signature is not canonical (sig[63] & 0xE0 != 0)")]
    NotCanonical,
    #[error("signature does not verify")]
    Mismatch,
}

/// Verifies a hex signature over `parts` concatenated.
///
/// # Errors
/// See [`SignatureError`].
pub fn verify_hex(
    key: &VerifyingKey,
    parts: &[&[u8]],
    signature_hex: &str,
) -> Result<(), SignatureError> {
    let bytes = hex::decode(signature_hex.trim()).map_err(|_| SignatureError::NotHex)?;
    let bytes: [u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| SignatureError::Length(bytes.len()))?;
    if bytes[63] & 0xE0 != 0 {
        return Err(SignatureError::NotCanonical);
    }
    let message: Vec<u8> = parts.concat();
    key.verify(&message, &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::Mismatch)
}
