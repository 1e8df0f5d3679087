//! A consumer of the in-process bus; blocking reads wait on the stream's `Notify`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Inner;
use crate::{BusError, Consumer, Entry, Stream};

pub(crate) struct MemoryConsumer {
    inner: Arc<Inner>,
    stream: Stream,
    group: String,
    name: String,
}

impl MemoryConsumer {
    pub(crate) fn new(inner: Arc<Inner>, stream: Stream, group: &str, name: &str) -> Self {
        Self {
            inner,
            stream,
            group: group.to_string(),
            name: name.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Consumer for MemoryConsumer {
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Entry>, BusError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Register for the wake-up before looking, so that a publish in between is not missed.
            let notified = self.inner.notify(self.stream).notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let entries = self.inner.lock().stream_mut(self.stream).read_new(
                &self.group,
                &self.name,
                count,
                Instant::now(),
            );
            if !entries.is_empty() {
                return Ok(entries);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn reclaim(&mut self, min_idle: Duration, count: usize) -> Result<Vec<Entry>, BusError> {
        Ok(self.inner.lock().stream_mut(self.stream).reclaim(
            &self.group,
            &self.name,
            min_idle,
            count,
            Instant::now(),
        ))
    }

    async fn keep(&mut self, ids: &[String]) -> Result<(), BusError> {
        self.inner.lock().stream_mut(self.stream).keep(
            &self.group,
            &self.name,
            ids,
            Instant::now(),
        );
        Ok(())
    }
}
