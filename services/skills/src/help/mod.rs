//! `help`: `/help` lists the skills the asker may use, one line each (the router fills the
//! list after checking permissions, so nobody learns of a skill they cannot use).

use std::sync::LazyLock;

use clawdbot_core::proto::{Envelope, Reply, Segment};
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};

/// The skill's name.
pub const NAME: &str = "help";

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| Manifest {
    name: NAME.to_string(),
    description: "/help: lists what you can use here".to_string(),
    version: env!("CARGO_PKG_VERSION").to_string(),
    triggers: Triggers {
        commands: vec!["/help".to_string()],
        ..Default::default()
    },
    platforms: Vec::new(),
    enabled_by_default: true,
    admin_only: false,
});

/// The help skill.
pub struct HelpSkill;

#[async_trait::async_trait]
impl Skill for HelpSkill {
    fn manifest(&self) -> &Manifest {
        &MANIFEST
    }

    async fn handle(&self, msg: &Envelope, cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let mut text = String::from("What you can use here:");
        for (_, description) in &cx.usable {
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
    async fn lists_what_the_router_says_the_asker_may_use() {
        let cx = SkillContext {
            usable: vec![
                ("echo".into(), "/echo <text>: repeats the text".into()),
                ("help".into(), MANIFEST.description.clone()),
            ],
            ..Default::default()
        };
        let msg = Envelope {
            id: "e".into(),
            text: "/help".into(),
            ..Default::default()
        };
        let replies = HelpSkill.handle(&msg, &cx).await.expect("handled");
        assert_eq!(
            replies[0].segments,
            vec![Segment::text(
                "What you can use here:\n/echo <text>: repeats the text\n/help: lists what you can use here"
            )]
        );
    }
}
