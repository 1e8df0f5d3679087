//! Helpers around the generated message model: segment constructors, text rendering, ids.

use crate::proto::{
    Conversation, Envelope, Media, Mention, Reply, Segment, Text, segment::Kind as SegmentKind,
};

/// Returns the current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Returns a new time-ordered envelope id.
pub fn new_envelope_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Returns the idempotency key of the `index`-th reply that `skill` produced for `envelope_id`.
///
/// Deterministic on purpose: when a message is processed twice (a reclaimed entry, a worker that
/// died after sending), the second run produces the same keys and egress delivers nothing twice.
pub fn reply_id(envelope_id: &str, skill: &str, index: usize) -> String {
    format!("{envelope_id}:{skill}:{index}")
}

impl Segment {
    /// Returns a text segment.
    pub fn text(text: impl Into<String>) -> Self {
        Segment {
            kind: Some(SegmentKind::Text(Text { text: text.into() })),
        }
    }

    /// Returns a mention of one user.
    pub fn mention(user_id: impl Into<String>) -> Self {
        Segment {
            kind: Some(SegmentKind::Mention(Mention {
                user_id: user_id.into(),
                all: false,
                display_name: String::new(),
            })),
        }
    }

    /// Returns an image segment pointing at `url`.
    pub fn image(url: impl Into<String>) -> Self {
        Segment {
            kind: Some(SegmentKind::Image(Media {
                url: url.into(),
                ..Default::default()
            })),
        }
    }

    /// Returns the text of a text segment, `None` for any other kind.
    pub fn as_text(&self) -> Option<&str> {
        match &self.kind {
            Some(SegmentKind::Text(text)) => Some(&text.text),
            _ => None,
        }
    }
}

/// Renders segments as plain text: text as is, mentions as `@id`, media as `[image]` etc.
pub fn render_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match &segment.kind {
            Some(SegmentKind::Text(text)) => out.push_str(&text.text),
            Some(SegmentKind::Mention(mention)) if mention.all => out.push_str("@all"),
            Some(SegmentKind::Mention(mention)) => {
                out.push('@');
                out.push_str(&mention.user_id);
            }
            Some(SegmentKind::Image(_)) => out.push_str("[image]"),
            Some(SegmentKind::File(_)) => out.push_str("[file]"),
            Some(SegmentKind::Voice(_)) => out.push_str("[voice]"),
            Some(SegmentKind::Video(_)) => out.push_str("[video]"),
            Some(SegmentKind::Link(link)) => out.push_str(&link.url),
            Some(SegmentKind::Markdown(markdown)) => out.push_str(&markdown.markdown),
            Some(SegmentKind::Quote(_)) => {}
            Some(SegmentKind::Raw(raw)) => {
                out.push('[');
                out.push_str(&raw.r#type);
                out.push(']');
            }
            None => {}
        }
    }
    out
}

/// Takes every mention of the bot itself (`bot_user_id`) out of `segments` and returns whether
/// there was one: a message addressed to the bot is routed and handed to skills as if the
/// mention were not there (`@bot /echo hi` is `/echo hi`), and the envelope's `mentions_bot`
/// records it. Mentions of anyone else (and `@all`) stay. The space a leading mention leaves
/// is dropped.
pub fn take_bot_mentions(segments: &mut Vec<Segment>, bot_user_id: &str) -> bool {
    let before = segments.len();
    segments.retain(|segment| {
        !matches!(&segment.kind, Some(SegmentKind::Mention(m)) if !m.all && m.user_id == bot_user_id)
    });
    if segments.len() == before {
        return false;
    }
    if let Some(Segment {
        kind: Some(SegmentKind::Text(first)),
    }) = segments.first_mut()
    {
        first.text = first.text.trim_start().to_string();
        if first.text.is_empty() {
            segments.remove(0);
        }
    }
    true
}

impl Envelope {
    /// Returns a reply to this envelope, addressed to the same conversation, with the
    /// deterministic idempotency key of `skill`'s `index`-th reply.
    pub fn reply(&self, skill: &str, index: usize, segments: Vec<Segment>) -> Reply {
        Reply {
            id: reply_id(&self.id, skill, index),
            platform: self.platform.clone(),
            bot_id: self.bot_id.clone(),
            conversation: self.conversation.clone(),
            segments,
            in_reply_to: self.id.clone(),
            reply_context: self.reply_context.clone(),
            skill: skill.to_string(),
            trace: self.trace.clone(),
        }
    }

    /// Returns the conversation, or the default (unspecified) one.
    pub fn conversation_or_default(&self) -> Conversation {
        self.conversation.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ids_are_deterministic_per_envelope_skill_and_index() {
        assert_eq!(reply_id("e1", "echo", 0), reply_id("e1", "echo", 0));
        assert_ne!(reply_id("e1", "echo", 0), reply_id("e1", "echo", 1));
        assert_ne!(reply_id("e1", "echo", 0), reply_id("e1", "help", 0));
    }

    #[test]
    fn renders_mixed_segments_as_text() {
        let segments = vec![
            Segment::text("hi "),
            Segment::mention("42"),
            Segment::image("u"),
        ];
        assert_eq!(render_text(&segments), "hi @42[image]");
    }
}
