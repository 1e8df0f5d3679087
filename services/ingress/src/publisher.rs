//! Micro-batching of publishes: concurrent requests share Redis round trips.
//!
//! Each request hands its envelopes to a publisher loop and waits for the outcome. A loop takes
//! everything queued at that moment (up to `MAX_BATCH`) and publishes it in one pipelined call,
//! so under load one round trip carries many requests, and at low load a request goes out
//! alone at once — batching adds no waiting.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Bus, BusError, Publish, Published};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Items per pipelined call.
const MAX_BATCH: usize = 256;
/// Loops publishing at once: while one waits for Redis, the next gathers a batch.
const LOOPS: usize = 2;
/// Requests waiting for a loop before new ones are refused with 503 (bounded memory).
const QUEUE: usize = 16_384;

type Job = (Publish, oneshot::Sender<Result<Published, String>>);

/// The stream item for `envelope`, stamped with `trace`: deduplicated by
/// `platform:bot_id:dedupe_id` (or `message_id`) when the platform gave the message an id, and
/// numbered in its
/// conversation.
pub(crate) fn item(
    mut envelope: clawdbot_core::Envelope,
    trace: &clawdbot_core::proto::TraceContext,
) -> Publish {
    use prost::Message;
    let unique = if envelope.dedupe_id.is_empty() {
        &envelope.message_id
    } else {
        &envelope.dedupe_id
    };
    let dedupe_key =
        (!unique.is_empty()).then(|| format!("{}:{}:{unique}", envelope.platform, envelope.bot_id));
    // Replies keep the order of the messages of one conversation (the worker waits its turn).
    let order_key = envelope
        .conversation
        .as_ref()
        .filter(|conversation| !conversation.id.is_empty())
        .map(|conversation| {
            format!(
                "{}:{}:{}:{}",
                envelope.platform, envelope.bot_id, conversation.kind, conversation.id
            )
        });
    envelope.trace = Some(trace.clone());
    Publish {
        payload: envelope.encode_to_vec(),
        traceparent: trace.traceparent.clone(),
        dedupe_key,
        order_key,
    }
}

/// Handle to the publisher loops.
#[derive(Clone)]
pub struct Publisher {
    jobs_tx: mpsc::Sender<Job>,
}

impl Publisher {
    /// Starts the loops. They stop when every handle is dropped.
    pub fn start(bus: Arc<dyn Bus>, dedupe_window: Duration, max_len: u64) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(QUEUE);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..LOOPS {
            tokio::spawn(publish_loop(
                bus.clone(),
                jobs_rx.clone(),
                dedupe_window,
                max_len,
            ));
        }
        Self { jobs_tx }
    }

    /// Publishes one item and returns what happened to it.
    ///
    /// # Errors
    /// The bus failed (the reason), or the queue is full.
    pub async fn publish(&self, item: Publish) -> Result<Published, String> {
        let (done_tx, done_rx) = oneshot::channel();
        self.jobs_tx
            .try_send((item, done_tx))
            .map_err(|_| "publish queue is full".to_string())?;
        done_rx.await.map_err(|_| "publisher stopped".to_string())?
    }
}

async fn publish_loop(
    bus: Arc<dyn Bus>,
    jobs_rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    dedupe_window: Duration,
    max_len: u64,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut jobs = jobs_rx.lock().await;
            if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        let (items, waiters): (Vec<Publish>, Vec<_>) = batch.drain(..).unzip();
        match bus.publish(&items, dedupe_window, max_len).await {
            Ok(outcomes) => {
                for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                    let _gone = waiter.send(Ok(outcome));
                }
            }
            Err(error) => {
                let reason = describe(&error);
                for waiter in waiters {
                    let _gone = waiter.send(Err(reason.clone()));
                }
            }
        }
    }
}

fn describe(error: &BusError) -> String {
    clawdbot_core::telemetry::count_error("ingress", error.kind());
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}
