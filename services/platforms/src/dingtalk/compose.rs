//! A reply's segments as DingTalk messages: the robot-message shape (session webhooks and
//! custom robots: `msgtype` + body + `at`) and the OpenAPI shape (`msgKey` + `msgParam`).
//! Consecutive text and mentions make one message; markdown makes the message a markdown one;
//! a link card its own; what DingTalk cannot express is degraded and noted.

use clawdbot_core::proto::{Segment, segment::Kind as SegmentKind};
use serde_json::{Value, json};

use super::NAME;

/// One message in the robot shape.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotMessage(pub Value);

/// The messages for `segments`, and notes on what was degraded.
pub fn compose(segments: &[Segment]) -> (Vec<RobotMessage>, Vec<String>) {
    let mut messages = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut markdown = false;
    let mut at_user_ids: Vec<String> = Vec::new();
    let mut at_mobiles: Vec<String> = Vec::new();
    let mut at_all = false;
    let note = |notes: &mut Vec<String>, n: &str| {
        if !notes.iter().any(|x| x == n) {
            notes.push(n.to_string());
        }
    };
    for segment in segments {
        match &segment.kind {
            Some(SegmentKind::Text(t)) => text.push_str(&t.text),
            Some(SegmentKind::Markdown(m)) => {
                markdown = true;
                text.push_str(&m.markdown);
            }
            Some(SegmentKind::Mention(m)) => {
                // DingTalk highlights an @ only if it is also in the text.
                if m.all {
                    at_all = true;
                    text.push_str("@all");
                } else if is_mobile(&m.user_id) {
                    at_mobiles.push(m.user_id.clone());
                    text.push_str(&format!("@{}", m.user_id));
                } else {
                    at_user_ids.push(m.user_id.clone());
                    text.push_str(&format!("@{}", m.user_id));
                }
            }
            Some(SegmentKind::Image(media)) if media.url.starts_with("http") => {
                markdown = true;
                text.push_str(&format!("\n![image]({})\n", media.url));
            }
            Some(SegmentKind::Link(link)) => messages.push(RobotMessage(json!({
                "msgtype": "link",
                "link": {
                    "title": link.title, "text": if link.description.is_empty() { &link.url } else { &link.description },
                    "messageUrl": link.url, "picUrl": link.image_url,
                },
            }))),
            Some(SegmentKind::Raw(raw)) if raw.platform == NAME => {
                match serde_json::from_str::<Value>(&raw.data_json) {
                    Ok(data) => messages.push(RobotMessage(json!({"msgtype": raw.r#type, raw.r#type.clone(): data}))),
                    Err(_) => note(&mut notes, &format!("raw `{}` segment dropped: not JSON", raw.r#type)),
                }
            }
            Some(SegmentKind::Quote(_)) => note(&mut notes, "quote dropped: robot messages cannot quote"),
            Some(SegmentKind::Image(_) | SegmentKind::File(_) | SegmentKind::Voice(_) | SegmentKind::Video(_)) => {
                note(&mut notes, "media without an http(s) URL dropped: robot messages carry links, not files");
            }
            Some(SegmentKind::Raw(raw)) => note(
                &mut notes,
                &format!("{} `{}` segment dropped: DingTalk has no equivalent", raw.platform, raw.r#type),
            ),
            None => {}
        }
    }
    if !text.trim().is_empty() || at_all || !at_user_ids.is_empty() || !at_mobiles.is_empty() {
        let at = json!({"atUserIds": at_user_ids, "atMobiles": at_mobiles, "isAtAll": at_all});
        let body = if markdown {
            json!({"msgtype": "markdown", "markdown": {"title": title_of(&text), "text": text}, "at": at})
        } else {
            json!({"msgtype": "text", "text": {"content": text}, "at": at})
        };
        // The text comes first: a link card usually follows what introduces it.
        messages.insert(0, RobotMessage(body));
    }
    (messages, notes)
}

/// The OpenAPI form of a robot message: (`msgKey`, `msgParam` as a JSON string), or `None`
/// when the OpenAPI has no template for it.
pub fn openapi_form(message: &RobotMessage) -> Option<(&'static str, String)> {
    let body = &message.0;
    let param = match body["msgtype"].as_str()? {
        "text" => ("sampleText", json!({"content": body["text"]["content"]})),
        "markdown" => (
            "sampleMarkdown",
            json!({"title": body["markdown"]["title"], "text": body["markdown"]["text"]}),
        ),
        "link" => (
            "sampleLink",
            json!({
                "title": body["link"]["title"], "text": body["link"]["text"],
                "messageUrl": body["link"]["messageUrl"], "picUrl": body["link"]["picUrl"],
            }),
        ),
        "actionCard" => (
            "sampleActionCard",
            json!({
                "title": body["actionCard"]["title"], "text": body["actionCard"]["text"],
                "singleTitle": body["actionCard"]["singleTitle"], "singleURL": body["actionCard"]["singleURL"],
            }),
        ),
        _ => return None,
    };
    // msgParam is a JSON *string*, not an object.
    Some((param.0, param.1.to_string()))
}

/// A markdown message's title (what the notification shows): its first line, at most 64
/// characters, without markdown marks.
fn title_of(text: &str) -> String {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("notice");
    first
        .trim_start_matches(['#', ' ', '*', '>'])
        .chars()
        .take(64)
        .collect()
}

fn is_mobile(id: &str) -> bool {
    id.len() == 11 && id.starts_with('1') && id.bytes().all(|b| b.is_ascii_digit())
}
