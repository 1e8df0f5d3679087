//! History write throughput of each store backend on its own: batches of the writer's size
//! (`history.batch_size`, 1000) written through the same `HistoryStore` the worker uses, rows
//! shaped like an echo's (a message and its reply), into a store of the run's own.

use std::time::Instant;

use clawdbot_store::{Direction, HistoryRecord};
use clawdbot_testkit::store::{StoreBackend, TestStore};

/// Rows per batch, as the history writer sends them by default.
const BATCH: usize = 1000;

/// Writes `rows` rows to each backend in turn and prints a table of rows/s; each batch is
/// written twice over the run's last tenth (a redelivered batch) to time the idempotent path.
pub async fn run(rows: usize) -> anyhow::Result<()> {
    println!("| backend | rows | batches of | seconds | rows/s | redelivered batch, rows/s |");
    println!("|---|---|---|---|---|---|");
    for (name, backend) in [
        ("PostgreSQL", StoreBackend::Postgres),
        ("SQLite", StoreBackend::Sqlite),
        ("MongoDB (SecantusDB)", StoreBackend::Mongo),
    ] {
        let fixture = TestStore::new(backend).await;
        let store = fixture.store.clone();
        let started = Instant::now();
        let mut written = 0u64;
        let mut last = Vec::new();
        for batch in 0..rows.div_ceil(BATCH) {
            let records = echo_rows(batch, BATCH.min(rows - batch * BATCH));
            written += store.write_history(&records).await?;
            last = records;
        }
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            written as usize == rows,
            "{name}: {written} of {rows} rows written"
        );
        let again = Instant::now();
        let rewritten = store.write_history(&last).await?;
        anyhow::ensure!(
            rewritten == 0,
            "{name}: a redelivered batch wrote {rewritten} rows"
        );
        let redelivered = last.len() as f64 / again.elapsed().as_secs_f64();
        println!(
            "| {name} | {rows} | {BATCH} | {seconds:.2} | {:.0} | {redelivered:.0} |",
            rows as f64 / seconds
        );
    }
    Ok(())
}

/// `count` rows, alternately a message and its echo, in conversations of 50 messages.
fn echo_rows(batch: usize, count: usize) -> Vec<HistoryRecord> {
    let now = time::OffsetDateTime::now_utc();
    (0..count)
        .map(|n| {
            let index = batch * BATCH + n;
            let message = index / 2;
            let direction = if index.is_multiple_of(2) {
                Direction::In
            } else {
                Direction::Out
            };
            HistoryRecord {
                id: format!("bench-{message}"),
                direction,
                platform: "onebot".into(),
                bot_id: "default".into(),
                conversation_kind: "group".into(),
                conversation_id: format!("{}", message / 50),
                sender_id: format!("{}", 1_000_000 + message),
                platform_message_id: format!("{message}"),
                event_type: "message.group.normal".into(),
                skill: if direction == Direction::Out {
                    "echo".into()
                } else {
                    String::new()
                },
                in_reply_to: if direction == Direction::Out {
                    format!("bench-{message}")
                } else {
                    String::new()
                },
                status: if direction == Direction::Out {
                    "delivered".into()
                } else {
                    String::new()
                },
                text: format!("c{}-{message} hello 你好", message / 50),
                payload: vec![0; 160],
                created_at: now,
            }
        })
        .collect()
}
