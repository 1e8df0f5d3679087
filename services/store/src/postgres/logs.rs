//! Log records on Postgres: batched UNNEST inserts, time-bounded reads.

use time::OffsetDateTime;

use super::PostgresStore;
use crate::{LogGroup, LogQuery, LogRecord, LogSummary, StoreError, like_pattern};

fn query_error(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

impl PostgresStore {
    pub(super) async fn insert_logs(&self, records: &[LogRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let text = |f: fn(&LogRecord) -> &str| {
            records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
        };
        let at: Vec<OffsetDateTime> = records.iter().map(|r| r.at).collect();
        let count: Vec<i64> = records.iter().map(|r| r.count).collect();
        client
            .execute(
                "INSERT INTO logs (at, level, role, instance, platform, skill, error_type, message, fields, count)
                 SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])",
                &[
                    &at,
                    &text(|r| &r.level),
                    &text(|r| &r.role),
                    &text(|r| &r.instance),
                    &text(|r| &r.platform),
                    &text(|r| &r.skill),
                    &text(|r| &r.error_type),
                    &text(|r| &r.message),
                    &text(|r| &r.fields),
                    &count,
                ],
            )
            .await
            .map_err(query_error("write logs"))?;
        Ok(())
    }

    pub(super) async fn select_logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let client = self.client().await?;
        let grep = query.grep.as_deref().map(like_pattern);
        let rows = client
            .query(
                "SELECT at, level, role, instance, platform, skill, error_type, message, fields, count FROM logs
                 WHERE at >= $1 AND level = ANY($2)
                   AND ($3::text IS NULL OR message ILIKE $3 OR fields ILIKE $3)
                   AND ($4::text IS NULL OR platform = $4)
                   AND ($5::text IS NULL OR skill = $5)
                 ORDER BY at DESC LIMIT $6",
                &[&query.since, &query.levels, &grep, &query.platform, &query.skill, &query.limit],
            )
            .await
            .map_err(query_error("read logs"))?;
        Ok(rows
            .iter()
            .map(|row| LogRecord {
                at: row.get(0),
                level: row.get(1),
                role: row.get(2),
                instance: row.get(3),
                platform: row.get(4),
                skill: row.get(5),
                error_type: row.get(6),
                message: row.get(7),
                fields: row.get(8),
                count: row.get(9),
            })
            .collect())
    }

    pub(super) async fn summarize_logs(
        &self,
        group: LogGroup,
        since: OffsetDateTime,
    ) -> Result<Vec<LogSummary>, StoreError> {
        let client = self.client().await?;
        // The column comes from the enum, never from input.
        let column = group.column();
        let sql = format!(
            "SELECT {column},
                    COALESCE(sum(count) FILTER (WHERE level = 'ERROR'), 0)::bigint,
                    COALESCE(sum(count) FILTER (WHERE level = 'WARN'), 0)::bigint,
                    COALESCE(sum(count), 0)::bigint
             FROM logs WHERE at >= $1 AND {column} <> '' GROUP BY {column} ORDER BY 4 DESC, 1"
        );
        let rows = client
            .query(&sql, &[&since])
            .await
            .map_err(query_error("summarize logs"))?;
        Ok(rows
            .iter()
            .map(|row| LogSummary {
                key: row.get(0),
                errors: row.get(1),
                warnings: row.get(2),
                total: row.get(3),
            })
            .collect())
    }

    pub(super) async fn delete_logs(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM logs WHERE at < $1", &[&before])
            .await
            .map_err(query_error("purge logs"))
    }
}

#[async_trait::async_trait]
impl crate::LogStore for PostgresStore {
    async fn write_logs(&self, records: &[crate::LogRecord]) -> Result<(), StoreError> {
        self.insert_logs(records).await
    }

    async fn logs(&self, query: &crate::LogQuery) -> Result<Vec<crate::LogRecord>, StoreError> {
        self.select_logs(query).await
    }

    async fn log_summary(
        &self,
        group: crate::LogGroup,
        since: time::OffsetDateTime,
    ) -> Result<Vec<crate::LogSummary>, StoreError> {
        self.summarize_logs(group, since).await
    }

    async fn purge_logs(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_logs(before).await
    }
}
