//! The Prometheus endpoint: `GET /metrics` on `metrics.listen`.

use std::time::Duration;

use axum::routing::get;
use clawdbot_core::shutdown::Shutdown;
use tokio::net::TcpListener;

/// Installs the recorder and serves it on `listener` until shutdown.
///
/// # Errors
/// A recorder is already installed.
pub fn serve_metrics(
    listener: TcpListener,
    limits: clawdbot_ingress::ServerLimits,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let handle = crate::telemetry::metrics_recorder()?;
    let upkeep = handle.clone();
    let token = shutdown.token();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                // Histograms keep their samples until upkeep folds them.
                () = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
            }
        }
    });
    let router =
        axum::Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let served =
            clawdbot_ingress::server::serve("metrics", router, listener, None, limits, shutdown)
                .await;
        if let Err(error) = served {
            tracing::error!(error = %error, "metrics server failed");
        }
    });
    Ok(())
}
