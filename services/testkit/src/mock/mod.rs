//! Mock platform servers: they speak the documented protocol (real auth checks, real payloads)
//! and record what clawdbot sent, so tests and the load generator can assert on it.

pub mod dingtalk;
mod dingtalk_stream;
pub mod onebot;
pub mod qq;
pub mod service;
pub mod skill;
pub mod wecom;

/// Waits until `read` returns at least `count` items (checked whenever `notify` fires), or
/// `timeout` passed; returns what `read` returns then. Every mock's `wait_for`.
pub(crate) async fn wait_for_count<T>(
    notify: &tokio::sync::Notify,
    count: usize,
    timeout: std::time::Duration,
    read: impl Fn() -> Vec<T>,
) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Registered before reading, so that a notification in between is not missed.
        let notified = notify.notified();
        let items = read();
        if items.len() >= count {
            return items;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return read();
        }
    }
}
