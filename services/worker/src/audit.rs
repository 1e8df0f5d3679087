//! The worker's side of the audit trail: permission denials and calls of admin-only skills are
//! queued (never blocking a message; dropped if the queue is full) and written in batches while
//! `clawdbot admin audit enable` is in force; records past the retention are purged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clawdbot_core::shutdown::Shutdown;
use clawdbot_store::{AuditRecord, AuditStore};
use tokio::sync::mpsc;

/// Records queued before new ones are dropped.
const QUEUE: usize = 10_000;
/// How often the writer flushes, rereads the settings and purges.
const EVERY: Duration = Duration::from_millis(500);

/// Hands audit records to the writer.
#[derive(Clone)]
pub struct Auditor {
    enabled: Arc<AtomicBool>,
    records_tx: mpsc::Sender<AuditRecord>,
}

impl Auditor {
    /// Starts the writer over `store` until shutdown.
    pub fn start(store: Arc<dyn AuditStore>, shutdown: &Shutdown) -> Self {
        let (records_tx, records_rx) = mpsc::channel(QUEUE);
        let enabled = Arc::new(AtomicBool::new(false));
        shutdown.spawn(write(store, enabled.clone(), records_rx, shutdown.clone()));
        Self {
            enabled,
            records_tx,
        }
    }

    /// Returns an auditor that records nothing (no store).
    pub fn disabled() -> Self {
        let (records_tx, _) = mpsc::channel(1);
        Self {
            enabled: Arc::new(AtomicBool::new(false)),
            records_tx,
        }
    }

    /// Queues a record if auditing is on.
    pub fn record(&self, actor: String, action: &str, target: &str, decision: &str, reason: &str) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let record = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            actor,
            action: action.to_string(),
            target: target.to_string(),
            decision: decision.to_string(),
            reason: reason.to_string(),
        };
        if self.records_tx.try_send(record).is_err() {
            clawdbot_core::telemetry::count_error("audit", "audit_queue_full");
        }
    }
}

async fn write(
    store: Arc<dyn AuditStore>,
    enabled: Arc<AtomicBool>,
    mut records_rx: mpsc::Receiver<AuditRecord>,
    shutdown: Shutdown,
) {
    let mut batch = Vec::new();
    loop {
        match store.audit_settings().await {
            Ok(Some((on, retention_days))) => {
                enabled.store(on, Ordering::Relaxed);
                let before = time::OffsetDateTime::now_utc()
                    - time::Duration::days(i64::from(retention_days));
                if on && let Err(error) = store.purge_audit(before).await {
                    tracing::warn!(error = %error, "audit purge failed");
                }
            }
            Ok(None) => enabled.store(false, Ordering::Relaxed),
            Err(error) => tracing::warn!(error = %error, "cannot read audit settings"),
        }
        while let Ok(record) = records_rx.try_recv() {
            batch.push(record);
        }
        if !batch.is_empty() {
            match store.record_audit(&batch).await {
                Ok(()) => batch.clear(),
                Err(error) => {
                    tracing::warn!(error = %error, count = batch.len(), "audit records not written; retrying");
                    batch.truncate(QUEUE);
                }
            }
        }
        if shutdown.is_triggered() {
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
