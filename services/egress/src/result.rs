//! A delivery's result as the ledger stores it: the `SendResponse` as JSON (the ledger holds
//! text), returned to every later call with the same reply id.

use clawdbot_core::proto::SendResponse;

/// Returns the text stored for `response`.
pub(crate) fn encode(response: &SendResponse) -> String {
    serde_json::json!({
        "status": response.status,
        "platform_message_id": response.platform_message_id,
        "error": response.error,
        "attempts": response.attempts,
        "notes": response.notes,
    })
    .to_string()
}

pub(crate) fn decode(stored: &str) -> SendResponse {
    let value: serde_json::Value = serde_json::from_str(stored).unwrap_or_default();
    let text = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let number = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default()
    };
    SendResponse {
        status: number("status") as i32,
        platform_message_id: text("platform_message_id"),
        error: text("error"),
        duplicate: false,
        attempts: number("attempts") as u32,
        notes: value
            .get("notes")
            .and_then(|v| v.as_array())
            .map(|notes| {
                notes
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
