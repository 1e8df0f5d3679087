//! clawdbot-bus: the message bus between the roles.
//!
//! [`Bus`] is the trait the roles use; [`redis::RedisBus`] implements it on Redis Streams for
//! the cluster (an in-process implementation for the embedded mode shares the same contract).
//!
//! Streams (keys built in [`keys`] from one prefix):
//! - `inbound`: envelopes published by ingress; groups `skills` (workers) and `history`;
//! - `outbound`: records of delivered replies, published by egress; group `history`;
//! - `dead`: entries that could not be processed, with the reason.
//!
//! Contract the roles rely on:
//! - [`Bus::publish`] dedupes and appends in one atomic step per item, so that a dedupe key is
//!   never set for a message that is not in the stream;
//! - an entry read by a consumer stays pending until acked, and another consumer reclaims it
//!   after the idle time, with its delivery count;
//! - [`Bus::trim`] never drops an entry that some group has not acknowledged; a full stream
//!   refuses new entries ([`Published::Full`]) instead of growing without bound.

pub mod keys;
pub mod memory;
pub mod redis;

use std::time::Duration;

pub use keys::{Keys, Stream};

/// The consumer group of the default skill pool.
pub const SKILLS_GROUP: &str = "skills";
/// The consumer group of the history writer.
pub const HISTORY_GROUP: &str = "history";

/// Counts and logs an entry moved to the dead letters (every backend, the same way).
pub(crate) fn record_dead_letter(stream: Stream, group: &str, entry: &Entry, reason: &str) {
    metrics::counter!(clawdbot_core::telemetry::DEAD_LETTERS_TOTAL, "group" => group.to_string())
        .increment(1);
    tracing::warn!(stream = stream.as_str(), group, entry_id = %entry.id, reason, "entry moved to dead letters");
}

/// One item to publish on the inbound stream.
#[derive(Debug, Clone)]
pub struct Publish {
    /// The envelope, protobuf-encoded.
    pub payload: Vec<u8>,
    /// W3C traceparent of the span that published it.
    pub traceparent: String,
    /// `platform:bot_id:message_id`; `None` for events without a platform id.
    pub dedupe_key: Option<String>,
    /// The conversation whose order the item keeps (`platform:bot_id:kind:id`): the bus numbers
    /// the items of one conversation as it appends them (see [`Turns`]). `None`: unordered.
    pub order_key: Option<String>,
}

/// A message's place in its conversation: the `seq`-th item of `key` the bus appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub key: String,
    pub seq: u64,
}

/// How long a conversation's numbering lives after its last message: one idle longer starts
/// again from 1 (with its groups' progress, which lives in the same record).
pub const TURN_TTL: Duration = Duration::from_secs(24 * 3600);

/// What happened to one published item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Appended with this stream id.
    Appended(String),
    /// Already accepted within the dedupe window; not appended again.
    Duplicate,
    /// The stream is at its maximum length; the caller should answer "retry later".
    Full,
}

/// One stream entry as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub payload: Vec<u8>,
    pub traceparent: String,
    /// How many times the entry has been delivered, this time included.
    pub deliveries: u64,
    /// Its place in its conversation, when it was published with an order key.
    pub turn: Option<Turn>,
}

/// An entry of the dead-letter stream: the original payload and why it landed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub payload: Vec<u8>,
    pub reason: String,
    /// The stream id it had where it failed.
    pub source_id: String,
    pub group: String,
    /// How many times it had been delivered when it was given up.
    pub deliveries: u64,
}

/// What [`DeadLetters::replay`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Back in the inbound stream under this id (and no longer a dead letter).
    Appended(String),
    /// It had been replayed already (within the dedupe window): not appended again.
    AlreadyReplayed,
    /// No such dead letter.
    Missing,
}

/// Returns the (milliseconds, sequence) of a stream id like `1700000000000-3`.
pub(crate) fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Length and per-group state of a stream, for metrics and `status`.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub length: u64,
    /// (group, pending, lag) for each group.
    pub groups: Vec<(String, u64, u64)>,
}

/// Errors from the bus. Every variant means "the bus could not be reached or refused": the
/// caller treats it as transient (answer 503, leave unacked, retry). The variants say nothing
/// about the backend (the in-process bus never fails; Redis maps its errors in `redis`), so a
/// backend added later fits without changing callers.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The backend could not be reached (connection refused or lost, I/O).
    #[error("bus command `{command}` failed")]
    Unavailable {
        command: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered with an error: `code` is its error code (Redis: `NOGROUP`, `ERR`,
    /// `LOADING` …), which backend code matches on to recover (recreate a group, reload a script).
    #[error("bus command `{command}` refused ({code}): {detail}")]
    Refused {
        command: &'static str,
        code: String,
        detail: String,
    },
    #[error("bus command `{command}` timed out after {timeout:?}")]
    Timeout {
        command: &'static str,
        timeout: Duration,
    },
    #[error("unexpected bus reply to `{command}`: {detail}")]
    Protocol {
        command: &'static str,
        detail: String,
    },
}

impl BusError {
    /// Returns the error kind, used as the `error_type` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            BusError::Unavailable { .. } => "bus_unavailable",
            BusError::Refused { .. } => "bus_refused",
            BusError::Timeout { .. } => "bus_timeout",
            BusError::Protocol { .. } => "bus_protocol",
        }
    }

    /// Returns true when the backend refused with error `code`.
    pub fn is_refusal(&self, code: &str) -> bool {
        matches!(self, BusError::Refused { code: c, .. } if c == code)
    }
}

/// The message streams: the inbound stream and its consumer groups, the dead letters.
#[async_trait::async_trait]
pub trait Streams: Send + Sync {
    /// Dedupes and appends each item to the inbound stream, atomically per item, in one round
    /// trip for the whole batch. `dedupe_window` is how long a message id is remembered;
    /// `max_len` is the stream length past which items are refused.
    ///
    /// # Errors
    /// The bus is unreachable: nothing was appended, or some items were; the caller answers
    /// "retry later" for all of them, and the dedupe makes the retry safe.
    async fn publish(
        &self,
        items: &[Publish],
        dedupe_window: Duration,
        max_len: u64,
    ) -> Result<Vec<Published>, BusError>;

    /// Appends one entry to `stream` (outbound records, proactive messages).
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn append(
        &self,
        stream: Stream,
        payload: &[u8],
        traceparent: &str,
    ) -> Result<String, BusError>;

    /// Creates `group` on `stream` (and the stream) if missing; the group starts at the
    /// beginning of the stream, so that nothing published before it existed is skipped.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn ensure_group(&self, stream: Stream, group: &str) -> Result<(), BusError>;

    /// Returns a consumer named `consumer` in `group` on `stream`, with its own connection
    /// (blocking reads must not hold up the shared one).
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn consumer(
        &self,
        stream: Stream,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn Consumer>, BusError>;

    /// Drops entries every group has acknowledged, never one still pending or unread.
    /// Returns how many were dropped.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn trim(&self, stream: Stream) -> Result<u64, BusError>;

    /// Returns the stream's length and its groups' pending counts.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn stats(&self, stream: Stream) -> Result<StreamStats, BusError>;

    /// Acknowledges entries of `group` on `stream`: they are done and will not be delivered
    /// again.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn ack(&self, stream: Stream, group: &str, ids: &[String]) -> Result<(), BusError>;

    /// Moves an entry to the dead-letter stream with `reason` and acknowledges it, atomically.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn dead_letter(
        &self,
        stream: Stream,
        group: &str,
        entry: &Entry,
        reason: &str,
    ) -> Result<(), BusError>;
}

/// Messages to every process at once (sandbox replies, registry changes).
#[async_trait::async_trait]
pub trait Broadcast: Send + Sync {
    /// Sends `payload` to every current subscriber of `channel`, in every process, and returns
    /// how many it reached. Live views and calls only (the sandbox chat, a OneBot socket's
    /// calls): nothing is stored, and a subscriber that is not listening at that moment misses
    /// it.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn broadcast(&self, channel: &str, payload: &[u8]) -> Result<u64, BusError>;

    /// Subscribes to `channel`. The subscription lives until the receiver is dropped, and
    /// reconnects by itself after a bus outage (missing what was sent meanwhile).
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>, BusError>;
}

/// What the processes of a cluster tell each other: heartbeats and shared rate limits.
#[async_trait::async_trait]
pub trait Presence: Send + Sync {
    /// Records that an instance of a role is alive: `value` (JSON) under `instance`, for `ttl`.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn heartbeat(&self, instance: &str, value: &str, ttl: Duration) -> Result<(), BusError>;

    /// Returns the heartbeats still alive, by instance.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn heartbeats(&self) -> Result<Vec<(String, String)>, BusError>;

    /// Counts one use of `key` in its current window (fixed, starting with its first use) and
    /// returns whether it is within `limit`. Atomic: workers racing never let more through.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn rate_limit(&self, key: &str, limit: u32, window: Duration) -> Result<bool, BusError>;
}

/// The dead letters, for the operator (`clawdbot dlq`).
#[async_trait::async_trait]
pub trait DeadLetters: Send + Sync {
    /// Returns up to `limit` dead letters written after the one with id `after` (`""`: from
    /// the oldest), oldest first.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn dead_letters(&self, after: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError>;

    /// Returns one dead letter.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn dead_letter_by_id(&self, id: &str) -> Result<Option<DeadLetter>, BusError>;

    /// Moves a dead letter back into the inbound stream (unordered: its conversation has moved
    /// on), atomically and once: a second replay within `dedupe_window` appends nothing.
    /// Its replies keep their ids, so those already delivered are not sent again.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn replay(&self, id: &str, dedupe_window: Duration) -> Result<Replayed, BusError>;

    /// Deletes the dead letters written before `older_than_ms` (ms since the epoch); returns
    /// how many.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn purge_dead_letters(&self, older_than_ms: u64) -> Result<u64, BusError>;
}

/// Per-conversation order: how far each consumer group has got in each conversation. A group
/// finishes turns in order (a message is answered only after the one before it), so that
/// replies go out in the order their messages came in, across any number of workers.
#[async_trait::async_trait]
pub trait Turns: Send + Sync {
    /// Returns, for each conversation key, the highest turn `group` has finished (0: none).
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn finished_turns(&self, group: &str, keys: &[String]) -> Result<Vec<u64>, BusError>;

    /// Records each turn as finished by `group`; a conversation's progress never goes back.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn finish_turns(&self, group: &str, turns: &[Turn]) -> Result<(), BusError>;
}

/// The bus, shared by all tasks of a process: each concern in its own trait, so that a caller
/// can take only the one it uses, plus what the whole bus answers for.
#[async_trait::async_trait]
pub trait Bus:
    Streams
    + Turns
    + DeadLetters
    + Broadcast
    + Presence
    + clawdbot_core::shared::SharedState
    + Send
    + Sync
{
    /// Returns true when entries outlive this process (Redis), false when they live and die
    /// with it (the in-process bus): then the roles drain what is queued before exiting.
    fn durable(&self) -> bool;

    /// Checks that the bus answers.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn ping(&self) -> Result<(), BusError>;

    /// Returns the reply ledger egress uses for idempotency.
    fn ledger(&self) -> &dyn ReplyLedger;
}

/// One consumer in a consumer group.
#[async_trait::async_trait]
pub trait Consumer: Send {
    /// Reads up to `count` new entries, waiting at most `block` for the first.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Entry>, BusError>;

    /// Claims up to `count` entries that other consumers (or this one) left pending for longer
    /// than `min_idle`, with their delivery counts.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn reclaim(&mut self, min_idle: Duration, count: usize) -> Result<Vec<Entry>, BusError>;

    /// Marks entries this consumer is still working on (retrying in process) as fresh, so
    /// that no other consumer reclaims them meanwhile; their delivery counts do not change.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn keep(&mut self, ids: &[String]) -> Result<(), BusError>;
}

/// Where a reply's delivery stands, as [`ReplyLedger::claim`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody is delivering it and it was not delivered: the caller holds the lease under
    /// this token until it completes or releases it, or the lease expires.
    Claimed(String),
    /// Already delivered (or finally refused); this is the stored result.
    Done(String),
    /// Another process holds a live lease on it right now.
    InFlight,
}

/// One finished delivery, for [`ReplyLedger::complete_many`].
#[derive(Debug, Clone)]
pub struct Completion {
    pub reply_id: String,
    /// The token [`ReplyLedger::claim_many`] returned.
    pub token: String,
    /// The result to return to later calls with the same id.
    pub result: String,
    /// The outbound record to append (a `DeliveryRecord`, protobuf-encoded).
    pub record: Vec<u8>,
    pub traceparent: String,
}

/// Idempotency records for replies: "being delivered" (a lease that expires, so a process that
/// dies mid-delivery does not block the retry forever) versus "done" (with the result).
/// Every call takes a batch and costs one round trip.
#[async_trait::async_trait]
pub trait ReplyLedger: Send + Sync {
    /// Claims the delivery of each reply for `lease`; results in the same order.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn claim_many(
        &self,
        reply_ids: &[String],
        lease: Duration,
    ) -> Result<Vec<Claim>, BusError>;

    /// Records each result as the final outcome of its reply for `ttl`, and appends its record
    /// to the outbound stream, atomically per reply.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn complete_many(
        &self,
        completions: &[Completion],
        ttl: Duration,
    ) -> Result<(), BusError>;

    /// Gives leases back after transient failures, so that a retry may deliver. Each is
    /// released only if its token still holds it.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn release_many(&self, leases: &[(String, String)]) -> Result<(), BusError>;

    /// Extends each lease to `lease` from now, if its token still holds it: a delivery that
    /// outlasts one lease (a slow platform, a result waiting for the bus) keeps it.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn renew_many(
        &self,
        leases: &[(String, String)],
        lease: Duration,
    ) -> Result<(), BusError>;
}
