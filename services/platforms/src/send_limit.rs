//! A platform's send limit (WeCom: 30 app messages a minute per member, 20 a minute per group
//! robot; DingTalk: 20 a minute per custom robot), held across every egress replica through
//! the shared state: a send past the limit waits for its slot in order, and past the longest
//! wait the delivery fails as "unavailable" (the worker retries it later) — never dropped.

use std::time::Duration;

use clawdbot_core::shared::SharedState;
use serde::Deserialize;

use crate::OutboundError;

use crate::token::shared_error;
pub use clawdbot_core::telemetry::SEND_QUEUE_WAITING;

/// A send limit: `count` per `window_secs`, with sends past it queued up to `max_wait_secs`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendLimit {
    /// Sends allowed per window.
    pub count: u32,
    /// The window the platform counts sends in.
    #[serde(default = "default_window_secs")]
    pub window_secs: f64,
    /// The longest a send waits for its slot; past it the queue is full and the delivery fails
    /// as "unavailable" (retried later by the worker, never dropped). Keep it under the
    /// worker's egress call timeout (60 s).
    #[serde(default = "default_max_wait_secs")]
    pub max_wait_secs: f64,
    /// Added to the window when spacing sends: a send reaches the platform a little after its
    /// slot (network, retries), so slots exactly one window apart could land inside one window
    /// of the platform's clock and be refused.
    #[serde(default = "default_margin_secs")]
    pub margin_secs: f64,
}

impl Default for SendLimit {
    fn default() -> Self {
        Self {
            count: 30,
            window_secs: default_window_secs(),
            max_wait_secs: default_max_wait_secs(),
            margin_secs: default_margin_secs(),
        }
    }
}

fn default_window_secs() -> f64 {
    60.0
}
fn default_max_wait_secs() -> f64 {
    45.0
}
fn default_margin_secs() -> f64 {
    0.5
}

impl SendLimit {
    /// Returns every problem with this limit, each naming its key path under `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.count == 0 {
            problems.push(format!("`{path}.count` must be at least 1"));
        }
        if !(self.window_secs > 0.0 && self.window_secs <= 86_400.0) {
            problems.push(format!(
                "`{path}.window_secs` must be between 0 and 86400, got `{}`",
                self.window_secs
            ));
        }
        if !(self.max_wait_secs >= 0.0 && self.max_wait_secs <= 3600.0) {
            problems.push(format!(
                "`{path}.max_wait_secs` must be between 0 and 3600, got `{}`",
                self.max_wait_secs
            ));
        }
        if !(self.margin_secs >= 0.0 && self.margin_secs <= 60.0) {
            problems.push(format!(
                "`{path}.margin_secs` must be between 0 and 60, got `{}`",
                self.margin_secs
            ));
        }
        problems
    }

    /// The spacing of the schedule: the platform's window plus the margin.
    pub(crate) fn window(&self) -> Duration {
        Duration::from_secs_f64(self.window_secs + self.margin_secs)
    }

    pub(crate) fn max_wait(&self) -> Duration {
        Duration::from_secs_f64(self.max_wait_secs)
    }
}

/// Waits for a send slot of `schedule` under `limit`, or fails when the queue is full. `what`
/// names the limited thing in the error (`group robot `ops``).
///
/// # Errors
/// The queue is full, or the shared state is unreachable (both `Unavailable`).
pub async fn wait_for_slot(
    shared: &dyn SharedState,
    schedule: &str,
    limit: &SendLimit,
    what: &str,
) -> Result<(), OutboundError> {
    let wait = shared
        .reserve_slot(schedule, limit.count, limit.window(), limit.max_wait())
        .await
        .map_err(shared_error)?;
    match wait {
        Some(wait) if wait.is_zero() => Ok(()),
        Some(wait) => {
            tracing::debug!(
                schedule,
                wait_ms = wait.as_millis() as u64,
                "queued for the send limit"
            );
            // By kind of limit (`wecom:robot`, `dingtalk:robot`, `wecom:member`), not by
            // member: that would be one series per person.
            let kind: String = schedule.split(':').take(2).collect::<Vec<_>>().join(":");
            let waiting = metrics::gauge!(SEND_QUEUE_WAITING, "limit" => kind);
            waiting.increment(1.0);
            tokio::time::sleep(wait).await;
            waiting.decrement(1.0);
            Ok(())
        }
        None => Err(OutboundError::Unavailable {
            reason: format!(
                "{what}: send queue is full ({} per {}s, next slot more than {}s away); retried later",
                limit.count, limit.window_secs, limit.max_wait_secs
            ),
            attempts: 0,
        }),
    }
}
