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

#[async_trait::async_trait]
impl crate::SkillRegistry for PostgresStore {
    async fn register_skill(
        &self,
        name: &str,
        manifest_json: &str,
        loaded_by: &str,
    ) -> Result<(), StoreError> {
        self.register_version(name, manifest_json, loaded_by).await
    }

    async fn rollback_skill(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.step_back(name).await
    }

    async fn put_skill_component(&self, sha256: &str, component: &[u8]) -> Result<(), StoreError> {
        self.insert_component(sha256, component).await
    }

    async fn skill_component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.select_component(sha256).await
    }

    async fn registered_skills(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT name, manifest FROM skill_registry", &[])
            .await
            .map_err(|source| StoreError::Query {
                context: "select skill registry",
                source,
            })?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn skill_states(&self) -> Result<std::collections::BTreeMap<String, bool>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT name, enabled FROM skill_states", &[])
            .await
            .map_err(|source| StoreError::Query {
                context: "select skill states",
                source,
            })?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn set_skill_state(
        &self,
        name: &str,
        enabled: bool,
        changed_by: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO skill_states (name, enabled, changed_by) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by, changed_at = now()",
                &[&name, &enabled, &changed_by],
            )
            .await
            .map_err(|source| StoreError::Query { context: "set skill state", source })?;
        Ok(())
    }
}
