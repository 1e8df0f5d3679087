//! Sealed secrets on Postgres.

use time::OffsetDateTime;

use super::PostgresStore;
use crate::{SecretRecord, StoreError};

fn query_error(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

impl PostgresStore {
    pub(super) async fn upsert_secret(&self, r: &SecretRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO secrets (name, kind, scope, key_id, sealed, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, scope = EXCLUDED.scope,
                   key_id = EXCLUDED.key_id, sealed = EXCLUDED.sealed,
                   created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
                &[
                    &r.name,
                    &r.kind,
                    &r.scope,
                    &r.key_id,
                    &r.sealed,
                    &r.created_at,
                    &r.expires_at,
                ],
            )
            .await
            .map_err(query_error("write secret"))?;
        Ok(())
    }

    pub(super) async fn select_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, kind, scope, key_id, sealed, created_at, expires_at
                 FROM secrets ORDER BY name",
                &[],
            )
            .await
            .map_err(query_error("read secrets"))?;
        Ok(rows
            .iter()
            .map(|row| SecretRecord {
                name: row.get(0),
                kind: row.get(1),
                scope: row.get(2),
                key_id: row.get(3),
                sealed: row.get(4),
                created_at: row.get(5),
                expires_at: row.get(6),
            })
            .collect())
    }

    pub(super) async fn compare_and_reseal(
        &self,
        name: &str,
        expected: &[u8],
        key_id: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE secrets SET key_id = $3, sealed = $4 WHERE name = $1 AND sealed = $2",
                &[&name, &expected, &key_id, &sealed],
            )
            .await
            .map_err(query_error("reseal secret"))?;
        Ok(changed == 1)
    }

    pub(super) async fn remove_secret(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute("DELETE FROM secrets WHERE name = $1", &[&name])
            .await
            .map_err(query_error("delete secret"))?;
        Ok(removed == 1)
    }

    pub(super) async fn remove_expired_secrets(
        &self,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM secrets WHERE expires_at <= $1", &[&now])
            .await
            .map_err(query_error("purge expired secrets"))
    }
}

#[async_trait::async_trait]
impl crate::SecretStore for PostgresStore {
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
