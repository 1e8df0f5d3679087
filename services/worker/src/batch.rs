//! One batch of entries: run the skills, send the replies, settle each entry (ack, dead
//! letter, or retry). An entry that failed for a transient reason (egress or the platform
//! unavailable, a reply another process is delivering) is retried in this process with a
//! growing pause, kept fresh in the group so that no other worker reclaims it meanwhile, and
//! without counting a delivery: an outage of the platform costs seconds of delay once it ends.
//! An entry still not answered after `retry_for` (`max_deliveries` x `reclaim_idle`, 150 s by
//! default) goes to the dead letters with its last reason, for `clawdbot dlq replay`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawdbot_bus::{Bus, Entry, Stream};
use clawdbot_core::egress::ReplySender;
use clawdbot_core::proto::{
    DeliveryStatus, Envelope, Reply, SendResult, TraceContext, send_result,
};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::{self, WORKER_ACKED_TOTAL};
use prost::Message;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use crate::dispatch::{DispatchError, Dispatcher};
use crate::order;

const COMPONENT: &str = "worker";
/// Replies per `SendBatch` call.
const EGRESS_BATCH: usize = 500;
/// The first pause before an in-process retry; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);
const EARLIER_NOT_DONE: &str = "an earlier message of its conversation is not answered yet";

/// What to do with an entry once it has been handled.
#[derive(Debug)]
enum Outcome {
    /// Done (replies confirmed, or nothing to do).
    Ack,
    /// Not done for a transient reason: try again.
    Retry(String),
    /// Never going to work: dead-letter it with this reason.
    DeadLetter(String),
}

/// The broadcast channel on which a group's workers say they finished turns.
pub(crate) fn turns_channel(group: &str) -> String {
    format!("turns:{group}")
}

/// The entries being retried in this process; the consumer loop keeps them fresh.
#[derive(Clone, Default)]
pub(crate) struct Held(Arc<Mutex<HashSet<String>>>);

impl Held {
    fn add(&self, entries: &[Entry]) {
        if let Ok(mut held) = self.0.lock() {
            held.extend(entries.iter().map(|e| e.id.clone()));
        }
    }

    fn remove(&self, ids: &[String]) {
        if let Ok(mut held) = self.0.lock() {
            for id in ids {
                held.remove(id);
            }
        }
    }

    /// The ids held right now.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|held| held.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Everything a batch task needs, cheap to clone.
#[derive(Clone)]
pub(crate) struct Handler {
    pub bus: Arc<dyn Bus>,
    pub dispatcher: Dispatcher,
    pub egress: Arc<dyn ReplySender>,
    pub group: String,
    pub held: Held,
    /// How long an entry is retried in process before it is left to the group's reclaim.
    pub retry_for: Duration,
    /// How long a message waits for the one before it in its conversation (0: no order).
    pub order_wait: Duration,
    /// Told whenever this process finishes conversation turns, to wake the messages waiting.
    pub turn_finished: Arc<tokio::sync::Notify>,
    pub shutdown: Shutdown,
}

impl Handler {
    /// Handles `entries` until each is settled (or left to reclaim); `permit` holds one slot
    /// per entry and shrinks as entries settle.
    pub(crate) async fn process_batch(
        &self,
        entries: Vec<Entry>,
        mut permit: OwnedSemaphorePermit,
    ) {
        let all_ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let started = tokio::time::Instant::now();
        let mut pause = FIRST_RETRY_PAUSE;
        let mut entries = entries;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (retry, reason) = self.process_once(entries).await;
            // Give back the slots of the entries settled.
            let settled = permit.num_permits().saturating_sub(retry.len().max(1));
            drop(permit.split(settled));
            if retry.is_empty() {
                break;
            }
            if self.shutdown.is_triggered() {
                tracing::info!(
                    count = retry.len(),
                    reason,
                    "stopping: messages left for another worker to reclaim"
                );
                break;
            }
            if started.elapsed() >= self.retry_for {
                let reason = format!(
                    "not answered after {attempts} attempts in {} s (worker.max_deliveries x worker.reclaim_idle_secs): {reason}",
                    started.elapsed().as_secs()
                );
                for entry in &retry {
                    self.dead_letter(entry, &reason).await;
                }
                break;
            }
            self.held.add(&retry);
            tracing::info!(
                count = retry.len(),
                pause_ms = pause.as_millis() as u64,
                reason,
                "retrying messages"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.cancelled() => {}
            }
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
            entries = retry;
        }
        self.held.remove(&all_ids);
    }

    /// One pass: runs the skills of every entry, sends their replies conversation by
    /// conversation as each one's turn comes (see [`crate::order`]), in as few egress calls
    /// as that allows; acks what is done in one XACK and dead-letters what never will be.
    /// Returns the entries to try again, with the first reason.
    async fn process_once(&self, entries: Vec<Entry>) -> (Vec<Entry>, String) {
        let mut prepared: Vec<Option<Result<Vec<Reply>, Outcome>>> =
            futures::future::join_all(entries.iter().map(|entry| self.prepare(entry)))
                .await
                .into_iter()
                .map(Some)
                .collect();
        let mut outcomes: Vec<Outcome> = (0..entries.len()).map(|_| Outcome::Ack).collect();
        let deadline = tokio::time::Instant::now() + self.order_wait;
        let mut waiting = order::chains(&entries);
        let mut poll = Duration::from_millis(5);
        loop {
            // Registered before looking, so that a turn finished in between is not missed.
            let mut finished_here = std::pin::pin!(self.turn_finished.notified());
            finished_here.as_mut().enable();
            let (ready, later) = if self.order_wait.is_zero() {
                (std::mem::take(&mut waiting), Vec::new())
            } else {
                order::whose_turn(&*self.bus, &self.group, waiting, deadline).await
            };
            if !ready.is_empty() {
                self.answer_chains(&entries, &ready, &mut prepared, &mut outcomes)
                    .await;
            }
            if later.is_empty() {
                break;
            }
            waiting = later;
            // Woken at once by a turn finished in this process; other workers' are polled.
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = finished_here => {}
            }
            poll = order::next_poll(poll);
        }
        let mut acks = Vec::with_capacity(entries.len());
        let mut retry = Vec::new();
        let mut retry_reason = String::new();
        for (entry, outcome) in entries.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Ack => acks.push(entry.id.clone()),
                Outcome::Retry(reason) => {
                    tracing::debug!(entry_id = %entry.id, reason, "message to retry");
                    if retry_reason.is_empty() {
                        retry_reason = reason;
                    }
                    retry.push(entry);
                }
                Outcome::DeadLetter(reason) => self.dead_letter(&entry, &reason).await,
            }
        }
        if let Err(error) = self.bus.ack(Stream::Inbound, &self.group, &acks).await {
            // The entries stay pending and are reclaimed; egress idempotency keeps their replies
            // from being sent twice.
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, count = acks.len(), "ack failed; entries will be reclaimed");
            return (retry, retry_reason);
        }
        metrics::counter!(WORKER_ACKED_TOTAL, "group" => self.group.clone())
            .increment(acks.len() as u64);
        (retry, retry_reason)
    }

    /// Sends the replies of `chains` (whose turn has come) in one go and settles their
    /// outcomes; then records the turns they finished. In a chain, nothing after a message
    /// that is not done goes out (it is retried after it).
    async fn answer_chains(
        &self,
        entries: &[Entry],
        chains: &[order::Chain],
        prepared: &mut [Option<Result<Vec<Reply>, Outcome>>],
        outcomes: &mut [Outcome],
    ) {
        let mut owners = Vec::new();
        let mut replies = Vec::new();
        for chain in chains {
            let mut blocked = false;
            for &index in &chain.members {
                match prepared[index].take() {
                    _ if blocked => outcomes[index] = Outcome::Retry(EARLIER_NOT_DONE.into()),
                    Some(Ok(entry_replies)) => {
                        owners.extend(std::iter::repeat_n(index, entry_replies.len()));
                        replies.extend(entry_replies);
                    }
                    Some(Err(outcome)) => {
                        blocked = matches!(outcome, Outcome::Retry(_));
                        outcomes[index] = outcome;
                    }
                    None => {}
                }
            }
        }
        for (owner, outcome) in owners.into_iter().zip(self.send_all(replies).await) {
            outcomes[owner] = worse(
                std::mem::replace(&mut outcomes[owner], Outcome::Ack),
                outcome,
            );
        }
        let mut finished = Vec::new();
        for chain in chains {
            let mut blocked = false;
            for &index in &chain.members {
                if blocked {
                    outcomes[index] = Outcome::Retry(EARLIER_NOT_DONE.into());
                    continue;
                }
                if matches!(outcomes[index], Outcome::Retry(_)) {
                    blocked = true;
                } else if let Some(turn) = &entries[index].turn {
                    finished.push(turn.clone());
                }
            }
        }
        if self.order_wait.is_zero() || finished.is_empty() {
            return;
        }
        if let Err(error) = self.bus.finish_turns(&self.group, &finished).await {
            // Unrecorded, the next messages of these conversations would wait for ever (until
            // order_wait): retry these, so that the turns are recorded when the bus is back
            // (their replies are in the ledger by then, so nothing goes out twice).
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, "cannot record finished conversation turns; retrying");
            for chain in chains {
                for &index in &chain.members {
                    if !matches!(outcomes[index], Outcome::Retry(_)) {
                        outcomes[index] =
                            Outcome::Retry(format!("conversation turn not recorded: {error}"));
                    }
                }
            }
            return;
        }
        self.turn_finished.notify_waiters();
        // Other workers' waiting messages: best effort, they poll too.
        let _told = self.bus.broadcast(&turns_channel(&self.group), &[]).await;
    }

    /// Moves `entry` to the dead letters (counted and logged by the bus); if the bus cannot take
    /// it, it stays pending and is reclaimed.
    async fn dead_letter(&self, entry: &Entry, reason: &str) {
        if let Err(error) = self
            .bus
            .dead_letter(Stream::Inbound, &self.group, entry, reason)
            .await
        {
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, entry_id = %entry.id, "dead-lettering failed; will retry");
        }
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
