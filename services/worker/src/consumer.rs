//! The consumer loop of one skill pool.
//!
//! Reading and processing overlap: the loop keeps reading while earlier batches are handled
//! (see [`crate::batch`]), bounded by `concurrency` messages in flight — entries retried in
//! process keep their slots, so a worker whose replies cannot go out stops taking new work.
//! Periodically it keeps the entries it retries fresh and reclaims what dead or frozen
//! consumers left idle. On shutdown the loop stops reading, lets the batches in flight finish
//! and ack, then returns.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Bus, Consumer, Entry, Stream};
use clawdbot_core::egress::ReplySender;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::batch::{Handler, Held};
use crate::dispatch::Dispatcher;

const COMPONENT: &str = "worker";
/// How long one egress call may take: the platform's timeout times its attempts, with room.
pub const EGRESS_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the worker role needs from the config.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The consumer group (the skill pool).
    pub group: String,
    /// This process's name in the group.
    pub consumer_name: String,
    pub batch_size: usize,
    pub block: Duration,
    pub reclaim_idle: Duration,
    pub max_deliveries: u64,
    pub concurrency: usize,
    /// How long a message waits for the one before it in its conversation (0: no order).
    pub order_wait: Duration,
}

/// Runs the consumer loop until shutdown.
///
/// # Errors
/// The group or the consumer cannot be set up (Redis unreachable at start).
pub async fn run(
    settings: WorkerSettings,
    bus: Arc<dyn Bus>,
    dispatcher: Dispatcher,
    egress: Arc<dyn ReplySender>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    bus.ensure_group(Stream::Inbound, &settings.group).await?;
    let mut consumer = bus
        .consumer(Stream::Inbound, &settings.group, &settings.consumer_name)
        .await?;
    let handler = Handler {
        bus,
        dispatcher,
        egress,
        group: settings.group.clone(),
        held: Held::default(),
        retry_for: settings.reclaim_idle * settings.max_deliveries as u32,
        order_wait: settings.order_wait,
        turn_finished: Arc::default(),
        shutdown: shutdown.clone(),
    };
    if !settings.order_wait.is_zero() {
        wake_on_turns_finished_elsewhere(&handler, &shutdown).await;
    }
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    // Reclaimed entries have slots of their own: when every slot is taken by messages waiting
    // for their turn, the earlier messages they wait for — left by a dead worker — must still
    // be reclaimed, or the wait would last until `order_wait`.
    let reclaim_permits = Arc::new(Semaphore::new(settings.batch_size));
    let mut batches = JoinSet::new();
    // Reclaim at start too: a replacement for a crashed pod picks its work up right away.
    let reclaim_every = (settings.reclaim_idle / 2).max(Duration::from_millis(200));
    let mut next_reclaim = tokio::time::Instant::now();
    tracing::info!(group = %settings.group, consumer = %settings.consumer_name, "worker consuming");
    while !shutdown.is_triggered() {
        while batches.try_join_next().is_some() {}
        let free = permits.available_permits().min(settings.batch_size);
        if free == 0 {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = batches.join_next() => continue,
            }
        }
        let read = tokio::select! {
            () = shutdown.cancelled() => break,
            read = consumer.read(free, settings.block) => read,
        };
        match read {
            Ok(entries) => spawn_batch(&mut batches, &permits, &handler, entries).await,
            Err(error) => {
                telemetry::count_error(COMPONENT, error.kind());
                tracing::warn!(error = %error, "reading the inbound stream failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
        if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + reclaim_every;
            keep_held(&mut *consumer, &handler).await;
            reclaim(
                &mut *consumer,
                &settings,
                &handler,
                &mut batches,
                &reclaim_permits,
            )
            .await;
        }
    }
    tracing::info!(in_flight = batches.len(), "worker draining");
    if !handler.bus.durable() {
        drain_queue(&mut *consumer, &settings, &handler, &mut batches, &permits).await;
    }
    while batches.join_next().await.is_some() {}
    tracing::info!("worker stopped");
    Ok(())
}

/// Wakes this process's messages waiting for their turn whenever any worker of the group
/// finishes turns (a broadcast per batch), so a conversation split across workers does not
/// advance at the pace of a poll. Polling stays as the fallback (a missed broadcast).
async fn wake_on_turns_finished_elsewhere(handler: &Handler, shutdown: &Shutdown) {
    let channel = crate::batch::turns_channel(&handler.group);
    match handler.bus.subscribe(&channel).await {
        Ok(mut finished) => {
            let (wake, shutdown) = (handler.turn_finished.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = finished.recv() => match message {
                            Some(_) => wake.notify_waiters(),
                            None => return,
                        },
                    }
                }
            });
        }
        Err(error) => {
            tracing::warn!(error = %error, "cannot subscribe to finished turns; polling them only");
        }
    }
}

/// How long a draining worker waits for more entries before it calls the queue empty.
const DRAIN_BLOCK: Duration = Duration::from_millis(100);

/// Handles what is still queued, for a bus whose entries die with the process: ingress has
/// stopped, so the queue runs dry. The caller bounds the whole by the shutdown grace.
async fn drain_queue(
    consumer: &mut dyn Consumer,
    settings: &WorkerSettings,
    handler: &Handler,
    batches: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
) {
    loop {
        while batches.try_join_next().is_some() {}
        let free = permits.available_permits().min(settings.batch_size);
        if free == 0 {
            batches.join_next().await;
            continue;
        }
        match consumer.read(free, DRAIN_BLOCK).await {
            Ok(entries) if entries.is_empty() => return,
            Ok(entries) => spawn_batch(batches, permits, handler, entries).await,
            Err(_) => return,
        }
    }
}

/// Keeps the entries this process retries fresh, so that no other worker reclaims them.
async fn keep_held(consumer: &mut dyn Consumer, handler: &Handler) {
    let held = handler.held.ids();
    for chunk in held.chunks(1000) {
        if let Err(error) = consumer.keep(chunk).await {
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(error = %error, "cannot keep the entries being retried; another worker may take them over");
            return;
        }
    }
}

/// Claims entries idle for too long, page after page while there are free slots (a dead
/// worker's backlog comes back at full speed, not a page per period); those delivered too
/// often go to the dead letters.
async fn reclaim(
    consumer: &mut dyn Consumer,
    settings: &WorkerSettings,
    handler: &Handler,
    batches: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
) {
    for _page in 0..RECLAIM_PAGES {
        let free = permits.available_permits().min(settings.batch_size);
        if free == 0 {
            return;
        }
        let claimed = match consumer.reclaim(settings.reclaim_idle, free).await {
            Ok(claimed) => claimed,
            Err(error) => {
                telemetry::count_error(COMPONENT, error.kind());
                tracing::warn!(error = %error, "reclaiming idle entries failed");
                return;
            }
        };
        let full_page = claimed.len() >= free;
        if claimed.is_empty() {
            return;
        }
        tracing::info!(count = claimed.len(), "reclaimed idle entries");
        let (exhausted, retry): (Vec<Entry>, Vec<Entry>) = claimed
            .into_iter()
            .partition(|entry| entry.deliveries > settings.max_deliveries);
        for entry in exhausted {
            let reason = format!("not processed after {} deliveries", entry.deliveries - 1);
            if let Err(error) = handler
                .bus
                .dead_letter(Stream::Inbound, &handler.group, &entry, &reason)
                .await
            {
                telemetry::count_error(COMPONENT, error.kind());
                tracing::warn!(error = %error, entry_id = %entry.id, "dead-lettering failed; will retry");
            }
        }
        spawn_batch(batches, permits, handler, retry).await;
        if !full_page {
            return;
        }
    }
}

/// Pages one reclaim round takes at most, so that reading new entries is not starved.
const RECLAIM_PAGES: usize = 20;

async fn spawn_batch(
    batches: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
    handler: &Handler,
    entries: Vec<Entry>,
) {
    if entries.is_empty() {
        return;
    }
    let Ok(permit) = permits
        .clone()
        .acquire_many_owned(entries.len() as u32)
        .await
    else {
        return;
    };
    let handler = handler.clone();
    batches.spawn(async move { handler.process_batch(entries, permit).await });
}
