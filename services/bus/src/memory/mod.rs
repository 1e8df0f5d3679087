//! The bus in process memory (the embedded backend): the same contract as Redis Streams —
//! consumer groups, pending entries, acks, reclaim after an idle time with delivery counts,
//! dead letters, dedupe and the reply ledger — for `clawdbot up` on a machine with nothing else
//! installed. Everything lives behind one mutex; no lock is held across an await.
//!
//! Entries acked by every group are dropped at once (not only by the janitor's periodic trim),
//! so memory follows the backlog, and a full inbound stream refuses new items like Redis does.

mod consumer;
mod dead_letters;
mod ledger;
mod shared;
mod state;
mod turns;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::{Bus, BusError, Consumer, Entry, Publish, Published, ReplyLedger, Stream, StreamStats};
use consumer::MemoryConsumer;
pub use state::KEEP_WITHOUT_READERS;
use state::State;

/// The in-process bus. Cheap to clone; clones share the streams.
/// Messages a slow subscriber may have waiting before it misses some.
const SUBSCRIBER_BUFFER: usize = 16_384;

#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    /// Wakes readers blocked on a stream; one per stream.
    inbound: Notify,
    outbound: Notify,
    dead: Notify,
    /// Tokens, leases and send schedules of the platform clients.
    shared: Mutex<shared::SharedMaps>,
    /// Where the schedules' clock starts.
    origin: Instant,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            inbound: Notify::new(),
            outbound: Notify::new(),
            dead: Notify::new(),
            shared: Mutex::default(),
            origin: Instant::now(),
        }
    }
}

impl Inner {
    /// Locks the state. A poisoned lock means a panic mid-update elsewhere; the state is plain
    /// data that every update leaves consistent, so it is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn notify(&self, stream: Stream) -> &Notify {
        match stream {
            Stream::Inbound => &self.inbound,
            Stream::Outbound => &self.outbound,
            Stream::Dead => &self.dead,
        }
    }
}

impl MemoryBus {
    /// Returns an empty bus.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl crate::Streams for MemoryBus {
    async fn publish(
        &self,
        items: &[Publish],
        dedupe_window: Duration,
        max_len: u64,
    ) -> Result<Vec<Published>, BusError> {
        let outcomes = {
            let mut state = self.inner.lock();
            let now = Instant::now();
            items
                .iter()
                .map(|item| state.publish(item, now, dedupe_window, max_len))
                .collect::<Vec<_>>()
        };
        if outcomes.iter().any(|o| matches!(o, Published::Appended(_))) {
            self.inner.inbound.notify_waiters();
        }
        Ok(outcomes)
    }

    async fn append(
        &self,
        stream: Stream,
        payload: &[u8],
        traceparent: &str,
    ) -> Result<String, BusError> {
        let id = self.inner.lock().append(
            stream,
            payload.to_vec(),
            traceparent.to_string(),
            Vec::new(),
        );
        self.inner.notify(stream).notify_waiters();
        Ok(id)
    }

    async fn ensure_group(&self, stream: Stream, group: &str) -> Result<(), BusError> {
        self.inner.lock().stream_mut(stream).ensure_group(group);
        Ok(())
    }

    async fn consumer(
        &self,
        stream: Stream,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.lock().stream_mut(stream).ensure_group(group);
        Ok(Box::new(MemoryConsumer::new(
            self.inner.clone(),
            stream,
            group,
            consumer,
        )))
    }

    async fn trim(&self, stream: Stream) -> Result<u64, BusError> {
        Ok(self.inner.lock().stream_mut(stream).trim())
    }

    async fn stats(&self, stream: Stream) -> Result<StreamStats, BusError> {
        Ok(self.inner.lock().stream_mut(stream).stats())
    }

    async fn ack(&self, stream: Stream, group: &str, ids: &[String]) -> Result<(), BusError> {
        self.inner.lock().stream_mut(stream).ack(group, ids);
        Ok(())
    }

    async fn dead_letter(
        &self,
        stream: Stream,
        group: &str,
        entry: &Entry,
        reason: &str,
    ) -> Result<(), BusError> {
        {
            let mut state = self.inner.lock();
            let fields = vec![
                ("reason".to_string(), reason.to_string()),
                ("source".to_string(), stream.as_str().to_string()),
                ("source_id".to_string(), entry.id.clone()),
                ("group".to_string(), group.to_string()),
                ("deliveries".to_string(), entry.deliveries.to_string()),
            ];
            state.append(
                Stream::Dead,
                entry.payload.clone(),
                entry.traceparent.clone(),
                fields,
            );
            state
                .stream_mut(stream)
                .ack(group, std::slice::from_ref(&entry.id));
        }
        crate::record_dead_letter(stream, group, entry, reason);
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::Broadcast for MemoryBus {
    async fn broadcast(&self, channel: &str, payload: &[u8]) -> Result<u64, BusError> {
        let sender = self.inner.lock().broadcast_sender(channel);
        // No subscriber is not an error (live views): it reached none.
        Ok(sender
            .send(std::sync::Arc::new(payload.to_vec()))
            .map_or(0, |reached| reached as u64))
    }

    async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>, BusError> {
        let mut receiver = self.inner.lock().broadcast_sender(channel).subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(SUBSCRIBER_BUFFER);
        tokio::spawn(async move {
            loop {
                // Ends as soon as the subscriber is dropped, so that it stops counting as a
                // receiver of `broadcast` at once.
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    () = tx.closed() => return,
                };
                let payload = match received {
                    Ok(payload) => payload,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(payload.as_ref().clone()).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

#[async_trait::async_trait]
impl crate::Presence for MemoryBus {
    async fn heartbeat(&self, instance: &str, value: &str, ttl: Duration) -> Result<(), BusError> {
        self.inner.lock().heartbeats.insert(
            instance.to_string(),
            (value.to_string(), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn heartbeats(&self) -> Result<Vec<(String, String)>, BusError> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        state.heartbeats.retain(|_, (_, expiry)| *expiry > now);
        Ok(state
            .heartbeats
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect())
    }

    async fn rate_limit(&self, key: &str, limit: u32, window: Duration) -> Result<bool, BusError> {
        Ok(self
            .inner
            .lock()
            .rate_limit(key, limit, window, Instant::now()))
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    fn durable(&self) -> bool {
        false
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn ledger(&self) -> &dyn ReplyLedger {
        self
    }
}
