//! `echo`: `/echo <text>` answers `<text>` in the same conversation. Mentions, images and
//! other segments after the command are sent back as they came, so the skill also shows what a
//! platform can round-trip.

use clawdbot_core::proto::{Envelope, EventKind, Reply, Segment};
use clawdbot_core::skill::{Skill, SkillContext, SkillError};

/// The echo skill.
pub struct EchoSkill;

/// The skill's name and the command that triggers it.
pub const NAME: &str = "echo";
const COMMAND: &str = "/echo";

/// Returns the segments after the `/echo` command, or `None` when the message is not one.
fn arguments(msg: &Envelope) -> Option<Vec<Segment>> {
    let (first, rest) = msg.segments.split_first()?;
    let text = first.as_text()?.trim_start();
    let after = text.strip_prefix(COMMAND)?;
    // `/echoes` is another command.
    if !(after.is_empty() || after.starts_with(char::is_whitespace)) {
        return None;
    }
    let after = after.strip_prefix(' ').unwrap_or(after);
    let mut segments = Vec::with_capacity(msg.segments.len());
    if !after.is_empty() {
        segments.push(Segment::text(after));
    }
    segments.extend(rest.iter().cloned());
    Some(segments)
}

#[async_trait::async_trait]
impl Skill for EchoSkill {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "/echo <text>: repeats the text"
    }

    fn accepts(&self, msg: &Envelope) -> bool {
        msg.kind() == EventKind::Message && arguments(msg).is_some()
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let segments = arguments(msg).unwrap_or_default();
        let blank = segments
            .iter()
            .all(|s| s.as_text().is_some_and(|t| t.trim().is_empty()));
        let segments = if blank {
            vec![Segment::text("usage: /echo <text>")]
        } else {
            segments
        };
        Ok(vec![msg.reply(NAME, 0, segments)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(segments: Vec<Segment>) -> Envelope {
        Envelope {
            id: "e1".into(),
            kind: EventKind::Message.into(),
            segments,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn echoes_the_text_and_keeps_other_segments() {
        let msg = message(vec![
            Segment::text("/echo 你好 "),
            Segment::mention("7"),
            Segment::image("http://i"),
        ]);
        assert!(EchoSkill.accepts(&msg));
        let replies = EchoSkill
            .handle(&msg, &SkillContext::default())
            .await
            .expect("handled");
        assert_eq!(replies.len(), 1);
        assert_eq!(
            replies[0].segments,
            vec![
                Segment::text("你好 "),
                Segment::mention("7"),
                Segment::image("http://i")
            ]
        );
        assert_eq!(replies[0].id, "e1:echo:0");
        assert_eq!(replies[0].in_reply_to, "e1");
    }

    #[tokio::test]
    async fn bare_command_gets_usage() {
        let msg = message(vec![Segment::text("/echo")]);
        assert!(EchoSkill.accepts(&msg));
        let replies = EchoSkill
            .handle(&msg, &SkillContext::default())
            .await
            .expect("handled");
        assert_eq!(
            replies[0].segments,
            vec![Segment::text("usage: /echo <text>")]
        );
    }

    #[test]
    fn other_messages_are_not_accepted() {
        for text in ["hello", "/echoes x", "echo x"] {
            assert!(
                !EchoSkill.accepts(&message(vec![Segment::text(text)])),
                "{text}"
            );
        }
        let notice = Envelope {
            kind: EventKind::Notice.into(),
            segments: vec![Segment::text("/echo x")],
            ..Default::default()
        };
        assert!(!EchoSkill.accepts(&notice));
    }
}
