//! `help`: `/help` lists the skills the bot has, one line each.

use clawdbot_core::proto::{Envelope, EventKind, Reply, Segment};
use clawdbot_core::skill::{Skill, SkillContext, SkillError};

/// The skill's name and the command that triggers it.
pub const NAME: &str = "help";
const COMMAND: &str = "/help";

/// The help skill, built with the list of every skill it describes.
pub struct HelpSkill {
    /// (name, description) of each skill, in registration order.
    entries: Vec<(&'static str, &'static str)>,
}

impl HelpSkill {
    /// Returns a help skill describing `entries` and itself.
    pub fn new(mut entries: Vec<(&'static str, &'static str)>) -> Self {
        entries.push((NAME, DESCRIPTION));
        Self { entries }
    }
}

const DESCRIPTION: &str = "/help: lists what this bot can do";

#[async_trait::async_trait]
impl Skill for HelpSkill {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        DESCRIPTION
    }

    fn accepts(&self, msg: &Envelope) -> bool {
        msg.kind() == EventKind::Message && msg.text.trim() == COMMAND
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let mut text = String::from("What I can do:");
        for (_, description) in &self.entries {
            text.push('\n');
            text.push_str(description);
        }
        Ok(vec![msg.reply(NAME, 0, vec![Segment::text(text)])])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_every_skill_and_itself() {
        let help = HelpSkill::new(vec![("echo", "/echo <text>: repeats the text")]);
        let msg = Envelope {
            id: "e".into(),
            kind: EventKind::Message.into(),
            text: "/help".into(),
            ..Default::default()
        };
        assert!(help.accepts(&msg));
        let replies = help
            .handle(&msg, &SkillContext::default())
            .await
            .expect("handled");
        assert_eq!(
            replies[0].segments,
            vec![Segment::text(
                "What I can do:\n/echo <text>: repeats the text\n/help: lists what this bot can do"
            )]
        );
        let other = Envelope {
            text: "/help me".into(),
            kind: EventKind::Message.into(),
            ..Default::default()
        };
        assert!(!help.accepts(&other));
    }
}
