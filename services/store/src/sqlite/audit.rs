//! The audit trail: its switch and retention, records, purge.

use rusqlite::{OptionalExtension, params};

use time::OffsetDateTime;

use super::{SqliteStore, millis, sqlite_error};
use crate::StoreError;

#[async_trait::async_trait]
impl crate::AuditStore for SqliteStore {
    async fn audit_settings(&self) -> Result<Option<(bool, i32)>, StoreError> {
        self.with_connection(|connection| {
            connection
                .query_row(
                    "SELECT enabled, retention_days FROM audit_settings WHERE id = 1",
                    [],
                    |row| Ok((row.get::<_, i64>(0)? != 0, row.get::<_, i32>(1)?)),
                )
                .optional()
                .map_err(sqlite_error("audit settings"))
        })
        .await
    }

    async fn set_audit(&self, enabled: bool, retention_days: i32) -> Result<(), StoreError> {
        self.with_connection(move |connection| {
            connection
                .execute(
                    "INSERT INTO audit_settings (id, enabled, retention_days) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, retention_days = excluded.retention_days",
                    params![enabled, retention_days],
                )
                .map_err(sqlite_error("set audit"))?;
            Ok(())
        })
        .await
    }

    async fn record_audit(&self, records: &[crate::AuditRecord]) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.with_connection(move |connection| {
            let tx = connection.transaction().map_err(sqlite_error("begin audit"))?;
            {
                let mut insert = tx
                    .prepare_cached("INSERT INTO audit (at, actor, action, target, decision, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                    .map_err(sqlite_error("prepare audit"))?;
                for r in &records {
                    insert
                        .execute(params![millis(r.at), r.actor, r.action, r.target, r.decision, r.reason])
                        .map_err(sqlite_error("record audit"))?;
                }
            }
            tx.commit().map_err(sqlite_error("commit audit"))
        })
        .await
    }

    async fn audit_records(&self, limit: i64) -> Result<Vec<crate::AuditRecord>, StoreError> {
        self.with_connection(move |connection| {
            let mut select = connection
                .prepare_cached("SELECT at, actor, action, target, decision, reason FROM audit ORDER BY at DESC LIMIT ?1")
                .map_err(sqlite_error("prepare audit read"))?;
            let rows = select
                .query_map([limit], |row| {
                    let at: i64 = row.get(0)?;
                    Ok(crate::AuditRecord {
                        at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                        actor: row.get(1)?,
                        action: row.get(2)?,
                        target: row.get(3)?,
                        decision: row.get(4)?,
                        reason: row.get(5)?,
                    })
                })
                .map_err(sqlite_error("read audit"))?;
            rows.collect::<Result<_, _>>().map_err(sqlite_error("read audit row"))
        })
        .await
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = millis(before);
        self.with_connection(move |connection| {
            connection
                .execute("DELETE FROM audit WHERE at < ?1", [before])
                .map(|n| n as u64)
                .map_err(sqlite_error("purge audit"))
        })
        .await
    }
}
