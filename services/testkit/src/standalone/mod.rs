//! `clawdbot-mock`: one platform's mock server as a process of its own, driven over a small
//! HTTP control API — so an operator can try clawdbot with no platform account and an
//! independent SDK or script can be pointed at the same mock the tests use.
//!
//! The platform side is the testkit mock itself (documented protocol, documented crypto in
//! `mock::doc_crypto`); this module only adds the process, the events it injects into
//! clawdbot, and the control API (`control.rs`).

mod control;
mod platform;

use std::net::SocketAddr;

pub use platform::{Account, PlatformName};

/// What the process was asked to serve.
#[derive(Debug, Clone)]
pub struct Options {
    pub platform: PlatformName,
    /// The platform API's address (what clawdbot's `api_root` / `api_base` points at).
    pub listen: String,
    /// The control API's address.
    pub control: String,
    /// clawdbot's ingress base URL (`http://host:port`); injected events are delivered there.
    pub callback: Option<String>,
    /// OneBot: connect to clawdbot's reverse WebSocket at this URL (kept connected).
    pub reverse_ws: Option<String>,
    pub account: Account,
}

/// The addresses a started mock serves, as printed at start.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub api: SocketAddr,
    pub control: SocketAddr,
}

/// Starts the mock and its control API; returns their addresses and a future that serves the
/// control API until the process ends.
///
/// # Errors
/// The control address cannot be bound.
pub async fn start(
    options: Options,
) -> Result<(Served, impl std::future::Future<Output = ()>), String> {
    let running = platform::Running::start(&options).await;
    let api = running.address();
    let listener = tokio::net::TcpListener::bind(&options.control)
        .await
        .map_err(|e| format!("control address {}: {e}", options.control))?;
    let control = listener
        .local_addr()
        .map_err(|e| format!("control address: {e}"))?;
    let served = Served { api, control };
    let serving = control::serve(listener, running, options);
    Ok((served, serving))
}
