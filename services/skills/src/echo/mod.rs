//! `echo`: `/echo <text>` answers `<text>` in the same conversation. Mentions, images and
//! other segments after the command are sent back as they came, so the skill also shows what a
//! platform can round-trip.

use std::sync::LazyLock;

use clawdbot_core::proto::{Envelope, Reply, Segment};
use clawdbot_core::skill::{
    Manifest, Skill, SkillContext, SkillError, Triggers, command_arguments,
};

/// The skill's name.
pub const NAME: &str = "echo";
const COMMAND: &str = "/echo";

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| Manifest {
    name: NAME.to_string(),
    description: "/echo <text>: repeats the text".to_string(),
    version: env!("CARGO_PKG_VERSION").to_string(),
    triggers: Triggers {
        commands: vec![COMMAND.to_string()],
        ..Default::default()
    },
    platforms: Vec::new(),
    enabled_by_default: true,
    admin_only: false,
});

/// The echo skill.
pub struct EchoSkill;

/// Returns the segments after the `/echo` command.
fn arguments(msg: &Envelope) -> Vec<Segment> {
    let Some((first, rest)) = msg.segments.split_first() else {
        return Vec::new();
    };
    let after = first
        .as_text()
        .and_then(|text| command_arguments(text, COMMAND))
        .unwrap_or_default();
    let mut segments = Vec::with_capacity(msg.segments.len());
    if !after.is_empty() {
        segments.push(Segment::text(after));
    }
    segments.extend(rest.iter().cloned());
    segments
}

#[async_trait::async_trait]
impl Skill for EchoSkill {
    fn manifest(&self) -> &Manifest {
        &MANIFEST
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let segments = arguments(msg);
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
    use clawdbot_core::proto::EventKind;

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
        let replies = EchoSkill
            .handle(&msg, &SkillContext::default())
            .await
            .expect("handled");
        assert_eq!(
            replies[0].segments,
            vec![Segment::text("usage: /echo <text>")]
        );
    }
}
