//! The audit trail: its switch and retention, records, purge.

use super::PostgresStore;
use crate::StoreError;

#[async_trait::async_trait]
impl crate::AuditStore for PostgresStore {
    async fn audit_settings(&self) -> Result<Option<(bool, i32)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT enabled, retention_days FROM audit_settings WHERE id = 1",
                &[],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "audit settings",
                source,
            })?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn set_audit(&self, enabled: bool, retention_days: i32) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO audit_settings (id, enabled, retention_days) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, retention_days = excluded.retention_days",
                &[&enabled, &retention_days],
            )
            .await
            .map_err(|source| StoreError::Query { context: "set audit", source })?;
        Ok(())
    }

    async fn record_audit(&self, records: &[crate::AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let column = |f: fn(&crate::AuditRecord) -> &str| {
            records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
        };
        let at: Vec<time::OffsetDateTime> = records.iter().map(|r| r.at).collect();
        client
            .execute(
                "INSERT INTO audit (at, actor, action, target, decision, reason)
                 SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])",
                &[&at, &column(|r| &r.actor), &column(|r| &r.action), &column(|r| &r.target), &column(|r| &r.decision), &column(|r| &r.reason)],
            )
            .await
            .map_err(|source| StoreError::Query { context: "record audit", source })?;
        Ok(())
    }

    async fn audit_records(&self, limit: i64) -> Result<Vec<crate::AuditRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT at, actor, action, target, decision, reason FROM audit ORDER BY at DESC LIMIT $1", &[&limit])
            .await
            .map_err(|source| StoreError::Query { context: "read audit", source })?;
        Ok(rows
            .iter()
            .map(|row| crate::AuditRecord {
                at: row.get(0),
                actor: row.get(1),
                action: row.get(2),
                target: row.get(3),
                decision: row.get(4),
                reason: row.get(5),
            })
            .collect())
    }

    async fn purge_audit(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM audit WHERE at < $1", &[&before])
            .await
            .map_err(|source| StoreError::Query {
                context: "purge audit",
                source,
            })
    }
}
