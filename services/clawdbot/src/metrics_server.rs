//! The Prometheus endpoint, `GET /metrics` on `metrics.listen`, and `GET /status`: the live
//! processes' heartbeats as JSON (what `clawdbot status` reads from an embedded `clawdbot up`,
//! whose heartbeats never leave the process).

use std::sync::Arc;
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
    presence: Arc<dyn clawdbot_bus::Presence>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let handle = crate::telemetry::metrics_recorder()?;
    crate::process_metrics::describe();
    crate::process_metrics::sample();
    let upkeep = handle.clone();
    let token = shutdown.token();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                // Histograms keep their samples until upkeep folds them.
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    crate::process_metrics::sample();
                    upkeep.run_upkeep();
                }
            }
        }
    });
    let router = axum::Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/status", get(move || heartbeats(presence.clone())));
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

/// `GET /status`: every live heartbeat, as a JSON array (503 if the bus cannot be read).
async fn heartbeats(presence: Arc<dyn clawdbot_bus::Presence>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match presence.heartbeats().await {
        Ok(beats) => {
            let beats: Vec<serde_json::Value> = beats
                .into_iter()
                .filter_map(|(_, value)| serde_json::from_str(&value).ok())
                .collect();
            axum::Json(beats).into_response()
        }
        Err(error) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("heartbeats unreadable: {error}"),
        )
            .into_response(),
    }
}
