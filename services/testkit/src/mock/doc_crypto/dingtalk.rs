//! DingTalk robot signing, from open.dingtalk.com "自定义机器人安全设置 / 加签":
//! `sign = base64(HmacSHA256(key = secret, message = timestamp_ms + "\n" + secret))`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `sign` for `timestamp_ms` (decimal milliseconds) under the robot's `secret`.
pub fn sign(secret: &str, timestamp_ms: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}
