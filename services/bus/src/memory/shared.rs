//! [`SharedState`] for the in-process bus: one process, so plain maps behind a lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clawdbot_core::shared::{SharedState, SharedStateError, next_slot};

use super::MemoryBus;

/// Values with their expiry, and the reserved slots (ms since start) of each schedule.
#[derive(Default)]
pub(crate) struct SharedMaps {
    values: HashMap<String, (String, Instant)>,
    schedules: HashMap<String, Vec<u64>>,
    counters: HashMap<String, (u64, Instant)>,
}

/// Milliseconds on a clock that only moves forward, for schedules.
fn clock_ms(origin: Instant) -> u64 {
    origin.elapsed().as_millis() as u64
}

impl SharedMaps {
    fn live_value(&mut self, key: &str, now: Instant) -> Option<&String> {
        if self
            .values
            .get(key)
            .is_some_and(|(_, expiry)| *expiry <= now)
        {
            self.values.remove(key);
        }
        self.values.get(key).map(|(value, _)| value)
    }
}

fn lock(maps: &Mutex<SharedMaps>) -> std::sync::MutexGuard<'_, SharedMaps> {
    // Plain data that every update leaves consistent: a poisoned lock is used as is.
    maps.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait::async_trait]
impl SharedState for MemoryBus {
    async fn get_value(&self, key: &str) -> Result<Option<String>, SharedStateError> {
        Ok(lock(&self.inner.shared)
            .live_value(key, Instant::now())
            .cloned())
    }

    async fn put_value(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let mut maps = lock(&self.inner.shared);
        if maps.values.len() > 100_000 {
            let now = Instant::now();
            maps.values.retain(|_, (_, expiry)| *expiry > now);
        }
        maps.values
            .insert(key.to_string(), (value.to_string(), Instant::now() + ttl));
        Ok(())
    }

    async fn put_value_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, SharedStateError> {
        let now = Instant::now();
        let mut maps = lock(&self.inner.shared);
        if maps.live_value(key, now).is_some() {
            return Ok(false);
        }
        maps.values
            .insert(key.to_string(), (value.to_string(), now + ttl));
        Ok(true)
    }

    async fn delete_value_if(&self, key: &str, value: &str) -> Result<bool, SharedStateError> {
        let mut maps = lock(&self.inner.shared);
        if maps.live_value(key, Instant::now()).map(String::as_str) == Some(value) {
            maps.values.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn renew_value_if(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, SharedStateError> {
        let now = Instant::now();
        let mut maps = lock(&self.inner.shared);
        if maps.live_value(key, now).map(String::as_str) != Some(value) {
            return Ok(false);
        }
        maps.values
            .insert(key.to_string(), (value.to_string(), now + ttl));
        Ok(true)
    }

    async fn increment(&self, key: &str, by: u64, ttl: Duration) -> Result<u64, SharedStateError> {
        let now = Instant::now();
        let mut maps = lock(&self.inner.shared);
        if maps.counters.len() > 100_000 {
            maps.counters.retain(|_, (_, expiry)| *expiry > now);
        }
        let entry = maps
            .counters
            .entry(key.to_string())
            .or_insert((0, now + ttl));
        if entry.1 <= now {
            *entry = (0, now + ttl);
        }
        entry.0 += by.max(1);
        Ok(entry.0)
    }

    async fn reserve_slot(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        max_wait: Duration,
    ) -> Result<Option<Duration>, SharedStateError> {
        let now = clock_ms(self.inner.origin);
        let window_ms = window.as_millis() as u64;
        let mut maps = lock(&self.inner.shared);
        let reserved = maps.schedules.entry(key.to_string()).or_default();
        reserved.retain(|at| at.saturating_add(window_ms) > now);
        let at = next_slot(reserved, now, limit, window_ms);
        let wait = at - now;
        if wait > max_wait.as_millis() as u64 {
            return Ok(None);
        }
        reserved.push(at);
        Ok(Some(Duration::from_millis(wait)))
    }
}
