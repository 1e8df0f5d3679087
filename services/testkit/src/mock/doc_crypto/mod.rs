//! The platforms' signing and encryption, written for the mocks from the platforms'
//! documentation alone — never by calling clawdbot's own crypto (`clawdbot_platforms`), so a
//! misunderstanding shared by both sides cannot pass unseen. The official vectors (copied from
//! `shared/protocols/` into `services/platforms/src/*/fixtures/`) check each function below.
//!
//! Deliberately plain: CBC chaining and PKCS#7 padding are spelled out by hand over the raw AES
//! block, exactly as the WeCom document describes them.

pub mod dingtalk;
pub mod qq;
pub mod wecom;

/// Percent-encodes everything outside RFC 3986's unreserved set (what a WeCom server does to
/// the `echostr` it puts in a URL).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
