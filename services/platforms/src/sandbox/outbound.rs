//! Replies to the sandbox: broadcast as JSON to the pages watching the conversation.

use std::sync::Arc;

use clawdbot_core::proto::{ConversationKind, Reply, segment::Kind as SegmentKind};
use serde_json::{Value, json};

use super::NAME;
use crate::{Delivered, Outbound, OutboundError};

/// Where sandbox replies go: the bus's broadcast, in the running process.
#[async_trait::async_trait]
pub trait SandboxSink: Send + Sync {
    /// Sends `payload` to every page subscribed to `channel`.
    ///
    /// # Errors
    /// The broadcast could not be sent (the reason).
    async fn deliver(&self, channel: &str, payload: Vec<u8>) -> Result<(), String>;
}

/// Returns the broadcast channel of sandbox account `bot_id`.
pub fn channel(bot_id: &str) -> String {
    format!("{NAME}:{bot_id}")
}

/// The outbound half of the sandbox.
pub struct SandboxOutbound {
    sink: Arc<dyn SandboxSink>,
}

impl SandboxOutbound {
    /// Returns the outbound half delivering through `sink`.
    pub fn new(sink: Arc<dyn SandboxSink>) -> Self {
        Self { sink }
    }
}

/// Returns the JSON the page receives for `reply`: its conversation and its segments, each
/// with a `type` (`text`, `markdown`, `image`, `mention`, `link`, `file`, ...).
pub fn reply_json(reply: &Reply) -> Value {
    let conversation = reply.conversation.clone().unwrap_or_default();
    let kind = match conversation.kind() {
        ConversationKind::Group => "group",
        ConversationKind::Channel => "channel",
        _ => "private",
    };
    let segments: Vec<Value> = reply
        .segments
        .iter()
        .filter_map(|segment| {
            Some(match segment.kind.as_ref()? {
                SegmentKind::Text(text) => json!({"type": "text", "text": text.text}),
                SegmentKind::Markdown(markdown) => json!({"type": "markdown", "markdown": markdown.markdown}),
                SegmentKind::Mention(mention) => json!({"type": "mention", "user_id": mention.user_id, "all": mention.all}),
                SegmentKind::Image(media) => json!({"type": "image", "url": media.url}),
                SegmentKind::File(media) => json!({"type": "file", "url": media.url, "name": media.name}),
                SegmentKind::Voice(media) => json!({"type": "voice", "url": media.url}),
                SegmentKind::Video(media) => json!({"type": "video", "url": media.url}),
                SegmentKind::Link(link) => json!({"type": "link", "url": link.url, "title": link.title, "description": link.description}),
                SegmentKind::Quote(quote) => json!({"type": "quote", "message_id": quote.message_id}),
                SegmentKind::Raw(raw) => json!({"type": "text", "text": format!("[{}]", raw.r#type)}),
            })
        })
        .collect();
    json!({
        "reply_id": reply.id,
        "skill": reply.skill,
        "conversation": {"kind": kind, "id": conversation.id},
        "segments": segments,
    })
}

#[async_trait::async_trait]
impl Outbound for SandboxOutbound {
    async fn send(&self, reply: &Reply) -> Result<Delivered, OutboundError> {
        if reply.conversation.as_ref().is_none_or(|c| c.id.is_empty()) {
            return Err(OutboundError::InvalidReply(
                "reply has no conversation".into(),
            ));
        }
        let payload = reply_json(reply).to_string().into_bytes();
        match self.sink.deliver(&channel(&reply.bot_id), payload).await {
            Ok(()) => Ok(Delivered {
                platform_message_id: reply.id.clone(),
                attempts: 1,
                notes: Vec::new(),
            }),
            Err(reason) => Err(OutboundError::Unavailable {
                reason,
                attempts: 1,
            }),
        }
    }
}
