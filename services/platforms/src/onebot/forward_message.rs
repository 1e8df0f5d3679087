//! Long answers as a forward message (合并转发): a reply whose text runs past
//! `forward_over_chars` is sent as `send_group_forward_msg` / `send_private_forward_msg` (the
//! go-cqhttp extension NapCat, Lagrange and LLOneBot implement), its text cut at line ends into
//! `node` segments of at most that many characters each, so a long AI answer folds into one
//! card instead of flooding the group.

use serde_json::{Value, json};

/// Whether `message` (a OneBot segment array) carries more text than `limit` characters.
pub(super) fn too_long(message: &Value, limit: usize) -> bool {
    limit > 0 && text_chars(message) > limit
}

fn text_chars(message: &Value) -> usize {
    message
        .as_array()
        .into_iter()
        .flatten()
        .filter(|segment| segment["type"] == "text")
        .filter_map(|segment| segment["data"]["text"].as_str())
        .map(|text| text.chars().count())
        .sum()
}

/// `message` cut into `node` segments of at most `limit` text characters each, sent as
/// `name` / `uin` (the bot).
pub(super) fn nodes(message: &Value, limit: usize, name: &str, uin: i64) -> Value {
    let mut chunks: Vec<Vec<Value>> = vec![Vec::new()];
    let mut filled = 0;
    for segment in message.as_array().into_iter().flatten() {
        let Some(text) = segment["data"]["text"]
            .as_str()
            .filter(|_| segment["type"] == "text")
        else {
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(segment.clone());
            }
            continue;
        };
        for piece in pieces(text, limit) {
            let length = piece.chars().count();
            if filled + length > limit && filled > 0 {
                chunks.push(Vec::new());
                filled = 0;
            }
            filled += length;
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(json!({"type": "text", "data": {"text": piece}}));
            }
        }
    }
    let nodes: Vec<Value> = chunks
        .into_iter()
        .filter(|chunk| !chunk.is_empty())
        .map(|content| {
            json!({"type": "node", "data": {"name": name, "uin": uin.to_string(), "content": content}})
        })
        .collect();
    Value::Array(nodes)
}

/// `text` in pieces of at most `limit` characters, cut after a line end where there is one.
fn pieces(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        for c in line.chars() {
            if current.chars().count() == limit {
                pieces.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
        // Prefer to end a piece at a line end once it is over half full.
        if current.chars().count() * 2 >= limit {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(message: &Value) -> String {
        message
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|node| {
                node["data"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|segment| segment["data"]["text"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn a_long_answer_folds_into_nodes_of_at_most_the_limit_and_loses_nothing() {
        let long = (1..=30)
            .map(|n| format!("line {n} 第{n}行\n"))
            .collect::<String>();
        let message = json!([{"type": "text", "data": {"text": long}}, {"type": "image", "data": {"file": "x.png"}}]);
        assert!(too_long(&message, 50));
        assert!(!too_long(&message, 0), "0 is off");
        assert!(!too_long(&message, 10_000));
        let nodes = nodes(&message, 50, "clawdbot", 10001);
        let nodes_list = nodes.as_array().expect("array");
        assert!(nodes_list.len() >= 6, "{nodes}");
        for node in nodes_list {
            assert_eq!(node["type"], "node");
            assert_eq!(node["data"]["uin"], "10001");
            let chars: usize = text_chars(&node["data"]["content"]);
            assert!(chars <= 50, "{node}");
        }
        assert_eq!(text(&nodes), long, "every character, in order");
        assert!(nodes.to_string().contains("x.png"), "other segments kept");
    }
}
