//! The JSON OneBot implementations post. Ids are int64 in the spec but some implementations
//! stringify them, so every id accepts a number or a string.

use serde::{Deserialize, Deserializer};

/// One reported event; the fields present depend on `post_type`.
#[derive(Debug, Deserialize)]
pub(super) struct Event {
    pub post_type: String,
    #[serde(default, deserialize_with = "flexible_i64")]
    pub self_id: Option<i64>,
    #[serde(default)]
    pub time: Option<i64>,
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub sub_type: Option<String>,
    #[serde(default, deserialize_with = "flexible_i64")]
    pub message_id: Option<i64>,
    #[serde(default, deserialize_with = "flexible_i64")]
    pub user_id: Option<i64>,
    #[serde(default, deserialize_with = "flexible_i64")]
    pub group_id: Option<i64>,
    /// A CQ-code string or an array of segments.
    #[serde(default)]
    pub message: Option<serde_json::Value>,
    #[serde(default)]
    pub sender: Option<EventSender>,
    #[serde(default)]
    pub notice_type: Option<String>,
    #[serde(default)]
    pub request_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct EventSender {
    #[serde(default)]
    pub nickname: Option<String>,
    /// Group card (the name shown in this group), preferred over the nickname when set.
    #[serde(default)]
    pub card: Option<String>,
    /// `owner`, `admin` or `member` in groups.
    #[serde(default)]
    pub role: Option<String>,
}

/// Accepts `123`, `"123"` or null.
fn flexible_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(number) => number
            .as_i64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("id `{number}` is not a 64-bit integer"))),
        serde_json::Value::String(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("id `{text}` is not an integer"))),
        other => Err(D::Error::custom(format!(
            "id must be a number, got `{other}`"
        ))),
    }
}
