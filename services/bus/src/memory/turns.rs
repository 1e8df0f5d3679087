//! Per-conversation order in the in-process bus.

use std::time::Instant;

use super::MemoryBus;
use crate::{BusError, TURN_TTL, Turn, Turns};

#[async_trait::async_trait]
impl Turns for MemoryBus {
    async fn finished_turns(&self, group: &str, keys: &[String]) -> Result<Vec<u64>, BusError> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        Ok(keys
            .iter()
            .map(|key| {
                state
                    .turn(key, now)
                    .and_then(|record| record.done.get(group).copied())
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn finish_turns(&self, group: &str, turns: &[Turn]) -> Result<(), BusError> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        for turn in turns {
            // Never past the turns handed out, never back (as the Redis script).
            if let Some(record) = state.turn(&turn.key, now)
                && turn.seq <= record.seq
            {
                let done = record.done.entry(group.to_string()).or_default();
                if turn.seq > *done {
                    *done = turn.seq;
                    record.expiry = now + TURN_TTL;
                }
            }
        }
        Ok(())
    }
}
