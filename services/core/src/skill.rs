//! The `Skill` trait and its manifest: a unit of bot behaviour, and what it answers to.
//!
//! A skill never touches the bus or acks: the worker owns the loop, the ack and the retries,
//! decides from the manifest's triggers which skills a message reaches (see the worker's
//! router for the rule), checks permissions, and hands each skill one envelope at a time.

use crate::proto::{Envelope, Reply};

/// What a skill is and what it answers to. Built-in skills declare it in code; remote skills
/// send it over gRPC (`SkillManifest` in `proto/clawdbot/v1/skill.proto`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Stable snake_case (dots allowed: `system.shell`): metric label, config key, reply ids.
    pub name: String,
    /// One line for `help`.
    pub description: String,
    pub version: String,
    pub triggers: Triggers,
    /// Platforms it serves; empty means all.
    pub platforms: Vec<String>,
    /// Whether it runs before anyone enables it.
    pub enabled_by_default: bool,
    /// Only admins may use it, whatever the permissions file says.
    pub admin_only: bool,
}

/// What makes a message reach a skill. Any one trigger is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    /// Command prefixes: `/echo` matches `/echo hi` and `/echo`, not `/echoes`.
    pub commands: Vec<String>,
    /// Words or phrases anywhere in the text (case-insensitive).
    pub keywords: Vec<String>,
    /// Regular expressions over the text.
    pub patterns: Vec<String>,
    /// Event types (`notice.group_increase`, ...): notices and requests reach only skills that
    /// name their type here.
    pub event_types: Vec<String>,
}

/// What a skill may use besides the message itself. Grows with the capabilities skills are
/// given (history, key-value store); it never exposes the bus or the ack.
#[derive(Clone, Default)]
pub struct SkillContext {
    /// The name of the worker pool (consumer group) running the skill.
    pub pool: String,
    /// The skills the sender may use, as (name, description), for `help`.
    pub usable: Vec<(String, String)>,
    /// Read access to the conversation's history, where the worker has a store.
    pub history: Option<std::sync::Arc<dyn ConversationHistory>>,
}

/// One earlier message of a conversation, for skills that keep context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastMessage {
    /// The envelope id (inbound) or reply id (outbound).
    pub id: String,
    /// True for what the bot sent.
    pub from_bot: bool,
    /// The skill that sent it (outbound only).
    pub skill: String,
    pub text: String,
}

/// The history a skill may read: recent messages of the conversation it is answering in.
#[async_trait::async_trait]
pub trait ConversationHistory: Send + Sync {
    /// Returns up to `limit` most recent messages of `msg`'s conversation, oldest first.
    ///
    /// # Errors
    /// The store is unreachable (the reason).
    async fn recent(&self, msg: &Envelope, limit: usize) -> Result<Vec<PastMessage>, String>;
}

/// Why a skill failed, and so what the worker does with the message.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// A transient failure (a dependency timed out): the worker leaves the entry unacked and it
    /// is reclaimed and tried again after the idle time, up to the delivery limit.
    #[error("retryable skill failure: {0}")]
    Retryable(String),
    /// The message cannot be handled however often it is tried: the worker acks it and moves
    /// it to the dead-letter stream with this reason.
    #[error("permanent skill failure: {0}")]
    Permanent(String),
}

impl SkillError {
    /// Returns the error kind, used as the `error_type` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            SkillError::Retryable(_) => "skill_retryable",
            SkillError::Permanent(_) => "skill_permanent",
        }
    }
}

/// A unit of bot behaviour.
#[async_trait::async_trait]
pub trait Skill: Send + Sync {
    /// What the skill is and what it answers to.
    fn manifest(&self) -> &Manifest;

    /// The skill's name (the manifest's).
    fn name(&self) -> &str {
        &self.manifest().name
    }

    /// Handles one message the router sent here and returns the replies (possibly none).
    ///
    /// # Errors
    /// [`SkillError::Retryable`] to have the message tried again later,
    /// [`SkillError::Permanent`] to dead-letter it.
    async fn handle(&self, msg: &Envelope, cx: &SkillContext) -> Result<Vec<Reply>, SkillError>;
}

/// Returns the text after `command` when `text` starts with it as a whole word (`/echo hi` →
/// `Some("hi")`, `/echo` → `Some("")`, `/echoes` → `None`).
pub fn command_arguments<'a>(text: &'a str, command: &str) -> Option<&'a str> {
    let after = text.trim_start().strip_prefix(command)?;
    if after.is_empty() {
        return Some("");
    }
    after
        .starts_with(char::is_whitespace)
        .then(|| after.strip_prefix(' ').unwrap_or(&after[1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_whole_words_only() {
        assert_eq!(
            command_arguments("/echo hi there", "/echo"),
            Some("hi there")
        );
        assert_eq!(command_arguments("  /echo", "/echo"), Some(""));
        assert_eq!(command_arguments("/echo  two", "/echo"), Some(" two"));
        assert_eq!(command_arguments("/echoes", "/echo"), None);
        assert_eq!(command_arguments("say /echo", "/echo"), None);
    }
}
