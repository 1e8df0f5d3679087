//! History: writes in batches, a conversation read back, skill activity.

use super::PostgresStore;
use crate::{Direction, HistoryQuery, HistoryRecord, StoreError, like_pattern};

const INSERT_BATCH: &str =
    "INSERT INTO messages (id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
    $14::bytea[], $15::timestamptz[])
ON CONFLICT DO NOTHING";

const SELECT_CONVERSATION: &str = "SELECT id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at
FROM (SELECT * FROM messages WHERE platform = $1 AND bot_id = $2 AND conversation_id = $3
      ORDER BY created_at DESC LIMIT $4) recent
ORDER BY created_at, direction";

const SELECT_PAGE: &str = "SELECT id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at
FROM messages
WHERE ($1::text IS NULL OR platform = $1)
  AND ($2::text IS NULL OR conversation_id = $2)
  AND ($3::timestamptz IS NULL OR created_at >= $3)
  AND ($4::text IS NULL OR text ILIKE $4)
  AND ($5::timestamptz IS NULL OR (created_at, id) > ($5, $6::text))
ORDER BY created_at, id
LIMIT $7";

fn record(row: &tokio_postgres::Row) -> HistoryRecord {
    HistoryRecord {
        id: row.get(0),
        direction: if row.get::<_, &str>(1) == "in" {
            Direction::In
        } else {
            Direction::Out
        },
        platform: row.get(2),
        bot_id: row.get(3),
        conversation_kind: row.get(4),
        conversation_id: row.get(5),
        sender_id: row.get(6),
        platform_message_id: row.get(7),
        event_type: row.get(8),
        skill: row.get(9),
        in_reply_to: row.get(10),
        status: row.get(11),
        text: row.get(12),
        payload: row.get(13),
        created_at: row.get(14),
    }
}

#[async_trait::async_trait]
impl crate::HistoryStore for PostgresStore {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        super::partitions::ensure_for(&client, &self.known_partitions, records).await?;
        let column = |f: fn(&HistoryRecord) -> &str| {
            records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
        };
        let ids = column(|r| &r.id);
        let directions = column(|r| r.direction.as_str());
        let platforms = column(|r| &r.platform);
        let bots = column(|r| &r.bot_id);
        let kinds = column(|r| &r.conversation_kind);
        let conversations = column(|r| &r.conversation_id);
        let senders = column(|r| &r.sender_id);
        let message_ids = column(|r| &r.platform_message_id);
        let event_types = column(|r| &r.event_type);
        let skills = column(|r| &r.skill);
        let in_reply_to = column(|r| &r.in_reply_to);
        let statuses = column(|r| &r.status);
        let texts = column(|r| &r.text);
        let payloads: Vec<&[u8]> = records.iter().map(|r| r.payload.as_slice()).collect();
        let created: Vec<time::OffsetDateTime> = records.iter().map(|r| r.created_at).collect();
        client
            .execute(
                INSERT_BATCH,
                &[
                    &ids,
                    &directions,
                    &platforms,
                    &bots,
                    &kinds,
                    &conversations,
                    &senders,
                    &message_ids,
                    &event_types,
                    &skills,
                    &in_reply_to,
                    &statuses,
                    &texts,
                    &payloads,
                    &created,
                ],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "insert history batch",
                source,
            })
    }

    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                SELECT_CONVERSATION,
                &[&platform, &bot_id, &conversation_id, &limit],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "select conversation",
                source,
            })?;
        Ok(rows.iter().map(record).collect())
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError> {
        let client = self.client().await?;
        let grep = query.grep.as_deref().map(like_pattern);
        let (after_at, after_id) = match &query.after {
            Some((at, id)) => (Some(*at), Some(id.clone())),
            None => (None, None),
        };
        let rows = client
            .query(
                SELECT_PAGE,
                &[
                    &query.platform,
                    &query.conversation_id,
                    &query.since,
                    &grep,
                    &after_at,
                    &after_id,
                    &query.limit,
                ],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "select history page",
                source,
            })?;
        Ok(rows.iter().map(record).collect())
    }

    async fn delete_history_before(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM messages WHERE created_at < $1", &[&before])
            .await
            .map_err(|source| StoreError::Query {
                context: "delete history past retention",
                source,
            })
    }

    async fn skill_activity(
        &self,
        since: time::OffsetDateTime,
    ) -> Result<Vec<crate::SkillActivity>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT o.skill, extract(epoch FROM o.created_at - i.created_at)::float8 * 1000
                 FROM messages o LEFT JOIN messages i ON i.id = o.in_reply_to AND i.direction = 'in'
                 WHERE o.direction = 'out' AND o.created_at >= $1 AND o.skill <> ''",
                &[&since],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "skill activity",
                source,
            })?;
        Ok(crate::activity(rows.iter().map(|row| {
            (row.get::<_, String>(0), row.get::<_, Option<f64>>(1))
        })))
    }
}
