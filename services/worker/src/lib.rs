//! clawdbot-worker: the skill worker role and the history writer.
//!
//! The worker reads the inbound stream through the `skills` consumer group, runs the skills
//! whose filter accepts each message, sends their replies to egress over gRPC, and acks an
//! entry only once egress confirmed every reply. What it cannot finish stays pending and is
//! reclaimed (by any worker) after `reclaim_idle`; an entry delivered `max_deliveries` times
//! goes to the dead-letter stream. See [`consumer`] for the loop and [`router`] for the rule
//! deciding which skills a message reaches.
//!
//! The history writer is a second group (`history`) on the inbound and outbound streams that
//! writes rows to the store in batches; it never slows a reply down.

pub mod audit;
mod batch;
pub mod consumer;
pub mod dispatch;
pub mod history;
mod janitor;
pub mod loaded_skills;
pub mod loop_guard;
mod order;
pub mod policy;
pub mod policy_sync;
pub mod router;
mod start;

pub use consumer::{WorkerSettings, run};
pub use history::{HistorySettings, run as run_history};
pub use janitor::run as run_janitor;
pub use start::{WorkerStart, start};

/// Returns `<host>-<pid>`, the default consumer name: unique per process, and recognizable in
/// `XINFO CONSUMERS` (a Kubernetes pod's hostname is its name).
pub fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|host| host.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "worker".to_string());
    format!("{host}-{}", std::process::id())
}
