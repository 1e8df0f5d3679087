//! Dead letters of the in-process bus (they live and die with the process, like its queue).

use std::time::{Duration, Instant};

use super::MemoryBus;
use crate::{BusError, DeadLetter, DeadLetters, Publish, Published, Replayed, Stream};

#[async_trait::async_trait]
impl DeadLetters for MemoryBus {
    async fn dead_letters(&self, after: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        Ok(self
            .inner
            .lock()
            .stream_mut(Stream::Dead)
            .dead_letters(after, limit))
    }

    async fn dead_letter_by_id(&self, id: &str) -> Result<Option<DeadLetter>, BusError> {
        Ok(self.inner.lock().stream_mut(Stream::Dead).dead_letter(id))
    }

    async fn replay(&self, id: &str, dedupe_window: Duration) -> Result<Replayed, BusError> {
        let outcome = {
            let mut state = self.inner.lock();
            let Some(dead) = state.stream_mut(Stream::Dead).take_dead_letter(id) else {
                return Ok(Replayed::Missing);
            };
            let item = Publish {
                payload: dead.payload,
                traceparent: dead.traceparent,
                dedupe_key: Some(format!("replay:{id}")),
                order_key: None,
            };
            state.publish(&item, Instant::now(), dedupe_window, 0)
        };
        Ok(match outcome {
            Published::Appended(new_id) => {
                self.inner.inbound.notify_waiters();
                Replayed::Appended(new_id)
            }
            Published::Duplicate | Published::Full => Replayed::AlreadyReplayed,
        })
    }

    async fn purge_dead_letters(&self, older_than_ms: u64) -> Result<u64, BusError> {
        Ok(self
            .inner
            .lock()
            .stream_mut(Stream::Dead)
            .remove_before(older_than_ms))
    }
}
