//! clawdbot-egress: the gRPC service that delivers replies to the platform APIs.
//!
//! Contract (`proto/clawdbot/v1/egress.proto`): `Send` is idempotent by reply id. The ledger
//! tells "being delivered" (a lease that expires, so a crash mid-delivery never blocks the
//! retry) from "done" (the stored result, returned to any later call with the same id). Each
//! account's platform calls have their own client, timeout and retries, so a failing platform
//! API only slows the calls addressed to it.

mod delivery;
mod recorder;
mod result;
mod service;

use std::sync::Arc;
use std::time::Duration;

use clawdbot_core::proto::egress_server::EgressServer;
use clawdbot_core::shutdown::Shutdown;
use tokio::net::TcpListener;

pub use service::EgressService;

/// What the egress role needs from the config.
#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// How long one delivery holds its lease.
    pub lease: Duration,
    /// How long a finished reply's result is remembered.
    pub result_ttl: Duration,
}

/// Builds the egress service over `outbounds` and serves it on `listener` until `shutdown`;
/// returns the service, which a worker in the same process calls directly.
pub fn start(
    settings: EgressSettings,
    bus: Arc<dyn clawdbot_bus::Bus>,
    outbounds: clawdbot_platforms::Outbounds,
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: &Shutdown,
) -> Arc<EgressService> {
    // Each platform's series exists from the start: a dashboard shows 0, not a gap.
    for (platform, _) in outbounds.keys() {
        metrics::counter!(
            clawdbot_core::telemetry::EGRESS_DELIVERIES_TOTAL,
            "platform" => *platform,
            "outcome" => "delivered"
        )
        .increment(0);
    }
    let service = Arc::new(EgressService::new(settings, bus, outbounds, shutdown));
    let serving = run(service.clone(), listener, tls, shutdown.clone());
    shutdown.spawn(async move {
        if let Err(error) = serving.await {
            tracing::error!(
                role = "egress",
                error = format!("{error:#}"),
                "role stopped with an error"
            );
        }
    });
    service
}

/// Serves `service` over gRPC on `listener` until shutdown, then finishes the calls in
/// flight.
///
/// # Errors
/// The server failed (the listener broke).
pub async fn run(
    service: Arc<EgressService>,
    listener: TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tracing::info!(mtls = tls.is_some(), "egress serving");
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .add_service(EgressServer::from_arc(service))
        .serve_with_incoming_shutdown(incoming, async move { shutdown.cancelled().await })
        .await?;
    tracing::info!("egress stopped");
    Ok(())
}
