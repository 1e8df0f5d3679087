//! Periodic upkeep any worker may do (it is idempotent): trim the streams below what every
//! group still needs, and sample stream length and pending counts into metrics.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Stream, Streams};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::{self, STREAM_LENGTH, STREAM_PENDING};

/// Trims and samples every `every` until shutdown.
pub async fn run(bus: Arc<dyn Streams>, every: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        for stream in [Stream::Inbound, Stream::Outbound] {
            match bus.trim(stream).await {
                Ok(trimmed) if trimmed > 0 => {
                    tracing::debug!(stream = stream.as_str(), trimmed, "stream trimmed")
                }
                Ok(_) => {}
                Err(error) => {
                    telemetry::count_error("janitor", error.kind());
                    tracing::warn!(stream = stream.as_str(), error = %error, "trimming failed");
                }
            }
        }
        for stream in [Stream::Inbound, Stream::Outbound, Stream::Dead] {
            let Ok(stats) = bus.stats(stream).await else {
                continue;
            };
            metrics::gauge!(STREAM_LENGTH, "stream" => stream.as_str()).set(stats.length as f64);
            for (group, pending, _lag) in stats.groups {
                metrics::gauge!(STREAM_PENDING, "stream" => stream.as_str(), "group" => group)
                    .set(pending as f64);
            }
        }
    }
}
