//! Records warnings, errors and skill-call outcomes of this process in the store, so that
//! `clawdbot log show|analyze` answers for the whole cluster (stdout keeps every line for
//! Kubernetes). A tracing layer hands records to a bounded channel without waiting; a writer
//! task batches them into the store once a second. Successful skill calls are counted, not
//! recorded one by one: one row per skill and platform per second says how many.
//!
//! Records are dropped (and counted in `clawdbot_log_records_dropped_total`) when the store
//! falls behind, never queued without bound; the writer's own failures go to stdout only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clawdbot_core::shutdown::Shutdown;
use clawdbot_store::{LogRecord, LogStore};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// The target of skill-call events (`tracing::info!(target: SKILL_CALL_TARGET, ...)`).
pub use clawdbot_core::telemetry::SKILL_CALL_TARGET;

/// This module's own target: its events are never recorded (no feedback loop).
const OWN_TARGET: &str = "clawdbot::log_store";
use clawdbot_core::telemetry::LOG_RECORDS_DROPPED_TOTAL as DROPPED_TOTAL;
/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 10_000;

static SINK: OnceLock<mpsc::Sender<LogRecord>> = OnceLock::new();

/// The tracing layer: picks the events worth keeping and queues them.
pub struct StoreLogLayer {
    role: &'static str,
    instance: String,
}

impl StoreLogLayer {
    pub fn new(role: &'static str, instance: String) -> Self {
        Self { role, instance }
    }
}

/// Collects an event's fields: the message, the ones with columns, the rest as `k=v`.
#[derive(Default)]
struct Fields {
    message: String,
    platform: String,
    skill: String,
    error_type: String,
    outcome: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field.name(), format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, name: &str, value: String) {
        match name {
            "message" => self.message = value,
            "platform" => self.platform = value,
            "skill" => self.skill = value,
            "error_type" => self.error_type = value,
            "outcome" => self.outcome = value,
            other => {
                if !self.rest.is_empty() {
                    self.rest.push(' ');
                }
                // Writing to a String cannot fail.
                let _written: std::fmt::Result = write!(self.rest, "{other}={value}");
            }
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for StoreLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let skill_call = metadata.target() == SKILL_CALL_TARGET;
        // Level order: ERROR < WARN < INFO < DEBUG < TRACE.
        if (*metadata.level() > Level::WARN && !skill_call) || metadata.target() == OWN_TARGET {
            return;
        }
        let Some(sink) = SINK.get() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *metadata.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            _ => "INFO",
        };
        let record = LogRecord {
            at: time::OffsetDateTime::now_utc(),
            level: level.to_string(),
            role: self.role.to_string(),
            instance: self.instance.clone(),
            platform: fields.platform,
            skill: fields.skill,
            error_type: fields.error_type,
            // Successful calls are summed by the writer; the outcome keeps them apart.
            message: if skill_call && fields.outcome == "ok" {
                "skill calls".into()
            } else {
                fields.message
            },
            fields: fields.rest,
            count: 1,
        };
        if sink.try_send(record).is_err() {
            metrics::counter!(DROPPED_TOTAL).increment(1);
        }
    }
}

/// Starts the writer: from now on, recorded events go to `store`; records older than
/// `retention` are purged hourly. Runs until `shutdown`, writing what is queued at the end.
pub fn attach(store: Arc<dyn LogStore>, retention: Duration, shutdown: &Shutdown) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    if SINK.set(sender).is_err() {
        return;
    }
    shutdown.spawn(write(store, receiver, retention, shutdown.clone()));
}

async fn write(
    store: Arc<dyn LogStore>,
    mut receiver: mpsc::Receiver<LogRecord>,
    retention: Duration,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut purge = tokio::time::interval(Duration::from_secs(3600));
    let mut batch: Vec<LogRecord> = Vec::new();
    // Successful skill calls this second, by (skill, platform, role, instance).
    let mut calls: BTreeMap<(String, String), LogRecord> = BTreeMap::new();
    loop {
        tokio::select! {
            record = receiver.recv() => match record {
                Some(record) if record.message == "skill calls" => {
                    calls
                        .entry((record.skill.clone(), record.platform.clone()))
                        .and_modify(|summary| summary.count += 1)
                        .or_insert(record);
                }
                Some(record) => batch.push(record),
                None => break,
            },
            _ = tick.tick() => flush(&*store, &mut batch, &mut calls).await,
            _ = purge.tick() => {
                let before = time::OffsetDateTime::now_utc() - retention;
                if let Err(error) = store.purge_logs(before).await {
                    tracing::warn!(target: OWN_TARGET, error = %error, "cannot purge old log records");
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    while let Ok(record) = receiver.try_recv() {
        batch.push(record);
    }
    flush(&*store, &mut batch, &mut calls).await;
}

async fn flush(
    store: &dyn LogStore,
    batch: &mut Vec<LogRecord>,
    calls: &mut BTreeMap<(String, String), LogRecord>,
) {
    batch.extend(std::mem::take(calls).into_values());
    if batch.is_empty() {
        return;
    }
    if let Err(error) = store.write_logs(batch).await {
        metrics::counter!(DROPPED_TOTAL).increment(batch.len() as u64);
        tracing::warn!(target: OWN_TARGET, error = %error, records = batch.len(), "cannot record log events in the store");
    }
    batch.clear();
}
