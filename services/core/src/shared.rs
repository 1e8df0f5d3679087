//! State that every replica of a role shares, for the platform clients: cached access tokens,
//! refresh leases, cached media ids and send schedules. The cluster keeps it in Redis (next to
//! the streams, under the same key prefix), the embedded mode in memory; platform code sees
//! only this trait, so that "refreshed by one replica at a time" and "20 a minute across all
//! replicas" are the same code in both.

use std::time::Duration;

/// The shared state could not be read or written (Redis unreachable). Callers treat it as
/// transient: the delivery is retried later, never dropped.
#[derive(Debug, thiserror::Error)]
#[error("shared state unavailable: {0}")]
pub struct SharedStateError(pub String);

/// Key-value entries with a time to live, and send schedules. Keys are the platform's own
/// (`wecom:token:{corp}:{agent}`); the implementation adds its prefix.
#[async_trait::async_trait]
pub trait SharedState: Send + Sync {
    /// Returns the value of `key`, if it is set and not expired.
    async fn get_value(&self, key: &str) -> Result<Option<String>, SharedStateError>;

    /// Sets `key` to `value` for `ttl`.
    async fn put_value(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), SharedStateError>;

    /// Sets `key` to `value` for `ttl` only if it is not set; returns whether it was set. A
    /// lease: whoever sets it does the work, the others wait for its result.
    async fn put_value_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, SharedStateError>;

    /// Deletes `key` if it still holds `value`; returns whether it did. Releases a lease, or
    /// drops a token that the platform rejected without dropping a newer one.
    async fn delete_value_if(&self, key: &str, value: &str) -> Result<bool, SharedStateError>;

    /// Extends `key` to `ttl` if it still holds `value`; returns whether it did. Renews a lease
    /// only while its holder still has it.
    async fn renew_value_if(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, SharedStateError>;

    /// Adds `by` to the counter `key` and returns the new value (`by` the first time), so the
    /// caller owns the `by` numbers ending there; the counter lives `ttl` from its first
    /// increment. Fencing tokens (each new lease holder gets a higher number) and per-message
    /// reply sequence numbers (QQ's `msg_seq`, one per part of a reply, in one round trip).
    async fn increment(&self, key: &str, by: u64, ttl: Duration) -> Result<u64, SharedStateError>;

    /// Reserves the next send slot of the schedule `key`, which allows `limit` sends in any
    /// `window`: returns how long to wait before sending (zero when there is room now), or
    /// `None` when the next free slot is more than `max_wait` away (the queue is full; nothing
    /// is reserved). Slots are reserved atomically, so that replicas sharing the state never
    /// exceed the limit together, and in order, so that queued sends keep their turn.
    async fn reserve_slot(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        max_wait: Duration,
    ) -> Result<Option<Duration>, SharedStateError>;
}

/// The send-slot rule both implementations follow, over the times already reserved in the
/// window (ascending, all within `window` of `now`): the new slot is `now` if fewer than `limit`
/// are reserved, else one window after the `limit`-th latest reservation.
pub fn next_slot(reserved: &[u64], now: u64, limit: u32, window: u64) -> u64 {
    let limit = limit.max(1) as usize;
    if reserved.len() < limit {
        return now;
    }
    let pivot = reserved[reserved.len() - limit];
    now.max(pivot.saturating_add(window))
}

#[cfg(test)]
mod tests {
    use super::next_slot;

    #[test]
    fn slots_are_free_until_the_limit_then_one_window_after_the_limit_th_latest() {
        assert_eq!(next_slot(&[], 1000, 2, 60), 1000);
        assert_eq!(next_slot(&[990], 1000, 2, 60), 1000);
        // Two in the window already: the third waits until the first leaves it.
        assert_eq!(next_slot(&[990, 995], 1000, 2, 60), 1050);
        // Queued slots in the future push later ones further out, keeping the order.
        assert_eq!(next_slot(&[990, 995, 1050], 1000, 2, 60), 1055);
        assert_eq!(next_slot(&[990, 995, 1050, 1055], 1000, 2, 60), 1110);
    }
}
