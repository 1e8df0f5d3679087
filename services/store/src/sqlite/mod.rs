//! History in an SQLite file (the embedded store): one connection behind a mutex, used from
//! blocking threads; WAL mode so readers never block the writer; each batch in one transaction.
//!
//! Durability: `synchronous = NORMAL` in WAL mode survives a crash of the process (what the
//! embedded mode guards against) but may lose the last transactions on a power cut.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

mod audit;
mod history;
mod logs;
mod secrets;
mod skill_versions;

use crate::{Store, StoreError};

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

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
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
