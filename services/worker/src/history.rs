//! The history writer: the `history` group on the inbound and outbound streams, written to the
//! store in batches (one INSERT per batch, not a round trip per message).
//!
//! An entry is acked only after its row is written; a batch the store refused stays pending and
//! is reclaimed, and the store skips rows it already has, so a replay writes nothing twice.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Bus, BusError, Consumer, Entry, HISTORY_GROUP, Stream};
use clawdbot_core::proto::{ConversationKind, DeliveryRecord, DeliveryStatus, Envelope};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::{self, HISTORY_ROWS_TOTAL};
use clawdbot_store::{Direction, HistoryRecord, HistoryStore};
use prost::Message;
use time::OffsetDateTime;

const COMPONENT: &str = "history";

/// What the history writer needs from the config.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    pub consumer_name: String,
    pub batch_size: usize,
    pub block: Duration,
    /// How long to gather a partial batch before writing it.
    pub linger: Duration,
    /// Entries left pending this long (a writer died, or the store failed) are retried.
    pub reclaim_idle: Duration,
}

/// Runs the writers of both streams until shutdown.
///
/// # Errors
/// The groups cannot be set up (Redis unreachable at start).
pub async fn run(
    settings: HistorySettings,
    bus: Arc<dyn Bus>,
    store: Arc<dyn HistoryStore>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let inbound = writer(
        Stream::Inbound,
        settings.clone(),
        bus.clone(),
        store.clone(),
        shutdown.clone(),
    );
    let outbound = writer(Stream::Outbound, settings, bus, store, shutdown);
    let (inbound, outbound) = tokio::join!(inbound, outbound);
    inbound.and(outbound)
}

async fn writer(
    stream: Stream,
    settings: HistorySettings,
    bus: Arc<dyn Bus>,
    store: Arc<dyn HistoryStore>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    bus.ensure_group(stream, HISTORY_GROUP).await?;
    let mut consumer = bus
        .consumer(stream, HISTORY_GROUP, &settings.consumer_name)
        .await?;
    let mut next_reclaim = tokio::time::Instant::now();
    // With a bus whose entries die with the process, an entry read is gone unless written:
    // never abandon a batch half-gathered, and drain the stream before exiting.
    let durable = bus.durable();
    loop {
        let stopping = shutdown.is_triggered();
        if stopping && durable {
            break;
        }
        let entries = if stopping {
            consumer.read(settings.batch_size, DRAIN_BLOCK).await
        } else if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + settings.reclaim_idle / 2;
            consumer
                .reclaim(settings.reclaim_idle, settings.batch_size)
                .await
        } else if durable {
            tokio::select! {
                () = shutdown.cancelled() => continue,
                read = gather(&mut *consumer, &settings) => read,
            }
        } else {
            gather(&mut *consumer, &settings).await
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(error) => {
                pause_after(&shutdown, error.kind(), &error.to_string()).await;
                continue;
            }
        };
        if stopping && entries.is_empty() {
            break;
        }
        if let Err((kind, reason)) = write_batch(stream, &entries, &*bus, &*store).await {
            pause_after(&shutdown, kind, &reason).await;
        }
    }
    Ok(())
}

/// How long a draining writer waits for more entries before it calls the stream empty.
const DRAIN_BLOCK: Duration = Duration::from_millis(100);

/// Reads one batch: waits up to `block` for the first entries, then keeps reading for up to
/// `linger` until the batch is full, so that a steady trickle becomes few large INSERTs.
async fn gather(
    consumer: &mut dyn Consumer,
    settings: &HistorySettings,
) -> Result<Vec<Entry>, BusError> {
    let mut batch = consumer.read(settings.batch_size, settings.block).await?;
    if batch.is_empty() || settings.linger.is_zero() {
        return Ok(batch);
    }
    let until = tokio::time::Instant::now() + settings.linger;
    while batch.len() < settings.batch_size {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let more = consumer
            .read(
                settings.batch_size - batch.len(),
                left.max(Duration::from_millis(1)),
            )
            .await?;
        batch.extend(more);
    }
    Ok(batch)
}

async fn pause_after(shutdown: &Shutdown, kind: &'static str, reason: &str) {
    telemetry::count_error(COMPONENT, kind);
    tracing::warn!(error = reason, "history writer failed; retrying");
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}

async fn write_batch(
    stream: Stream,
    entries: &[Entry],
    bus: &dyn Bus,
    store: &dyn HistoryStore,
) -> Result<(), (&'static str, String)> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut records = Vec::with_capacity(entries.len());
    let mut written = Vec::with_capacity(entries.len());
    for entry in entries {
        match to_record(stream, entry) {
            Ok(record) => {
                records.push(record);
                written.push(entry.id.clone());
            }
            Err(reason) => {
                bus.dead_letter(stream, HISTORY_GROUP, entry, &reason)
                    .await
                    .map_err(|e| (e.kind(), e.to_string()))?;
            }
        }
    }
    let new_rows = store
        .write_history(&records)
        .await
        .map_err(|e| (e.kind(), e.to_string()))?;
    bus.ack(stream, HISTORY_GROUP, &written)
        .await
        .map_err(|e| (e.kind(), e.to_string()))?;
    let direction = if stream == Stream::Inbound {
        "in"
    } else {
        "out"
    };
    metrics::counter!(HISTORY_ROWS_TOTAL, "direction" => direction).increment(new_rows);
    Ok(())
}

fn timestamp(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn kind_name(kind: i32) -> String {
    match ConversationKind::try_from(kind).unwrap_or(ConversationKind::Unspecified) {
        ConversationKind::Private => "private",
        ConversationKind::Group => "group",
        ConversationKind::Channel => "channel",
        ConversationKind::Unspecified => "",
    }
    .to_string()
}

/// Turns a stream entry into a history row.
fn to_record(stream: Stream, entry: &Entry) -> Result<HistoryRecord, String> {
    match stream {
        Stream::Inbound => {
            let envelope = Envelope::decode(entry.payload.as_slice())
                .map_err(|e| format!("undecodable envelope: {e}"))?;
            let conversation = envelope.conversation.clone().unwrap_or_default();
            Ok(HistoryRecord {
                id: envelope.id.clone(),
                direction: Direction::In,
                platform: envelope.platform.clone(),
                bot_id: envelope.bot_id.clone(),
                conversation_kind: kind_name(conversation.kind),
                conversation_id: conversation.id,
                sender_id: envelope
                    .sender
                    .as_ref()
                    .map(|s| s.user_id.clone())
                    .unwrap_or_default(),
                platform_message_id: envelope.message_id.clone(),
                event_type: envelope.event_type.clone(),
                skill: String::new(),
                in_reply_to: String::new(),
                status: String::new(),
                text: envelope.text.clone(),
                payload: entry.payload.clone(),
                created_at: timestamp(envelope.received_at_ms),
            })
        }
        Stream::Outbound => {
            let record = DeliveryRecord::decode(entry.payload.as_slice())
                .map_err(|e| format!("undecodable delivery record: {e}"))?;
            let reply = record.reply.unwrap_or_default();
            let response = record.response.unwrap_or_default();
            let conversation = reply.conversation.clone().unwrap_or_default();
            let status = if response.status == DeliveryStatus::Delivered as i32 {
                "delivered"
            } else {
                "failed"
            };
            Ok(HistoryRecord {
                id: reply.id.clone(),
                direction: Direction::Out,
                platform: reply.platform.clone(),
                bot_id: reply.bot_id.clone(),
                conversation_kind: kind_name(conversation.kind),
                conversation_id: conversation.id,
                sender_id: String::new(),
                platform_message_id: response.platform_message_id,
                event_type: String::new(),
                skill: reply.skill.clone(),
                in_reply_to: reply.in_reply_to.clone(),
                status: status.to_string(),
                text: clawdbot_core::message::render_text(&reply.segments),
                payload: entry.payload.clone(),
                created_at: timestamp(record.finished_at_ms),
            })
        }
        Stream::Dead => Err("the dead-letter stream has no history".to_string()),
    }
}

/// How often retention runs (besides once at start).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Deletes history older than `keep` now and then every hour, until shutdown. Several workers
/// doing it at once is harmless: a delete of rows already gone deletes nothing.
/// Tells the store the retention, for a database that expires rows itself (MongoDB's TTL
/// index; dropped again when the retention is removed). The hourly deletes of [`keep_for`]
/// run either way: they find nothing where the server expires rows.
pub async fn expire_on_the_server(store: Arc<dyn HistoryStore>, keep: Option<Duration>) {
    match store.expire_history_after(keep).await {
        Ok(true) => tracing::info!(
            component = COMPONENT,
            retention_secs = keep.map_or(0, |k| k.as_secs()),
            "history past its retention is expired by the database itself (TTL index)"
        ),
        Ok(false) => {}
        Err(error) => tracing::warn!(
            component = COMPONENT,
            error = %error,
            "the database's own expiry of history could not be set; the hourly deletes still apply"
        ),
    }
}

pub async fn keep_for(store: Arc<dyn HistoryStore>, keep: Duration, shutdown: Shutdown) {
    let mut every = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let before = OffsetDateTime::now_utc() - keep;
        match store.delete_history_before(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                component = COMPONENT,
                deleted,
                before = %before,
                "history past retention deleted"
            ),
            Err(error) => tracing::warn!(
                component = COMPONENT,
                error = %error,
                "history retention could not delete; retrying within the hour"
            ),
        }
    }
}
