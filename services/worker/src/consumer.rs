//! The consumer loop of one skill pool.
//!
//! Reading and processing overlap: the loop keeps reading while earlier batches are handled,
//! bounded by `concurrency` messages in flight. Each batch acks what succeeded in one XACK.
//! On shutdown the loop stops reading, lets the batches in flight finish and ack, then returns.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Bus, Consumer, Entry, Stream};
use clawdbot_core::egress::ReplySender;
use clawdbot_core::proto::{
    DeliveryStatus, Envelope, Reply, SendResult, TraceContext, send_result,
};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::{self, WORKER_ACKED_TOTAL};
use prost::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::dispatch::{DispatchError, Dispatcher};

const COMPONENT: &str = "worker";
/// How long one egress call may take: the platform's timeout times its attempts, with room.
pub const EGRESS_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the worker role needs from the config.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The consumer group (the skill pool).
    pub group: String,
    /// This process's name in the group.
    pub consumer_name: String,
    pub batch_size: usize,
    pub block: Duration,
    pub reclaim_idle: Duration,
    pub max_deliveries: u64,
    pub concurrency: usize,
}

/// What to do with an entry once it has been handled.
#[derive(Debug)]
enum Outcome {
    /// Done (replies confirmed, or nothing to do).
    Ack,
    /// Leave it pending: it is reclaimed and tried again after the idle time.
    Retry(String),
    /// Never going to work: dead-letter it with this reason.
    DeadLetter(String),
}

/// Everything a batch task needs, cheap to clone.
#[derive(Clone)]
struct Handler {
    bus: Arc<dyn Bus>,
    dispatcher: Dispatcher,
    egress: Arc<dyn ReplySender>,
    group: String,
}

/// Runs the consumer loop until shutdown.
///
/// # Errors
/// The group or the consumer cannot be set up (Redis unreachable at start).
pub async fn run(
    settings: WorkerSettings,
    bus: Arc<dyn Bus>,
    dispatcher: Dispatcher,
    egress: Arc<dyn ReplySender>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    bus.ensure_group(Stream::Inbound, &settings.group).await?;
    let mut consumer = bus
        .consumer(Stream::Inbound, &settings.group, &settings.consumer_name)
        .await?;
    let handler = Handler {
        bus,
        dispatcher,
        egress,
        group: settings.group.clone(),
    };
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut batches = JoinSet::new();
    // Reclaim at start too: a replacement for a crashed pod picks its work up right away.
    let reclaim_every = (settings.reclaim_idle / 2).max(Duration::from_millis(200));
    let mut next_reclaim = tokio::time::Instant::now();
    tracing::info!(group = %settings.group, consumer = %settings.consumer_name, "worker consuming");
    while !shutdown.is_triggered() {
        while batches.try_join_next().is_some() {}
        let free = permits.available_permits().min(settings.batch_size);
        if free == 0 {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = batches.join_next() => continue,
            }
        }
        let read = tokio::select! {
            () = shutdown.cancelled() => break,
            read = consumer.read(free, settings.block) => read,
        };
        match read {
            Ok(entries) => spawn_batch(&mut batches, &permits, &handler, entries).await,
            Err(error) => {
                telemetry::count_error(COMPONENT, error.kind());
                tracing::warn!(error = %error, "reading the inbound stream failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
        if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + reclaim_every;
            reclaim(&mut *consumer, &settings, &handler, &mut batches, &permits).await;
        }
    }
    tracing::info!(in_flight = batches.len(), "worker draining");
    if !handler.bus.durable() {
        drain_queue(&mut *consumer, &settings, &handler, &mut batches, &permits).await;
    }
    while batches.join_next().await.is_some() {}
    tracing::info!("worker stopped");
    Ok(())
}

/// How long a draining worker waits for more entries before it calls the queue empty.
const DRAIN_BLOCK: Duration = Duration::from_millis(100);

/// Handles what is still queued, for a bus whose entries die with the process: ingress has
/// stopped, so the queue runs dry. The caller bounds the whole by the shutdown grace.
async fn drain_queue(
    consumer: &mut dyn Consumer,
    settings: &WorkerSettings,
    handler: &Handler,
    batches: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
) {
    loop {
        while batches.try_join_next().is_some() {}
        let free = permits.available_permits().min(settings.batch_size);
        if free == 0 {
            batches.join_next().await;
            continue;
        }
        match consumer.read(free, DRAIN_BLOCK).await {
            Ok(entries) if entries.is_empty() => return,
            Ok(entries) => spawn_batch(batches, permits, handler, entries).await,
            Err(_) => return,
        }
    }
}

/// Claims entries idle for too long; those delivered too often go to the dead letters.
async fn reclaim(
    consumer: &mut dyn Consumer,
    settings: &WorkerSettings,
    handler: &Handler,
    batches: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
) {
    let claimed = match consumer
        .reclaim(settings.reclaim_idle, settings.batch_size)
        .await
    {
        Ok(claimed) => claimed,
        Err(error) => {
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, "reclaiming idle entries failed");
            return;
        }
    };
    if claimed.is_empty() {
        return;
    }
    tracing::info!(count = claimed.len(), "reclaimed idle entries");
    let (exhausted, retry): (Vec<Entry>, Vec<Entry>) = claimed
        .into_iter()
        .partition(|entry| entry.deliveries > settings.max_deliveries);
    for entry in exhausted {
        let reason = format!("not processed after {} deliveries", entry.deliveries - 1);
        if let Err(error) = handler
            .bus
            .dead_letter(Stream::Inbound, &handler.group, &entry, &reason)
            .await
        {
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, entry_id = %entry.id, "dead-lettering failed; will retry");
        }
    }
    spawn_batch(batches, permits, handler, retry).await;
}

async fn spawn_batch(
    batches: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
    handler: &Handler,
    entries: Vec<Entry>,
) {
    if entries.is_empty() {
        return;
    }
    let Ok(permit) = permits
        .clone()
        .acquire_many_owned(entries.len() as u32)
        .await
    else {
        return;
    };
    let handler = handler.clone();
    batches.spawn(async move {
        handler.process_batch(entries).await;
        drop(permit);
    });
}

impl Handler {
    /// Runs the skills of every entry, sends all their replies in as few egress calls as the
    /// batch allows, then acks what is done in one XACK.
    async fn process_batch(&self, entries: Vec<Entry>) {
        let prepared =
            futures::future::join_all(entries.iter().map(|entry| self.prepare(entry))).await;
        let mut owners = Vec::new();
        let mut replies = Vec::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        for (index, prepared) in prepared.into_iter().enumerate() {
            match prepared {
                Ok(entry_replies) => {
                    owners.extend(std::iter::repeat_n(index, entry_replies.len()));
                    replies.extend(entry_replies);
                    outcomes.push(Outcome::Ack);
                }
                Err(outcome) => outcomes.push(outcome),
            }
        }
        for (owner, outcome) in owners.into_iter().zip(self.send_all(replies).await) {
            outcomes[owner] = worse(
                std::mem::replace(&mut outcomes[owner], Outcome::Ack),
                outcome,
            );
        }
        let mut acks = Vec::with_capacity(entries.len());
        for (entry, outcome) in entries.iter().zip(outcomes) {
            match outcome {
                Outcome::Ack => acks.push(entry.id.clone()),
                Outcome::Retry(reason) => {
                    tracing::warn!(entry_id = %entry.id, deliveries = entry.deliveries, reason, "message left for retry");
                }
                Outcome::DeadLetter(reason) => {
                    if let Err(error) = self
                        .bus
                        .dead_letter(Stream::Inbound, &self.group, entry, &reason)
                        .await
                    {
                        telemetry::count_error(COMPONENT, error.kind());
                        tracing::warn!(error = %error, entry_id = %entry.id, "dead-lettering failed; will retry");
                    }
                }
            }
        }
        if let Err(error) = self.bus.ack(Stream::Inbound, &self.group, &acks).await {
            // The entries stay pending and are reclaimed; egress idempotency keeps their replies
            // from being sent twice.
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, count = acks.len(), "ack failed; entries will be reclaimed");
            return;
        }
        metrics::counter!(WORKER_ACKED_TOTAL, "group" => self.group.clone())
            .increment(acks.len() as u64);
    }

    /// Decodes an entry and runs the skills it reaches; returns their replies, or the outcome
    /// when the entry is settled without sending anything.
    async fn prepare(&self, entry: &Entry) -> Result<Vec<Reply>, Outcome> {
        let envelope = Envelope::decode(entry.payload.as_slice())
            .map_err(|error| Outcome::DeadLetter(format!("undecodable envelope: {error}")))?;
        let span = tracing::info_span!(
            "skill_dispatch",
            platform = %envelope.platform,
            message_id = %envelope.message_id,
            stream_id = %entry.id,
            // How long the message waited in the stream, from ingress to this worker.
            stream_wait_ms = clawdbot_core::now_ms().saturating_sub(envelope.received_at_ms),
            deliveries = entry.deliveries,
        );
        let trace = TraceContext {
            traceparent: entry.traceparent.clone(),
            tracestate: String::new(),
        };
        telemetry::set_remote_parent(&span, Some(&trace));
        self.dispatcher
            .dispatch(&envelope)
            .instrument(span)
            .await
            .map_err(|error| match error {
                DispatchError::Retry(reason) => Outcome::Retry(reason),
                DispatchError::DeadLetter(reason) => Outcome::DeadLetter(reason),
            })
    }

    /// Sends replies through egress, one `SendBatch` call per chunk; outcomes in order.
    async fn send_all(&self, replies: Vec<Reply>) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(replies.len());
        let mut replies = replies.into_iter().peekable();
        while replies.peek().is_some() {
            let chunk: Vec<Reply> = replies.by_ref().take(EGRESS_BATCH).collect();
            outcomes.extend(self.send_chunk(chunk).await);
        }
        outcomes
    }

    async fn send_chunk(&self, replies: Vec<Reply>) -> Vec<Outcome> {
        let ids: Vec<String> = replies.iter().map(|r| r.id.clone()).collect();
        let results = match self.egress.send_batch(replies).await {
            Ok(results) => results,
            Err(status) => {
                telemetry::count_error(COMPONENT, "egress_unavailable");
                let reason = format!("egress: {}: {}", status.code(), status.message());
                return ids.iter().map(|_| Outcome::Retry(reason.clone())).collect();
            }
        };
        if results.len() != ids.len() {
            let reason = format!(
                "egress answered {} results for {} replies",
                results.len(),
                ids.len()
            );
            return ids.iter().map(|_| Outcome::Retry(reason.clone())).collect();
        }
        ids.iter()
            .zip(results)
            .map(|(reply_id, result)| reply_outcome(reply_id, result))
            .collect()
    }
}

/// Replies per `SendBatch` call.
const EGRESS_BATCH: usize = 500;

fn reply_outcome(reply_id: &str, result: SendResult) -> Outcome {
    match result.result {
        Some(send_result::Result::Response(response)) => {
            if response.status == DeliveryStatus::Failed as i32 {
                // The platform refused it for good: retrying cannot help, so the message is
                // done; the refusal is in egress's log and in history.
                tracing::warn!(reply_id, error = %response.error, "platform refused the reply");
            }
            Outcome::Ack
        }
        Some(send_result::Result::Error(error))
            if error.code == tonic::Code::InvalidArgument as i32 =>
        {
            Outcome::DeadLetter(format!(
                "egress refused reply `{reply_id}`: {}",
                error.message
            ))
        }
        Some(send_result::Result::Error(error)) => {
            telemetry::count_error(COMPONENT, "egress_unavailable");
            Outcome::Retry(format!("egress: {}", error.message))
        }
        None => Outcome::Retry("egress sent an empty result".to_string()),
    }
}

/// Combines two outcomes of one message: retrying wins (the replies already delivered are
/// idempotent), then dead-lettering, then acking.
fn worse(a: Outcome, b: Outcome) -> Outcome {
    match (a, b) {
        (retry @ Outcome::Retry(_), _) | (_, retry @ Outcome::Retry(_)) => retry,
        (dead @ Outcome::DeadLetter(_), _) | (_, dead @ Outcome::DeadLetter(_)) => dead,
        _ => Outcome::Ack,
    }
}
