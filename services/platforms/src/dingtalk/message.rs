//! A robot message (the HTTP callback's body, or a Stream frame's `data`) into an envelope.
//! Field names: `docs/protocols/dingtalk.md` (from DingTalk's Stream SDK and a real payload).

use clawdbot_core::message::{new_envelope_id, now_ms, render_text};
use clawdbot_core::proto::{
    Conversation, ConversationKind, Envelope, EventKind, Media, Raw, Segment, Sender, Text,
    segment::Kind as SegmentKind,
};

use super::DingTalkReplyContext;
use serde::Deserialize;
use serde_json::Value;

use super::{DingTalkConfig, NAME};
use crate::InboundError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RobotMessage {
    msgtype: String,
    text: Option<TextContent>,
    content: Option<Value>,
    msg_id: String,
    create_at: i64,
    conversation_type: String,
    conversation_id: String,
    sender_id: String,
    sender_nick: String,
    sender_staff_id: String,
    chatbot_user_id: String,
    robot_code: String,
    is_admin: bool,
    is_in_at_list: bool,
    at_users: Vec<AtUser>,
    session_webhook: String,
    session_webhook_expired_time: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AtUser {
    dingtalk_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TextContent {
    content: String,
}

/// Decodes a robot message's JSON into an envelope for the app `config`.
///
/// # Errors
/// Not JSON, not an object, or without `msgId` / `conversationType`.
pub fn decode(config: &DingTalkConfig, body: &[u8]) -> Result<Envelope, InboundError> {
    crate::json_limits::check(body)?;
    let message: RobotMessage = serde_json::from_slice(body).map_err(|error| {
        InboundError::MalformedBody(format!("not a DingTalk robot message: {error}"))
    })?;
    if message.msg_id.is_empty() {
        return Err(InboundError::MalformedBody(
            "message without `msgId`".into(),
        ));
    }
    let sender_id = if message.sender_staff_id.is_empty() {
        // External users have no staff id; their DingTalk id still identifies them.
        message.sender_id.clone()
    } else {
        message.sender_staff_id.clone()
    };
    let conversation = match message.conversation_type.as_str() {
        "2" => Conversation {
            kind: ConversationKind::Group.into(),
            id: message.conversation_id.clone(),
        },
        "1" => Conversation {
            kind: ConversationKind::Private.into(),
            id: sender_id.clone(),
        },
        other => {
            return Err(InboundError::MalformedBody(format!(
                "conversationType `{other}` (expected \"1\" or \"2\")"
            )));
        }
    };
    let (kind, mut segments) = segments(&message, body);
    drop_leading_robot_mention(&message, &mut segments);
    let robot_code = if message.robot_code.is_empty() {
        config.robot_code().to_string()
    } else {
        message.robot_code.clone()
    };
    Ok(Envelope {
        id: new_envelope_id(),
        platform: NAME.to_string(),
        bot_id: config.id.clone(),
        self_id: message.chatbot_user_id.clone(),
        message_id: message.msg_id.clone(),
        kind: kind.into(),
        event_type: format!("message.{}", message.msgtype),
        conversation: Some(conversation),
        sender: Some(Sender {
            user_id: sender_id,
            display_name: message.sender_nick.clone(),
            is_admin: message.is_admin,
            role: if message.is_admin {
                "admin".into()
            } else {
                String::new()
            },
        }),
        text: render_text(&segments).trim().to_string(),
        segments,
        sent_at_ms: message.create_at,
        received_at_ms: now_ms(),
        reply_context: Some(crate::reply_context::seal(
            NAME,
            &DingTalkReplyContext {
                session_webhook: message.session_webhook.clone(),
                session_webhook_expires_at_ms: message.session_webhook_expired_time,
                conversation_type: message.conversation_type.clone(),
                conversation_id: message.conversation_id.clone(),
                sender_staff_id: message.sender_staff_id.clone(),
                robot_code,
            },
        )),
        trace: None,
        // A robot only receives group messages that @ it, and every one-to-one message.
        mentions_bot: message.is_in_at_list || message.conversation_type == "1",
        dedupe_id: String::new(),
    })
}

/// DingTalk takes the robot's @ out of a text message's content, but a rich-text message keeps
/// it as written (`@机器人` as its first text part, as other projects' fixtures show). When the
/// robot is the only one mentioned (`atUsers` holds only `chatbotUserId`), a leading `@name`
/// can only be the robot's: it is dropped so that `@机器人 /echo hi` routes as `/echo hi`. With
/// anyone else mentioned, the text is left as written.
fn drop_leading_robot_mention(message: &RobotMessage, segments: &mut Vec<Segment>) {
    let only_the_robot = !message.at_users.is_empty()
        && message
            .at_users
            .iter()
            .all(|user| user.dingtalk_id == message.chatbot_user_id);
    if !(message.is_in_at_list && only_the_robot) {
        return;
    }
    let Some(Segment {
        kind: Some(SegmentKind::Text(first)),
    }) = segments.first_mut()
    else {
        return;
    };
    let trimmed = first.text.trim_start();
    if let Some(after_at) = trimmed.strip_prefix('@') {
        // The name runs to the first white space (DingTalk puts one after a mention).
        let rest = after_at
            .find(char::is_whitespace)
            .map_or("", |end| &after_at[end..]);
        first.text = rest.trim_start().to_string();
        if first.text.is_empty() {
            segments.remove(0);
            if let Some(Segment {
                kind: Some(SegmentKind::Text(next)),
            }) = segments.first_mut()
            {
                next.text = next.text.trim_start().to_string();
            }
        }
    }
}

fn text(text: &str) -> Segment {
    Segment {
        kind: Some(SegmentKind::Text(Text {
            text: text.to_string(),
        })),
    }
}

fn media(content: Option<&Value>, mime: &str) -> Media {
    let field = |name: &str| {
        content
            .and_then(|c| c.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let download_code = field("downloadCode");
    Media {
        file_id: if download_code.is_empty() {
            field("pictureDownloadCode")
        } else {
            download_code
        },
        name: field("fileName"),
        mime: mime.to_string(),
        url: String::new(),
    }
}

/// The message's segments and its kind. Other people's @s stay in the text as DingTalk wrote
/// them (`@李四`): DingTalk removes only the robot's own, and a command after an @ still reads
/// as typed. `atUsers` carries no position, so no mention segments are made from it.
fn segments(message: &RobotMessage, body: &[u8]) -> (EventKind, Vec<Segment>) {
    let mut segments = Vec::new();
    let content = message.content.as_ref();
    match message.msgtype.as_str() {
        // DingTalk leaves the space where the @robot was: trim it so commands match.
        "text" => segments.push(text(message.text.as_ref().map_or("", |t| t.content.trim()))),
        "picture" => segments.push(Segment {
            kind: Some(SegmentKind::Image(media(content, "image/*"))),
        }),
        "file" => segments.push(Segment {
            kind: Some(SegmentKind::File(media(content, ""))),
        }),
        "audio" => {
            segments.push(Segment {
                kind: Some(SegmentKind::Voice(media(content, "audio/*"))),
            });
            // DingTalk's speech recognition, so that a spoken command works like a typed one.
            if let Some(words) = content
                .and_then(|c| c.get("recognition"))
                .and_then(Value::as_str)
                .filter(|w| !w.is_empty())
            {
                segments.push(text(words));
            }
        }
        "richText" => {
            let parts = content
                .and_then(|c| c.get("richText"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for part in &parts {
                if let Some(words) = part.get("text").and_then(Value::as_str) {
                    segments.push(text(words));
                } else {
                    segments.push(Segment {
                        kind: Some(SegmentKind::Image(media(Some(part), "image/*"))),
                    });
                }
            }
        }
        other => {
            tracing::warn!(
                platform = NAME,
                msgtype = other,
                "unknown DingTalk msgtype: accepted, not routed"
            );
            return (
                EventKind::Notice,
                vec![Segment {
                    kind: Some(SegmentKind::Raw(Raw {
                        platform: NAME.to_string(),
                        r#type: other.to_string(),
                        data_json: String::from_utf8_lossy(body).into_owned(),
                    })),
                }],
            );
        }
    }
    (EventKind::Message, segments)
}
