//! Loaded skills in the SQLite file: the registry, its history, and components.

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sqlite_error};
use crate::StoreError;

impl SqliteStore {
    pub(super) async fn register_version(
        &self,
        name: &str,
        manifest: &str,
        loaded_by: &str,
    ) -> Result<(), StoreError> {
        let (name, manifest, loaded_by) = (
            name.to_string(),
            manifest.to_string(),
            loaded_by.to_string(),
        );
        self.with_connection(move |connection| {
            let tx = connection
                .transaction()
                .map_err(sqlite_error("begin register skill"))?;
            let now = clawdbot_core::now_ms();
            tx.execute(
                "INSERT INTO skill_registry (name, manifest, loaded_by, loaded_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET manifest = excluded.manifest,
                   loaded_by = excluded.loaded_by, loaded_at = excluded.loaded_at",
                params![name, manifest, loaded_by, now],
            )
            .map_err(sqlite_error("register skill"))?;
            tx.execute(
                "INSERT INTO skill_registry_history (name, manifest, loaded_by, loaded_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![name, manifest, loaded_by, now],
            )
            .map_err(sqlite_error("record skill version"))?;
            tx.commit().map_err(sqlite_error("commit register skill"))
        })
        .await
    }

    pub(super) async fn step_back(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_string();
        self.with_connection(move |connection| {
            let tx = connection
                .transaction()
                .map_err(sqlite_error("begin rollback"))?;
            let rows: Vec<(i64, String)> = {
                let mut select = tx
                    .prepare(
                        "SELECT id, manifest FROM skill_registry_history WHERE name = ?1
                         ORDER BY id DESC LIMIT 2",
                    )
                    .map_err(sqlite_error("prepare skill versions"))?;
                let rows = select
                    .query_map(params![name], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(sqlite_error("read skill versions"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(sqlite_error("read skill versions"))?
            };
            let [(newest, _), (_, previous)] = rows.as_slice() else {
                return Ok(None);
            };
            tx.execute(
                "DELETE FROM skill_registry_history WHERE id = ?1",
                params![newest],
            )
            .map_err(sqlite_error("drop skill version"))?;
            tx.execute(
                "UPDATE skill_registry SET manifest = ?2, loaded_at = ?3 WHERE name = ?1",
                params![name, previous, clawdbot_core::now_ms()],
            )
            .map_err(sqlite_error("restore skill version"))?;
            let previous = previous.clone();
            tx.commit().map_err(sqlite_error("commit rollback"))?;
            Ok(Some(previous))
        })
        .await
    }

    pub(super) async fn insert_component(
        &self,
        sha256: &str,
        component: &[u8],
    ) -> Result<(), StoreError> {
        let (sha256, component) = (sha256.to_string(), component.to_vec());
        self.with_connection(move |connection| {
            connection
                .execute(
                    "INSERT INTO skill_components (sha256, component, stored_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (sha256) DO NOTHING",
                    params![sha256, component, clawdbot_core::now_ms()],
                )
                .map_err(sqlite_error("store component"))?;
            Ok(())
        })
        .await
    }

    pub(super) async fn select_component(
        &self,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sha256 = sha256.to_string();
        self.with_connection(move |connection| {
            connection
                .query_row(
                    "SELECT component FROM skill_components WHERE sha256 = ?1",
                    params![sha256],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sqlite_error("read component"))
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::SkillRegistry for SqliteStore {
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
        self.with_connection(|connection| {
            let mut select = connection
                .prepare_cached("SELECT name, manifest FROM skill_registry")
                .map_err(sqlite_error("prepare skill registry"))?;
            let rows = select
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(sqlite_error("select skill registry"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sqlite_error("read skill registry"))
        })
        .await
    }

    async fn skill_states(&self) -> Result<std::collections::BTreeMap<String, bool>, StoreError> {
        self.with_connection(|connection| {
            let mut select = connection
                .prepare_cached("SELECT name, enabled FROM skill_states")
                .map_err(sqlite_error("prepare skill states"))?;
            let rows = select
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? != 0))
                })
                .map_err(sqlite_error("select skill states"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sqlite_error("read skill state"))
        })
        .await
    }

    async fn set_skill_state(
        &self,
        name: &str,
        enabled: bool,
        changed_by: &str,
    ) -> Result<(), StoreError> {
        let (name, changed_by) = (name.to_string(), changed_by.to_string());
        self.with_connection(move |connection| {
            connection
                .execute(
                    "INSERT INTO skill_states (name, enabled, changed_by, changed_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by, changed_at = excluded.changed_at",
                    params![name, enabled, changed_by, clawdbot_core::now_ms()],
                )
                .map_err(sqlite_error("set skill state"))?;
            Ok(())
        })
        .await
    }
}
