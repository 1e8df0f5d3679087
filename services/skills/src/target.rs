//! Where a proactive message goes (an alert, a notice): a platform account and a group or a
//! user — not the conversation a message came from.

use clawdbot_core::proto::{Conversation, ConversationKind, Envelope, Reply, Segment};
use clawdbot_core::reply_id;
use serde::Deserialize;

/// One destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub platform: String,
    #[serde(default = "default_bot")]
    pub bot_id: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

fn default_bot() -> String {
    "default".to_string()
}

impl Target {
    /// Returns the problem with this target, if any: it names exactly one of group or user.
    pub fn problem(&self, path: &str) -> Option<String> {
        (self.group.is_some() == self.user.is_some())
            .then(|| format!("`{path}` needs exactly one of `group` or `user`"))
    }

    /// Returns the `index`-th message `skill` sends here for `msg`, with its idempotency key.
    pub fn reply(
        &self,
        msg: &Envelope,
        skill: &str,
        index: usize,
        segments: Vec<Segment>,
    ) -> Reply {
        let (kind, id) = match (&self.group, &self.user) {
            (Some(group), _) => (ConversationKind::Group, group.clone()),
            (None, user) => (ConversationKind::Private, user.clone().unwrap_or_default()),
        };
        Reply {
            id: reply_id(&msg.id, skill, index),
            platform: self.platform.clone(),
            bot_id: self.bot_id.clone(),
            conversation: Some(Conversation {
                kind: kind.into(),
                id,
            }),
            segments,
            in_reply_to: msg.id.clone(),
            reply_context: None,
            skill: skill.to_string(),
            trace: msg.trace.clone(),
        }
    }
}
