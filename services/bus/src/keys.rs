//! The Redis key layout, built from one prefix. Every key is hash-tagged with `{prefix}` so that
//! a Lua script touching a stream and its dedupe or ledger keys stays within one Redis Cluster
//! slot.

/// The streams clawdbot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Envelopes from ingress.
    Inbound,
    /// Records of delivered replies, from egress.
    Outbound,
    /// Entries that could not be processed.
    Dead,
}

impl Stream {
    /// Returns the stream's short name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Inbound => "in",
            Stream::Outbound => "out",
            Stream::Dead => "dead",
        }
    }
}

/// Key builder for one deployment (or one test).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Returns the key builder for `prefix` (`clawdbot` in production, `test-<random>` in tests).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: format!("{{{prefix}}}"),
        }
    }

    /// Returns the key of `stream`.
    pub fn stream(&self, stream: Stream) -> String {
        format!("{}:{}", self.prefix, stream.as_str())
    }

    /// Returns the dedupe key of a platform message.
    pub fn dedupe(&self, dedupe_key: &str) -> String {
        format!("{}:dedupe:{dedupe_key}", self.prefix)
    }

    /// Returns the ledger key of a reply.
    pub fn reply(&self, reply_id: &str) -> String {
        format!("{}:reply:{reply_id}", self.prefix)
    }

    /// Returns the turn record of a conversation (a hash: `seq`, and `done:{group}` per group).
    pub fn turn(&self, order_key: &str) -> String {
        format!("{}:turn:{order_key}", self.prefix)
    }

    /// Returns the heartbeat key of a role instance.
    pub fn heartbeat(&self, instance: &str) -> String {
        format!("{}:heartbeat:{instance}", self.prefix)
    }

    /// Returns the counter key of a rate limit.
    pub fn rate(&self, key: &str) -> String {
        format!("{}:rate:{key}", self.prefix)
    }

    /// Returns the key of a shared value (a platform token, a lease, a media id).
    pub fn shared_value(&self, key: &str) -> String {
        format!("{}:kv:{key}", self.prefix)
    }

    /// Returns the key of a send schedule (reserved slots, a sorted set).
    pub fn schedule(&self, key: &str) -> String {
        format!("{}:slots:{key}", self.prefix)
    }

    /// Returns the pub/sub channel of a broadcast channel.
    pub fn broadcast(&self, channel: &str) -> String {
        format!("{}:broadcast:{channel}", self.prefix)
    }

    /// Returns the pattern matching every key of this prefix (for test clean-up).
    pub fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }
}
