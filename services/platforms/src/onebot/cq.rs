//! CQ codes: the string form of OneBot messages, `text[CQ:type,key=value,...]text`.
//!
//! Escaping (spec `message/string.md`): in text `&`→`&amp;`, `[`→`&#91;`, `]`→`&#93;`; inside
//! parameter values also `,`→`&#44;`. `&` is escaped first and unescaped last.

/// One segment as OneBot writes it: a type and string parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSegment {
    pub kind: String,
    pub data: Vec<(String, String)>,
}

impl RawSegment {
    /// Returns the value of parameter `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Escapes plain text for a CQ string.
pub fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('[', "&#91;")
        .replace(']', "&#93;")
}

/// Escapes a CQ parameter value.
pub fn escape_param(value: &str) -> String {
    escape_text(value).replace(',', "&#44;")
}

/// Reverses [`escape_text`] and [`escape_param`].
pub fn unescape(text: &str) -> String {
    text.replace("&#44;", ",")
        .replace("&#91;", "[")
        .replace("&#93;", "]")
        .replace("&amp;", "&")
}

/// Parses a CQ string into segments; text between codes becomes `text` segments.
///
/// Lenient like the implementations: an unterminated `[CQ:` is kept as text rather than failing
/// the whole message.
pub fn parse(message: &str) -> Vec<RawSegment> {
    let mut segments = Vec::new();
    let mut rest = message;
    while let Some(start) = rest.find("[CQ:") {
        let Some(len) = rest[start..].find(']') else {
            break;
        };
        push_text(&mut segments, &rest[..start]);
        segments.push(parse_code(&rest[start + 4..start + len]));
        rest = &rest[start + len + 1..];
    }
    push_text(&mut segments, rest);
    segments
}

fn push_text(segments: &mut Vec<RawSegment>, escaped: &str) {
    if !escaped.is_empty() {
        segments.push(RawSegment {
            kind: "text".to_string(),
            data: vec![("text".to_string(), unescape(escaped))],
        });
    }
}

/// Parses `type,key=value,...` (the inside of `[CQ:...]`).
fn parse_code(code: &str) -> RawSegment {
    let mut parts = code.split(',');
    let kind = parts.next().unwrap_or_default().to_string();
    let data = parts
        .map(|param| match param.split_once('=') {
            Some((key, value)) => (key.to_string(), unescape(value)),
            None => (param.to_string(), String::new()),
        })
        .collect();
    RawSegment { kind, data }
}
