//! The history in a map: what a `HistoryBackend` must do, with nothing else in the way. Your
//! backend does the same against its database: skip rows already saved (by direction and id),
//! answer queries in (time, id) order with keyset paging, delete by time.
//! (Also run by clawdbot's contract suite, which includes this file.)

use std::collections::BTreeMap;
use std::sync::Mutex;

use clawdbot_history_sink::{DEFAULT_LIMIT, HistoryBackend, HistoryRow, QueryMessagesRequest};

/// Rows by (direction, id).
#[derive(Default)]
pub struct MemoryHistory {
    rows: Mutex<BTreeMap<(String, String), HistoryRow>>,
}

impl MemoryHistory {
    fn rows(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), HistoryRow>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `row` passes the query's filters (empty and zero filter nothing).
fn matches(row: &HistoryRow, query: &QueryMessagesRequest) -> bool {
    let field = |wanted: &str, value: &str| wanted.is_empty() || wanted == value;
    field(&query.platform, &row.platform)
        && field(&query.bot_id, &row.bot_id)
        && field(&query.conversation_id, &row.conversation_id)
        && field(&query.direction, &row.direction)
        && row.created_at_us >= query.since_us
        && (query.grep.is_empty() || row.text.to_lowercase().contains(&query.grep.to_lowercase()))
}

#[async_trait::async_trait]
impl HistoryBackend for MemoryHistory {
    async fn save_messages(&self, rows: Vec<HistoryRow>) -> Result<u64, String> {
        let mut saved = self.rows();
        let mut written = 0;
        for row in rows {
            let key = (row.direction.clone(), row.id.clone());
            if let std::collections::btree_map::Entry::Vacant(slot) = saved.entry(key) {
                slot.insert(row);
                written += 1;
            }
        }
        Ok(written)
    }

    async fn query_messages(&self, query: QueryMessagesRequest) -> Result<Vec<HistoryRow>, String> {
        let mut found: Vec<HistoryRow> = self
            .rows()
            .values()
            .filter(|row| matches(row, &query))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at_us, &a.id).cmp(&(b.created_at_us, &b.id)));
        if query.newest_first {
            found.reverse();
        }
        if !query.after_id.is_empty() {
            let after = (query.after_us, query.after_id.as_str());
            found.retain(|row| {
                let at = (row.created_at_us, row.id.as_str());
                if query.newest_first {
                    at < after
                } else {
                    at > after
                }
            });
        }
        let limit = match query.limit {
            0 => DEFAULT_LIMIT,
            limit => limit as usize,
        };
        found.truncate(limit);
        Ok(found)
    }

    async fn delete_before(&self, before_us: i64) -> Result<u64, String> {
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|_, row| row.created_at_us >= before_us);
        Ok((before - rows.len()) as u64)
    }
}
