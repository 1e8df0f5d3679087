//! Mock platform servers: they speak the documented protocol (real auth checks, real payloads)
//! and record what clawdbot sent, so tests and the load generator can assert on it.

pub mod dingtalk;
mod dingtalk_stream;
pub mod doc_crypto;
pub mod faults;
pub mod onebot;
mod onebot_ws;
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

/// Binds a mock's listener on `address`; returns it with the address it got.
///
/// # Panics
/// The address cannot be bound (a test cannot run without its mock).
pub(crate) async fn bind(
    address: &str,
    name: &str,
) -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap_or_else(|error| panic!("mock {name} bind {address}: {error}"));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("mock {name} address: {error}"));
    (listener, bound)
}

/// Serves `app` on `listener` until the returned task is dropped with its mock.
pub(crate) fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("mock {name} stopped: {error}");
        }
    })
}

/// A platform's per-robot limit as the platform applies it: admits a send (recording it) if
/// fewer than `limit` happened in the last `window`.
pub(crate) fn admit(
    sends: &mut std::collections::VecDeque<std::time::Instant>,
    limit: usize,
    window: std::time::Duration,
) -> bool {
    let now = std::time::Instant::now();
    while sends
        .front()
        .is_some_and(|at| now.duration_since(*at) >= window)
    {
        sends.pop_front();
    }
    if sends.len() >= limit {
        return false;
    }
    sends.push_back(now);
    true
}
