//! History in an SQLite file (the embedded store): one connection behind a mutex, used from
//! blocking threads; WAL mode so readers never block the writer; each batch in one transaction.
//!
//! Durability: `synchronous = NORMAL` in WAL mode survives a crash of the process (what the
//! embedded mode guards against) but may lose the last transactions on a power cut.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

mod logs;
mod secrets;
mod skill_versions;

use crate::{Direction, HistoryRecord, Store, StoreError};

/// The migrations, in order. Append only.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("schema.sql")),
    (2, include_str!("skill_states.sql")),
    (3, include_str!("skill_registry.sql")),
    (4, include_str!("audit.sql")),
    (5, include_str!("logs.sql")),
    (6, include_str!("secrets.sql")),
    (7, include_str!("skill_versions.sql")),
];

/// The history store in one SQLite file.
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn sqlite_error(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { context, source }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path`, creating its directory, and runs the
    /// migrations.
    ///
    /// # Errors
    /// The file cannot be created or opened, or is not an SQLite database.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || open_blocking(&path).map(|c| (c, path)))
            .await
            .map_err(|error| StoreError::Pool(format!("sqlite open task: {error}")))??;
        let (connection, path) = opened;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    /// Returns the database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with_connection<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Pool(format!("sqlite task: {error}")))?
    }
}

fn open_blocking(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::InvalidUrl {
            url: path.display().to_string(),
            reason: format!("cannot create directory `{}`: {error}", dir.display()),
        })?;
    }
    let mut connection = Connection::open(path).map_err(sqlite_error("open database"))?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(sqlite_error("configure database"))?;
    migrate(&mut connection)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection
        .transaction()
        .map_err(sqlite_error("begin migrations"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS clawdbot_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .map_err(sqlite_error("create clawdbot_migrations"))?;
    for (version, sql) in MIGRATIONS {
        let applied: Option<i32> = tx
            .query_row(
                "SELECT version FROM clawdbot_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite_error("read clawdbot_migrations"))?;
        if applied.is_some() {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(sqlite_error("apply migration"))?;
        tx.execute(
            "INSERT INTO clawdbot_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, clawdbot_core::now_ms()],
        )
        .map_err(sqlite_error("record migration"))?;
        tracing::info!(version, "migration applied");
    }
    tx.commit().map_err(sqlite_error("commit migrations"))
}

const INSERT: &str =
    "INSERT OR IGNORE INTO messages (id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

const SELECT_CONVERSATION: &str = "SELECT id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at
FROM (SELECT * FROM messages WHERE platform = ?1 AND bot_id = ?2 AND conversation_id = ?3
      ORDER BY created_at DESC LIMIT ?4)
ORDER BY created_at, direction";

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[async_trait::async_trait]
impl crate::HistoryStore for SqliteStore {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let records = records.to_vec();
        self.with_connection(move |connection| {
            let tx = connection
                .transaction()
                .map_err(sqlite_error("begin history batch"))?;
            let mut written = 0;
            {
                let mut insert = tx
                    .prepare_cached(INSERT)
                    .map_err(sqlite_error("prepare history insert"))?;
                for r in &records {
                    written += insert
                        .execute(params![
                            r.id,
                            r.direction.as_str(),
                            r.platform,
                            r.bot_id,
                            r.conversation_kind,
                            r.conversation_id,
                            r.sender_id,
                            r.platform_message_id,
                            r.event_type,
                            r.skill,
                            r.in_reply_to,
                            r.status,
                            r.text,
                            r.payload,
                            millis(r.created_at),
                        ])
                        .map_err(sqlite_error("insert history row"))?
                        as u64;
                }
            }
            tx.commit().map_err(sqlite_error("commit history batch"))?;
            Ok(written)
        })
        .await
    }

    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let (platform, bot_id, conversation_id) = (
            platform.to_string(),
            bot_id.to_string(),
            conversation_id.to_string(),
        );
        self.with_connection(move |connection| {
            let mut select = connection
                .prepare_cached(SELECT_CONVERSATION)
                .map_err(sqlite_error("prepare conversation"))?;
            let rows = select
                .query_map(params![platform, bot_id, conversation_id, limit], |row| {
                    let created_ms: i64 = row.get(14)?;
                    Ok(HistoryRecord {
                        id: row.get(0)?,
                        direction: if row.get::<_, String>(1)? == "in" {
                            Direction::In
                        } else {
                            Direction::Out
                        },
                        platform: row.get(2)?,
                        bot_id: row.get(3)?,
                        conversation_kind: row.get(4)?,
                        conversation_id: row.get(5)?,
                        sender_id: row.get(6)?,
                        platform_message_id: row.get(7)?,
                        event_type: row.get(8)?,
                        skill: row.get(9)?,
                        in_reply_to: row.get(10)?,
                        status: row.get(11)?,
                        text: row.get(12)?,
                        payload: row.get(13)?,
                        created_at: OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(created_ms) * 1_000_000,
                        )
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    })
                })
                .map_err(sqlite_error("select conversation"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sqlite_error("read conversation row"))
        })
        .await
    }

    async fn skill_activity(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<crate::SkillActivity>, StoreError> {
        let since = millis(since);
        self.with_connection(move |connection| {
            let mut select = connection
                .prepare_cached(
                    "SELECT o.skill, o.created_at - i.created_at
                     FROM messages o LEFT JOIN messages i ON i.id = o.in_reply_to AND i.direction = 'in'
                     WHERE o.direction = 'out' AND o.created_at >= ?1 AND o.skill <> ''",
                )
                .map_err(sqlite_error("prepare skill activity"))?;
            let rows = select
                .query_map([since], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<i64>>(1)?.map(|ms| ms as f64))))
                .map_err(sqlite_error("select skill activity"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sqlite_error("read skill activity"))?;
            Ok(crate::activity(rows))
        })
        .await
    }
}

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

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.with_connection(|connection| {
            connection
                .query_row("SELECT 1", [], |_| Ok(()))
                .map_err(sqlite_error("ping"))
        })
        .await
    }
}
