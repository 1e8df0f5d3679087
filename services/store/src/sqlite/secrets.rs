//! Sealed secrets in the SQLite file.

use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, from_millis, millis, sqlite_error};
use crate::{SecretRecord, StoreError};

impl SqliteStore {
    pub(super) async fn upsert_secret(&self, r: &SecretRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.with_connection(move |connection| {
            connection
                .execute(
                    "INSERT INTO secrets (name, kind, scope, key_id, sealed, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, scope = excluded.scope,
                       key_id = excluded.key_id, sealed = excluded.sealed,
                       created_at = excluded.created_at, expires_at = excluded.expires_at",
                    params![
                        r.name,
                        r.kind,
                        r.scope,
                        r.key_id,
                        r.sealed,
                        millis(r.created_at),
                        r.expires_at.map(millis)
                    ],
                )
                .map_err(sqlite_error("write secret"))?;
            Ok(())
        })
        .await
    }

    pub(super) async fn select_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        self.with_connection(|connection| {
            let mut select = connection
                .prepare_cached(
                    "SELECT name, kind, scope, key_id, sealed, created_at, expires_at
                     FROM secrets ORDER BY name",
                )
                .map_err(sqlite_error("prepare secrets read"))?;
            let rows = select
                .query_map([], |row| {
                    Ok(SecretRecord {
                        name: row.get(0)?,
                        kind: row.get(1)?,
                        scope: row.get(2)?,
                        key_id: row.get(3)?,
                        sealed: row.get(4)?,
                        created_at: from_millis(row.get(5)?),
                        expires_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
                    })
                })
                .map_err(sqlite_error("read secrets"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sqlite_error("read secrets"))
        })
        .await
    }

    pub(super) async fn compare_and_reseal(
        &self,
        name: &str,
        expected: &[u8],
        key_id: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let (name, expected, key_id, sealed) = (
            name.to_string(),
            expected.to_vec(),
            key_id.to_string(),
            sealed.to_vec(),
        );
        self.with_connection(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE secrets SET key_id = ?3, sealed = ?4 WHERE name = ?1 AND sealed = ?2",
                    params![name, expected, key_id, sealed],
                )
                .map_err(sqlite_error("reseal secret"))?;
            Ok(changed == 1)
        })
        .await
    }

    pub(super) async fn remove_secret(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with_connection(move |connection| {
            let removed = connection
                .execute("DELETE FROM secrets WHERE name = ?1", params![name])
                .map_err(sqlite_error("delete secret"))?;
            Ok(removed == 1)
        })
        .await
    }

    pub(super) async fn remove_expired_secrets(
        &self,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.with_connection(move |connection| {
            let removed = connection
                .execute(
                    "DELETE FROM secrets WHERE expires_at <= ?1",
                    params![millis(now)],
                )
                .map_err(sqlite_error("purge expired secrets"))?;
            Ok(removed as u64)
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::SecretStore for SqliteStore {
    async fn put_secret(&self, record: &crate::SecretRecord) -> Result<(), StoreError> {
        self.upsert_secret(record).await
    }

    async fn secrets(&self) -> Result<Vec<crate::SecretRecord>, StoreError> {
        self.select_secrets().await
    }

    async fn reseal_secret(
        &self,
        name: &str,
        expected: &[u8],
        key_id: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        self.compare_and_reseal(name, expected, key_id, sealed)
            .await
    }

    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_secret(name).await
    }

    async fn purge_expired_secrets(&self, now: time::OffsetDateTime) -> Result<u64, StoreError> {
        self.remove_expired_secrets(now).await
    }
}
