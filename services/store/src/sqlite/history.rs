//! History: writes in batches, a conversation read back, skill activity.

use rusqlite::params;

use time::OffsetDateTime;

use super::{SqliteStore, from_millis, millis, sqlite_error};
use crate::{Direction, HistoryQuery, HistoryRecord, StoreError, like_pattern};

const INSERT: &str =
    "INSERT OR IGNORE INTO messages (id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

const SELECT_CONVERSATION: &str = "SELECT id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at
FROM (SELECT * FROM messages WHERE platform = ?1 AND bot_id = ?2 AND conversation_id = ?3
      ORDER BY created_at DESC LIMIT ?4)
ORDER BY created_at, direction";

const SELECT_PAGE: &str = "SELECT id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at
FROM messages
WHERE (?1 IS NULL OR platform = ?1)
  AND (?2 IS NULL OR conversation_id = ?2)
  AND (?3 IS NULL OR created_at >= ?3)
  AND (?4 IS NULL OR text LIKE ?4 ESCAPE '\\')
  AND (?5 IS NULL OR created_at > ?5 OR (created_at = ?5 AND id > ?6))
ORDER BY created_at, id
LIMIT ?7";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRecord> {
    Ok(HistoryRecord {
        id: row.get(0)?,
        direction: if row.get::<_, String>(1)? == "in" {
            Direction::In
        } else {
            Direction::Out
        },
        platform: row.get(2)?,
        bot_id: row.get(3)?,
        conversation_kind: row.get(4)?,
        conversation_id: row.get(5)?,
        sender_id: row.get(6)?,
        platform_message_id: row.get(7)?,
        event_type: row.get(8)?,
        skill: row.get(9)?,
        in_reply_to: row.get(10)?,
        status: row.get(11)?,
        text: row.get(12)?,
        payload: row.get(13)?,
        created_at: from_millis(row.get(14)?),
    })
}

#[async_trait::async_trait]
impl crate::HistoryStore for SqliteStore {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let records = records.to_vec();
        self.with_connection(move |connection| {
            let tx = connection
                .transaction()
                .map_err(sqlite_error("begin history batch"))?;
            let mut written = 0;
            {
                let mut insert = tx
                    .prepare_cached(INSERT)
                    .map_err(sqlite_error("prepare history insert"))?;
                for r in &records {
                    written += insert
                        .execute(params![
                            r.id,
                            r.direction.as_str(),
                            r.platform,
                            r.bot_id,
                            r.conversation_kind,
                            r.conversation_id,
                            r.sender_id,
                            r.platform_message_id,
                            r.event_type,
                            r.skill,
                            r.in_reply_to,
                            r.status,
                            r.text,
                            r.payload,
                            millis(r.created_at),
                        ])
                        .map_err(sqlite_error("insert history row"))?
                        as u64;
                }
            }
            tx.commit().map_err(sqlite_error("commit history batch"))?;
            Ok(written)
        })
        .await
    }

    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let (platform, bot_id, conversation_id) = (
            platform.to_string(),
            bot_id.to_string(),
            conversation_id.to_string(),
        );
        self.with_connection(move |connection| {
            let mut select = connection
                .prepare_cached(SELECT_CONVERSATION)
                .map_err(sqlite_error("prepare conversation"))?;
            let rows = select
                .query_map(params![platform, bot_id, conversation_id, limit], record)
                .map_err(sqlite_error("select conversation"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sqlite_error("read conversation row"))
        })
        .await
    }

    async fn skill_activity(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<crate::SkillActivity>, StoreError> {
        let since = millis(since);
        self.with_connection(move |connection| {
            let mut select = connection
                .prepare_cached(
                    "SELECT o.skill, o.created_at - i.created_at
                     FROM messages o LEFT JOIN messages i ON i.id = o.in_reply_to AND i.direction = 'in'
                     WHERE o.direction = 'out' AND o.created_at >= ?1 AND o.skill <> ''",
                )
                .map_err(sqlite_error("prepare skill activity"))?;
            let rows = select
                .query_map([since], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<i64>>(1)?.map(|ms| ms as f64))))
                .map_err(sqlite_error("select skill activity"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sqlite_error("read skill activity"))?;
            Ok(crate::activity(rows))
        })
        .await
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError> {
        let query = query.clone();
        self.with_connection(move |connection| {
            let mut select = connection
                .prepare_cached(SELECT_PAGE)
                .map_err(sqlite_error("prepare history page"))?;
            let grep = query.grep.as_deref().map(like_pattern);
            let (after_at, after_id) = match &query.after {
                Some((at, id)) => (Some(millis(*at)), Some(id.clone())),
                None => (None, None),
            };
            let rows = select
                .query_map(
                    params![
                        query.platform,
                        query.conversation_id,
                        query.since.map(millis),
                        grep,
                        after_at,
                        after_id,
                        query.limit
                    ],
                    record,
                )
                .map_err(sqlite_error("select history page"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sqlite_error("read history row"))
        })
        .await
    }

    async fn delete_history_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = millis(before);
        self.with_connection(move |connection| {
            connection
                .execute("DELETE FROM messages WHERE created_at < ?1", [before])
                .map(|n| n as u64)
                .map_err(sqlite_error("delete history past retention"))
        })
        .await
    }
}
