//! Log records in the SQLite file: one transaction per batch, time-bounded reads.

use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, from_millis, millis, sqlite_error};
use crate::{LogGroup, LogQuery, LogRecord, LogSummary, StoreError, like_pattern};

impl SqliteStore {
    pub(super) async fn insert_logs(&self, records: &[LogRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.with_connection(move |connection| {
            let tx = connection.transaction().map_err(sqlite_error("begin logs"))?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO logs (at, level, role, instance, platform, skill, error_type, message, fields, count)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(sqlite_error("prepare logs"))?;
                for r in &records {
                    insert
                        .execute(params![millis(r.at), r.level, r.role, r.instance, r.platform, r.skill, r.error_type, r.message, r.fields, r.count])
                        .map_err(sqlite_error("write logs"))?;
                }
            }
            tx.commit().map_err(sqlite_error("commit logs"))
        })
        .await
    }

    pub(super) async fn select_logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let query = query.clone();
        self.with_connection(move |connection| {
            // Levels are a closed set; bind them as one comma-joined string.
            let levels = format!(",{},", query.levels.join(","));
            let grep = query.grep.as_deref().map(like_pattern);
            let mut select = connection
                .prepare_cached(
                    "SELECT at, level, role, instance, platform, skill, error_type, message, fields, count FROM logs
                     WHERE at >= ?1 AND instr(?2, ',' || level || ',') > 0
                       AND (?3 IS NULL OR message LIKE ?3 ESCAPE '\\' OR fields LIKE ?3 ESCAPE '\\')
                       AND (?4 IS NULL OR platform = ?4)
                       AND (?5 IS NULL OR skill = ?5)
                     ORDER BY at DESC LIMIT ?6",
                )
                .map_err(sqlite_error("prepare log read"))?;
            let rows = select
                .query_map(
                    params![millis(query.since), levels, grep, query.platform, query.skill, query.limit],
                    |row| {
                        Ok(LogRecord {
                            at: from_millis(row.get(0)?),
                            level: row.get(1)?,
                            role: row.get(2)?,
                            instance: row.get(3)?,
                            platform: row.get(4)?,
                            skill: row.get(5)?,
                            error_type: row.get(6)?,
                            message: row.get(7)?,
                            fields: row.get(8)?,
                            count: row.get(9)?,
                        })
                    },
                )
                .map_err(sqlite_error("read logs"))?;
            rows.collect::<Result<_, _>>().map_err(sqlite_error("read log row"))
        })
        .await
    }

    pub(super) async fn summarize_logs(
        &self,
        group: LogGroup,
        since: OffsetDateTime,
    ) -> Result<Vec<LogSummary>, StoreError> {
        let since = millis(since);
        self.with_connection(move |connection| {
            // The column comes from the enum, never from input.
            let column = group.column();
            let sql = format!(
                "SELECT {column},
                        COALESCE(SUM(CASE WHEN level = 'ERROR' THEN count END), 0),
                        COALESCE(SUM(CASE WHEN level = 'WARN' THEN count END), 0),
                        COALESCE(SUM(count), 0)
                 FROM logs WHERE at >= ?1 AND {column} <> '' GROUP BY {column} ORDER BY 4 DESC, 1"
            );
            let mut select = connection
                .prepare(&sql)
                .map_err(sqlite_error("prepare log summary"))?;
            let rows = select
                .query_map([since], |row| {
                    Ok(LogSummary {
                        key: row.get(0)?,
                        errors: row.get(1)?,
                        warnings: row.get(2)?,
                        total: row.get(3)?,
                    })
                })
                .map_err(sqlite_error("summarize logs"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sqlite_error("read log summary"))
        })
        .await
    }

    pub(super) async fn delete_logs(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = millis(before);
        self.with_connection(move |connection| {
            connection
                .execute("DELETE FROM logs WHERE at < ?1", [before])
                .map(|n| n as u64)
                .map_err(sqlite_error("purge logs"))
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::LogStore for SqliteStore {
    async fn write_logs(&self, records: &[crate::LogRecord]) -> Result<(), StoreError> {
        self.insert_logs(records).await
    }

    async fn logs(&self, query: &crate::LogQuery) -> Result<Vec<crate::LogRecord>, StoreError> {
        self.select_logs(query).await
    }

    async fn log_summary(
        &self,
        group: crate::LogGroup,
        since: OffsetDateTime,
    ) -> Result<Vec<crate::LogSummary>, StoreError> {
        self.summarize_logs(group, since).await
    }

    async fn purge_logs(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_logs(before).await
    }
}
