//! Loaded skills on Postgres: the registry workers poll, its history, and components.

use super::PostgresStore;
use crate::StoreError;

fn query_error(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

impl PostgresStore {
    pub(super) async fn register_version(
        &self,
        name: &str,
        manifest: &str,
        loaded_by: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(query_error("begin register skill"))?;
        tx.execute(
            "INSERT INTO skill_registry (name, manifest, loaded_by) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET manifest = excluded.manifest,
               loaded_by = excluded.loaded_by, loaded_at = now()",
            &[&name, &manifest, &loaded_by],
        )
        .await
        .map_err(query_error("register skill"))?;
        tx.execute(
            "INSERT INTO skill_registry_history (name, manifest, loaded_by) VALUES ($1, $2, $3)",
            &[&name, &manifest, &loaded_by],
        )
        .await
        .map_err(query_error("record skill version"))?;
        tx.commit()
            .await
            .map_err(query_error("commit register skill"))
    }

    pub(super) async fn step_back(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(query_error("begin rollback"))?;
        // The two newest versions, locked so two rollbacks at once step back twice, not once.
        let rows = tx
            .query(
                "SELECT id, manifest FROM skill_registry_history WHERE name = $1
                 ORDER BY id DESC LIMIT 2 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(query_error("read skill versions"))?;
        if rows.len() < 2 {
            return Ok(None);
        }
        let newest: i64 = rows[0].get(0);
        let previous: String = rows[1].get(1);
        tx.execute(
            "DELETE FROM skill_registry_history WHERE id = $1",
            &[&newest],
        )
        .await
        .map_err(query_error("drop skill version"))?;
        tx.execute(
            "UPDATE skill_registry SET manifest = $2, loaded_at = now() WHERE name = $1",
            &[&name, &previous],
        )
        .await
        .map_err(query_error("restore skill version"))?;
        tx.commit().await.map_err(query_error("commit rollback"))?;
        Ok(Some(previous))
    }

    pub(super) async fn insert_component(
        &self,
        sha256: &str,
        component: &[u8],
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO skill_components (sha256, component) VALUES ($1, $2)
                 ON CONFLICT (sha256) DO NOTHING",
                &[&sha256, &component],
            )
            .await
            .map_err(query_error("store component"))?;
        Ok(())
    }

    pub(super) async fn select_component(
        &self,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT component FROM skill_components WHERE sha256 = $1",
                &[&sha256],
            )
            .await
            .map_err(query_error("read component"))?;
        Ok(row.map(|row| row.get(0)))
    }
}
