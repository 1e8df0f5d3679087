//! Messages typed into the sandbox page.

use clawdbot_core::message::{new_envelope_id, now_ms, render_text};
use clawdbot_core::proto::{Conversation, ConversationKind, Envelope, EventKind, Segment, Sender};
use serde::Deserialize;

use super::{NAME, SandboxConfig};
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

/// Longest accepted message, in characters (the page enforces it too).
const MAX_TEXT_CHARS: usize = 4000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Typed {
    user_id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    is_admin: bool,
    conversation: TypedConversation,
    text: String,
    /// Set by the page per message, so that a resent request is not processed twice.
    #[serde(default)]
    message_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedConversation {
    kind: String,
    #[serde(default)]
    id: String,
}

/// The inbound half of the sandbox.
pub struct SandboxInbound {
    config: SandboxConfig,
}

impl SandboxInbound {
    /// Returns the inbound half for `config`.
    pub fn new(config: SandboxConfig) -> Self {
        Self { config }
    }
}

impl Inbound for SandboxInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        &self.config.id
    }

    /// Nothing to verify: the sandbox trusts the page (see the module docs).
    fn verify(&self, _req: &WebhookRequest) -> Result<(), InboundError> {
        Ok(())
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        if req.method != http::Method::POST {
            return Err(InboundError::UnsupportedEvent(format!(
                "method `{}`; the sandbox takes POST",
                req.method
            )));
        }
        crate::json_limits::check(req.body)?;
        let typed: Typed = serde_json::from_slice(req.body).map_err(|error| {
            InboundError::MalformedBody(format!("not a sandbox message: {error}"))
        })?;
        let user_id = typed.user_id.trim();
        if user_id.is_empty() || user_id.chars().count() > 64 {
            return Err(InboundError::MalformedBody(
                "`user_id` must be 1 to 64 characters".into(),
            ));
        }
        if typed.text.trim().is_empty() || typed.text.chars().count() > MAX_TEXT_CHARS {
            return Err(InboundError::MalformedBody(format!(
                "`text` must be 1 to {MAX_TEXT_CHARS} characters"
            )));
        }
        let conversation = match typed.conversation.kind.as_str() {
            "private" => Conversation {
                kind: ConversationKind::Private.into(),
                id: user_id.to_string(),
            },
            "group" if !typed.conversation.id.trim().is_empty() => Conversation {
                kind: ConversationKind::Group.into(),
                id: typed.conversation.id.trim().to_string(),
            },
            "group" => {
                return Err(InboundError::MalformedBody(
                    "a group conversation needs an `id`".into(),
                ));
            }
            other => {
                return Err(InboundError::MalformedBody(format!(
                    "conversation kind `{other}`, expected `private` or `group`"
                )));
            }
        };
        let segments = vec![Segment::text(typed.text.clone())];
        let role = if typed.is_admin { "admin" } else { "member" };
        Ok(Inbox::Envelopes(vec![Envelope {
            id: new_envelope_id(),
            platform: NAME.to_string(),
            bot_id: self.config.id.clone(),
            self_id: format!("{NAME}-bot"),
            message_id: typed.message_id.clone(),
            kind: EventKind::Message.into(),
            event_type: format!("message.{}", typed.conversation.kind),
            conversation: Some(conversation),
            sender: Some(Sender {
                user_id: user_id.to_string(),
                display_name: if typed.display_name.is_empty() {
                    user_id.to_string()
                } else {
                    typed.display_name
                },
                is_admin: typed.is_admin,
                role: role.to_string(),
            }),
            text: render_text(&segments),
            segments,
            sent_at_ms: now_ms(),
            received_at_ms: now_ms(),
            reply_context: None,
            trace: None,
            mentions_bot: false,
            dedupe_id: String::new(),
        }]))
    }
}
