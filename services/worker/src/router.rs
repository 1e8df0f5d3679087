//! Which skills a message reaches.
//!
//! The rule: only message events are routed (notices, requests and meta events are kept for
//! history but reach no skill); every enabled skill whose `accepts` returns true gets the
//! message, in registration order, and each skill's replies are sent in the order it returned
//! them. A message no skill accepts is acknowledged and dropped.

use std::sync::Arc;

use clawdbot_core::proto::{Envelope, EventKind};
use clawdbot_core::skill::Skill;

/// The enabled skills of one pool.
#[derive(Clone)]
pub struct Router {
    skills: Vec<Arc<dyn Skill>>,
}

impl Router {
    /// Returns a router over `skills`, in that order.
    pub fn new(skills: Vec<Arc<dyn Skill>>) -> Self {
        Self { skills }
    }

    /// Returns the skills `msg` reaches.
    pub fn route<'a>(&'a self, msg: &'a Envelope) -> impl Iterator<Item = &'a Arc<dyn Skill>> + 'a {
        let routable = msg.kind() == EventKind::Message;
        self.skills
            .iter()
            .filter(move |skill| routable && skill.accepts(msg))
    }
}
