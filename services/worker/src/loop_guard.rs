//! Stops two bots answering each other for ever. Each reply to a sender in a conversation is
//! counted in a shared window (every worker counts into the same key); past `max_replies` in
//! `window`, that sender is not answered there for `pause`. The pause is a key of its own, so
//! a loop stays cut after the window turns over, and every worker sees it.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_config::LoopGuardConfig;
use clawdbot_core::proto::Envelope;
use clawdbot_core::shared::SharedState;
use clawdbot_core::telemetry::WORKER_LOOPS_CUT_TOTAL;

/// What the guard says about answering one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// The conversation with this sender is cut (paused): do not answer.
    Cut,
}

/// The guard over one worker's replies.
#[derive(Clone)]
pub struct LoopGuard {
    state: Arc<dyn SharedState>,
    max_replies: u64,
    window: Duration,
    pause: Duration,
}

impl LoopGuard {
    /// Returns the guard, or `None` when `config` turns it off.
    pub fn new(state: Arc<dyn SharedState>, config: &LoopGuardConfig) -> Option<Self> {
        (config.max_replies > 0).then(|| Self {
            state,
            max_replies: config.max_replies,
            window: Duration::from_secs(config.window_secs),
            pause: Duration::from_secs(config.pause_secs),
        })
    }

    /// Counts one answer to `msg`'s sender and says whether to give it: `Cut` while the
    /// sender is paused in that conversation, or when this answer is one too many (which
    /// starts the pause, logged and counted once). Both lookups go out together, so the guard
    /// costs one round trip, run beside the skills.
    pub async fn admit(&self, msg: &Envelope) -> Verdict {
        let Some(key) = key(msg) else {
            return Verdict::Answer;
        };
        let pause_key = format!("loop:cut:{key}");
        let count_key = format!("loop:count:{key}");
        let (paused, answered) = tokio::join!(
            self.state.get_value(&pause_key),
            self.state.increment(&count_key, 1, self.window)
        );
        let (paused, answered) = match (paused, answered) {
            (Ok(paused), Ok(answered)) => (paused.is_some(), answered),
            (Err(error), _) | (_, Err(error)) => {
                // The guard protects; it must not stop the bot when the bus is away.
                tracing::warn!(error = %error, "loop guard unavailable; answering");
                return Verdict::Answer;
            }
        };
        if paused {
            return Verdict::Cut;
        }
        if answered <= self.max_replies {
            return Verdict::Answer;
        }
        if answered == self.max_replies + 1 {
            self.start_pause(msg, &pause_key).await;
        }
        Verdict::Cut
    }

    async fn start_pause(&self, msg: &Envelope, pause_key: &str) {
        if let Err(error) = self.state.put_value(pause_key, "1", self.pause).await {
            tracing::warn!(error = %error, "loop guard could not record the pause");
        }
        metrics::counter!(WORKER_LOOPS_CUT_TOTAL, "platform" => msg.platform.clone()).increment(1);
        tracing::warn!(
            platform = %msg.platform,
            bot_id = %msg.bot_id,
            conversation = %msg.conversation.as_ref().map(|c| c.id.as_str()).unwrap_or_default(),
            sender = %msg.sender.as_ref().map(|s| s.user_id.as_str()).unwrap_or_default(),
            max_replies = self.max_replies,
            window_secs = self.window.as_secs(),
            pause_secs = self.pause.as_secs(),
            "reply loop cut: this sender got more answers than people ask for; not answering them here for the pause (another bot answering ours?)"
        );
    }
}

/// `platform:bot:conversation:sender`, for messages from someone in a conversation (system
/// events — alerts, notify calls — have no sender and are never cut).
fn key(msg: &Envelope) -> Option<String> {
    let sender = msg.sender.as_ref()?;
    let conversation = msg.conversation.as_ref()?;
    Some(format!(
        "{}:{}:{}:{}:{}",
        msg.platform, msg.bot_id, conversation.kind, conversation.id, sender.user_id
    ))
}

#[cfg(test)]
mod tests {
    use clawdbot_core::proto::{Conversation, ConversationKind, Sender};

    use super::*;

    fn from(user: &str) -> Envelope {
        Envelope {
            platform: "onebot".into(),
            bot_id: "default".into(),
            conversation: Some(Conversation {
                kind: ConversationKind::Group.into(),
                id: "123".into(),
            }),
            sender: Some(Sender {
                user_id: user.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_sender_past_the_limit_is_cut_for_the_pause_and_no_one_else_is() {
        let config = LoopGuardConfig {
            max_replies: 3,
            window_secs: 1,
            pause_secs: 3,
        };
        let guard =
            LoopGuard::new(Arc::new(clawdbot_bus::memory::MemoryBus::new()), &config).expect("on");
        let other_bot = from("bot-b");
        for _ in 0..3 {
            assert_eq!(guard.admit(&other_bot).await, Verdict::Answer);
        }
        assert_eq!(guard.admit(&other_bot).await, Verdict::Cut, "the fourth");
        assert_eq!(guard.admit(&from("alice")).await, Verdict::Answer);
        // The window turns over, the pause does not: still cut.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(guard.admit(&other_bot).await, Verdict::Cut);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(guard.admit(&other_bot).await, Verdict::Answer, "after it");
        let system = Envelope {
            sender: None,
            ..from("x")
        };
        for _ in 0..10 {
            assert_eq!(
                guard.admit(&system).await,
                Verdict::Answer,
                "alerts are never cut"
            );
        }
        let off = LoopGuardConfig {
            max_replies: 0,
            ..config
        };
        assert!(LoopGuard::new(Arc::new(clawdbot_bus::memory::MemoryBus::new()), &off).is_none());
    }
}
