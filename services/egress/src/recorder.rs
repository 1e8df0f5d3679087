//! Writes delivery outcomes to the reply ledger, apart from the calls that produced them.
//!
//! A delivery hands its outcome over the moment it is known (`complete` or `release`) and the
//! recorder holds it until the ledger takes it: a bus outage delays the record, never loses it.
//! Meanwhile the lease over every delivery that has not landed its record is renewed, so no
//! lease expires over a reply that went out (the cause of duplicates when a record waited for
//! a whole batch, or for a bus that was away). Whatever is waiting goes in one round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawdbot_bus::{Bus, Completion};
use clawdbot_core::telemetry;
use tokio::sync::{mpsc, oneshot};

/// Records per ledger round trip.
const MAX_WRITE: usize = 1000;
/// The first pause after a failed write; it doubles up to [`MAX_PAUSE`]. Short, because a
/// reclaimed message that races a held record would be sent again.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// One outcome to record.
enum Record {
    /// Delivered (or finally refused): the result every later call gets; `written` hears
    /// when it is in the ledger.
    Complete {
        completion: Completion,
        written: oneshot::Sender<()>,
    },
    /// Not delivered (transient): the lease is given back so a retry may deliver.
    Release { reply_id: String, token: String },
}

impl Record {
    fn reply_id(&self) -> &str {
        match self {
            Record::Complete { completion, .. } => &completion.reply_id,
            Record::Release { reply_id, .. } => reply_id,
        }
    }
}

/// The recorder of one egress process. Cheap to share.
pub(crate) struct Recorder {
    queue: mpsc::UnboundedSender<Record>,
    /// The leases taken and not yet settled in the ledger (reply id → token).
    held: Arc<Mutex<HashMap<String, String>>>,
}

impl Recorder {
    /// Starts the writer and the lease keeper on `bus`. They run while the recorder lives;
    /// what must be written before the process exits is awaited by the deliveries themselves
    /// (tasks the shutdown waits for), so the recorder needs no shutdown of its own.
    pub(crate) fn start(bus: Arc<dyn Bus>, lease: Duration, result_ttl: Duration) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let held = Arc::new(Mutex::new(HashMap::new()));
        let writer = Writer {
            bus: bus.clone(),
            result_ttl,
            held: held.clone(),
        };
        tokio::spawn(writer.run(receiver));
        tokio::spawn(keep_leases(bus, lease, Arc::downgrade(&held)));
        Self { queue, held }
    }

    /// Notes a lease just taken: it is renewed until its outcome is recorded.
    pub(crate) fn hold(&self, reply_id: &str, token: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(reply_id.to_string(), token.to_string());
        }
    }

    /// Records a final outcome; the receiver hears once it is in the ledger (and never, if
    /// the process stops first).
    pub(crate) fn complete(&self, completion: Completion) -> oneshot::Receiver<()> {
        let (written, receiver) = oneshot::channel();
        self.enqueue(Record::Complete {
            completion,
            written,
        });
        receiver
    }

    /// Gives a lease back.
    pub(crate) fn release(&self, reply_id: String, token: String) {
        self.enqueue(Record::Release { reply_id, token });
    }

    fn enqueue(&self, record: Record) {
        if let Err(mpsc::error::SendError(record)) = self.queue.send(record) {
            // Only if the writer task died: the lease expires and the message's retry finds the
            // reply unrecorded.
            tracing::error!(
                reply_id = record.reply_id(),
                "delivery outcome not recorded: the recorder has stopped"
            );
        }
    }
}

struct Writer {
    bus: Arc<dyn Bus>,
    result_ttl: Duration,
    held: Arc<Mutex<HashMap<String, String>>>,
}

/// The records of one write, owned, so that a retry writes them again without copying them.
#[derive(Default)]
struct Batch {
    completions: Vec<Completion>,
    /// Told once the completions are in, in the same order.
    written: Vec<oneshot::Sender<()>>,
    releases: Vec<(String, String)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.completions.len() + self.releases.len()
    }

    fn push(&mut self, record: Record) {
        match record {
            Record::Complete {
                completion,
                written,
            } => {
                self.completions.push(completion);
                self.written.push(written);
            }
            Record::Release { reply_id, token } => self.releases.push((reply_id, token)),
        }
    }
}

impl Writer {
    async fn run(self, mut receiver: mpsc::UnboundedReceiver<Record>) {
        loop {
            let mut batch = Batch::default();
            match receiver.recv().await {
                Some(record) => batch.push(record),
                // The recorder is gone: nothing more can come.
                None => return,
            }
            while batch.len() < MAX_WRITE {
                match receiver.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            self.write_until_taken(&batch).await;
            self.settle(&batch);
            for written in batch.written {
                // The delivery may have finished waiting (its caller gone).
                let _heard = written.send(());
            }
        }
    }

    /// Writes `batch`, retrying with a growing pause until the bus takes it (what arrives
    /// meanwhile waits in the queue for the next write).
    async fn write_until_taken(&self, batch: &Batch) {
        let mut pause = FIRST_PAUSE;
        let mut failing_since: Option<tokio::time::Instant> = None;
        loop {
            match self.write(batch).await {
                Ok(()) => {
                    if let Some(since) = failing_since {
                        tracing::info!(
                            outage_ms = since.elapsed().as_millis() as u64,
                            "delivery outcomes recorded again after the bus came back"
                        );
                    }
                    return;
                }
                Err(error) => {
                    telemetry::count_error("egress", error.kind());
                    if failing_since.is_none() {
                        failing_since = Some(tokio::time::Instant::now());
                        tracing::error!(held = batch.len(), error = %error, "cannot record delivery outcomes; holding them and retrying");
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    async fn write(&self, batch: &Batch) -> Result<(), clawdbot_bus::BusError> {
        let ledger = self.bus.ledger();
        ledger
            .complete_many(&batch.completions, self.result_ttl)
            .await?;
        // Completing twice is harmless (the first result stays), so a release failing after
        // the completions landed simply writes them again.
        ledger.release_many(&batch.releases).await
    }

    fn settle(&self, batch: &Batch) {
        if let Ok(mut held) = self.held.lock() {
            for completion in &batch.completions {
                held.remove(&completion.reply_id);
            }
            for (reply_id, _) in &batch.releases {
                held.remove(reply_id);
            }
        }
    }
}

/// Renews every held lease each third of `lease`, so that a delivery slower than one lease
/// (platform retries, a late answer, a bus outage delaying its record) keeps it. Ends with the
/// recorder.
async fn keep_leases(
    bus: Arc<dyn Bus>,
    lease: Duration,
    held: std::sync::Weak<Mutex<HashMap<String, String>>>,
) {
    let every = (lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let Some(held) = held.upgrade() else {
            return;
        };
        let leases: Vec<(String, String)> = held
            .lock()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        drop(held);
        for chunk in leases.chunks(MAX_WRITE) {
            if let Err(error) = bus.ledger().renew_many(chunk, lease).await {
                telemetry::count_error("egress", error.kind());
                tracing::warn!(held = leases.len(), error = %error, "cannot renew delivery leases; retrying");
                break;
            }
        }
    }
}
