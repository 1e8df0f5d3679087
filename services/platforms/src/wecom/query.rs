//! The callback's query string: `msg_signature`, `timestamp`, `nonce` (and `echostr` on GET),
//! percent-decoded as WeCom requires (echostr carries `+`, `/` and `=` encoded).

use crate::InboundError;

/// The decoded query parameters WeCom signs with.
#[derive(Debug, Default)]
pub struct CallbackQuery {
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
    pub echostr: Option<String>,
}

impl CallbackQuery {
    /// Reads the parameters from a raw query string.
    ///
    /// # Errors
    /// A missing parameter (named), or one that does not percent-decode to UTF-8.
    pub fn parse(query: Option<&str>) -> Result<Self, InboundError> {
        let mut parsed = CallbackQuery::default();
        let (mut signature, mut timestamp, mut nonce) = (None, None, None);
        for pair in query.unwrap_or_default().split('&') {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "msg_signature" => &mut signature,
                "timestamp" => &mut timestamp,
                "nonce" => &mut nonce,
                "echostr" => &mut parsed.echostr,
                _ => continue,
            };
            *slot = Some(percent_decode(raw).ok_or_else(|| {
                InboundError::MalformedBody(format!("query parameter `{name}` is not valid UTF-8"))
            })?);
        }
        let missing = |name: &str| {
            InboundError::MalformedBody(format!("query parameter `{name}` is missing"))
        };
        parsed.msg_signature = signature.ok_or_else(|| missing("msg_signature"))?;
        parsed.timestamp = timestamp.ok_or_else(|| missing("timestamp"))?;
        parsed.nonce = nonce.ok_or_else(|| missing("nonce"))?;
        Ok(parsed)
    }
}

/// Decodes `%XX` escapes. A `+` stays a `+`: WeCom encodes the base64 `+` as `%2B`, and a
/// proxy that passes it raw must not turn it into a space that breaks the signature.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
