//! The `Skill` trait: a unit of bot behaviour. A skill never touches the bus or acks; the
//! worker owns the loop, the ack and the retries, and hands each skill one envelope at a time.

use crate::proto::{Envelope, Reply};

/// What a skill may use besides the message itself. Grows with the capabilities skills are
/// given (history, key-value store); it never exposes the bus or the ack.
#[derive(Debug, Clone, Default)]
pub struct SkillContext {
    /// The name of the worker pool (consumer group) running the skill.
    pub pool: String,
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
    /// Stable snake_case name: metric label, span field, config key, part of reply ids.
    fn name(&self) -> &'static str;
    /// One line for `help`.
    fn description(&self) -> &'static str;
    /// Cheap, pure filter. Messages no skill accepts are acked and skipped.
    fn accepts(&self, msg: &Envelope) -> bool;
    /// Handles one message and returns the replies to send (possibly none).
    ///
    /// # Errors
    /// [`SkillError::Retryable`] to have the message tried again later,
    /// [`SkillError::Permanent`] to dead-letter it.
    async fn handle(&self, msg: &Envelope, cx: &SkillContext) -> Result<Vec<Reply>, SkillError>;
}
