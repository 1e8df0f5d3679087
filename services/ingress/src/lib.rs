//! clawdbot-ingress: the HTTP server platforms call.
//!
//! Stateless: any replica serves any request. For each request it verifies the platform's
//! signature, decodes the payload into envelopes, and appends them to the inbound stream —
//! deduplicated by platform message id, atomically with the append — *before* answering, so a
//! 2xx always means "in Redis". It never waits for a skill. If Redis cannot take the message
//! the answer is 503, so that the platform retries and nothing is lost.
//!
//! Routes: `/clawdbot/{platform}/callback` (the platform's only account, or the one with id
//! `default`) and `/clawdbot/{platform}/{id}/callback`; sockets a platform opens to us at
//! `/clawdbot/{platform}[/{id}]/ws[/{role}]` (OneBot reverse WebSocket); `/healthz` (the process
//! is up) and `/readyz` (Redis answers and the process is not shutting down).

mod access;
mod body;
mod connections;
mod handler;
mod publisher;
mod sandbox;
pub mod server;
mod socket;
mod start;
pub mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use clawdbot_bus::Bus;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_platforms::Inbound;
use tokio::net::TcpListener;

pub use access::{AccessPolicy, restrict};
pub use connections::start_connections;
pub use publisher::Publisher;
pub use sandbox::SandboxFeed;
pub use server::ServerLimits;
pub use start::{IngressStart, start};

/// What the ingress role needs from the config.
#[derive(Debug, Clone)]
pub struct IngressSettings {
    pub max_body_bytes: usize,
    pub dedupe_window: Duration,
    pub max_stream_len: u64,
}

/// Shared by every request.
pub(crate) struct IngressState {
    /// By (platform, account id).
    inbounds: HashMap<(String, String), Arc<dyn Inbound>>,
    /// By platform: the account `/clawdbot/{platform}/callback` serves.
    defaults: HashMap<String, Arc<dyn Inbound>>,
    publisher: Publisher,
    bus: Arc<dyn Bus>,
    shutdown: Shutdown,
}

/// Returns the router for `inbounds`, publishing through `bus`.
pub fn router(
    settings: &IngressSettings,
    bus: Arc<dyn Bus>,
    inbounds: Vec<Arc<dyn Inbound>>,
    shutdown: Shutdown,
) -> Router {
    let mut by_platform: HashMap<String, Vec<Arc<dyn Inbound>>> = HashMap::new();
    for inbound in &inbounds {
        by_platform
            .entry(inbound.route().to_string())
            .or_default()
            .push(inbound.clone());
    }
    let defaults = by_platform
        .into_iter()
        .filter_map(|(platform, accounts)| {
            let chosen = if accounts.len() == 1 {
                accounts.into_iter().next()
            } else {
                accounts
                    .into_iter()
                    .find(|inbound| inbound.bot_id() == "default")
            };
            chosen.map(|inbound| (platform, inbound))
        })
        .collect();
    let state = Arc::new(IngressState {
        inbounds: inbounds
            .into_iter()
            .map(|inbound| {
                (
                    (inbound.route().to_string(), inbound.bot_id().to_string()),
                    inbound,
                )
            })
            .collect(),
        defaults,
        publisher: Publisher::start(bus.clone(), settings.dedupe_window, settings.max_stream_len),
        bus,
        shutdown,
    });
    Router::new()
        .route(
            "/clawdbot/{platform}/callback",
            any(handler::default_account),
        )
        .route(
            "/clawdbot/{platform}/{id}/callback",
            any(handler::named_account),
        )
        .route("/clawdbot/{platform}/ws", get(socket::upgrade))
        .route("/clawdbot/{platform}/ws/{role}", get(socket::upgrade))
        .route("/clawdbot/{platform}/{id}/ws", get(socket::upgrade))
        .route("/clawdbot/{platform}/{id}/ws/{role}", get(socket::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(handler::ready))
        // The notify API's documented address (the same as /clawdbot/notify/callback).
        .route("/api/v1/notify", post(handler::notify_api))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(state)
}

/// Serves `router` on `listener` (HTTPS when `tls` is given) within `limits` until
/// shutdown, then finishes the requests in flight.
///
/// # Errors
/// The server failed.
pub async fn run(
    router: Router,
    listener: TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    limits: ServerLimits,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    server::serve("ingress", router, listener, tls, limits, shutdown).await
}
