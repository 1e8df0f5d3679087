//! clawdbot-skills: the built-in skills, one folder each, and the registry.
//!
//! Adding a built-in skill means one folder plus one line in [`builtin`].

pub mod echo;
pub mod help;

use std::sync::Arc;

use clawdbot_core::skill::Skill;

/// Returns every built-in skill, in routing order.
pub fn builtin() -> Vec<Arc<dyn Skill>> {
    vec![Arc::new(echo::EchoSkill), Arc::new(help::HelpSkill)]
}
