//! DingTalk's signature: `base64(HMAC-SHA256(key = secret, msg = timestamp_ms + "\n" + secret))`
//! — the same function signs inbound robot callbacks (key: the app secret, compared as base64)
//! and outbound custom-robot webhooks (key: the robot's `SEC...` secret, URL-encoded into the
//! query). Vectors: `fixtures/dingtalk.vectors.json`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Returns the base64 signature of `timestamp_ms` under `secret`.
pub fn sign(secret: &str, timestamp_ms: &str) -> String {
    STANDARD.encode(mac(secret, timestamp_ms).finalize().into_bytes())
}

/// Returns whether `given` (base64) is the signature of `timestamp_ms` under `secret`, in
/// constant time.
pub fn verify(secret: &str, timestamp_ms: &str, given: &str) -> bool {
    match STANDARD.decode(given.trim()) {
        Ok(bytes) => mac(secret, timestamp_ms).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// Percent-encodes a base64 signature for a query string (`+`, `/`, `=`).
pub fn url_encode(signature: &str) -> String {
    crate::percent_encode(signature)
}

fn mac(secret: &str, timestamp_ms: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(timestamp_ms.as_bytes());
    mac.update(b"\n");
    mac.update(secret.as_bytes());
    mac
}
