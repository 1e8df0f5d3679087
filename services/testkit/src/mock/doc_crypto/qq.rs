//! QQ Bot callback signing, from bot.q.qq.com "签名校验" (tencent-connect/bot-docs sign.md):
//! the Ed25519 seed is the bot secret repeated until it is at least 32 bytes long, cut at 32;
//! a callback's `X-Signature-Ed25519` is `hex(sign(X-Signature-Timestamp || raw body))`.

use ed25519_dalek::{Signer, SigningKey};

/// The signing key QQ derives from a bot's secret.
pub fn key_from_secret(secret: &str) -> SigningKey {
    let mut seed = [0u8; 32];
    let secret = if secret.is_empty() { "0" } else { secret };
    for (slot, byte) in seed.iter_mut().zip(secret.bytes().cycle()) {
        *slot = byte;
    }
    SigningKey::from_bytes(&seed)
}

/// The hex signature of `timestamp` followed by `body`.
pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    hex::encode(key.sign(&message).to_bytes())
}
