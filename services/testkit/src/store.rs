//! A history store for one test, on either backend.

use std::path::PathBuf;
use std::sync::Arc;

use clawdbot_store::Store;
use clawdbot_store::sqlite::SqliteStore;

use crate::TestPostgres;

/// Which store implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    /// Postgres (the cluster store), in a schema of the test's own.
    Postgres,
    /// An SQLite file (the embedded store) in a directory of the test's own.
    Sqlite,
}

/// A store of one test's own, removed on drop.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub backend: StoreBackend,
    pub postgres: Option<TestPostgres>,
    /// The SQLite file, when the backend is SQLite.
    pub sqlite_path: Option<PathBuf>,
}

impl TestStore {
    /// Returns a fresh, migrated store on `backend`.
    ///
    /// # Panics
    /// The backend cannot be set up.
    pub async fn new(backend: StoreBackend) -> Self {
        match backend {
            StoreBackend::Postgres => {
                let postgres = TestPostgres::new().await;
                Self {
                    store: postgres.store.clone(),
                    backend,
                    postgres: Some(postgres),
                    sqlite_path: None,
                }
            }
            StoreBackend::Sqlite => {
                let path = std::env::temp_dir()
                    .join(format!("clawdbot-test-{}", crate::random_suffix()))
                    .join("history.db");
                let store = SqliteStore::open(&path)
                    .await
                    .unwrap_or_else(|error| panic!("sqlite at {}: {error:?}", path.display()));
                Self {
                    store: Arc::new(store),
                    backend,
                    postgres: None,
                    sqlite_path: Some(path),
                }
            }
        }
    }

    /// Opens the same SQLite file again (what a restarted process does).
    ///
    /// # Panics
    /// Not an SQLite store, or the file cannot be opened.
    pub async fn reopen_sqlite(&self) -> SqliteStore {
        let path = self
            .sqlite_path
            .as_ref()
            .unwrap_or_else(|| panic!("not an sqlite store"));
        SqliteStore::open(path)
            .await
            .unwrap_or_else(|error| panic!("reopen {}: {error:?}", path.display()))
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(dir) = self.sqlite_path.as_ref().and_then(|path| path.parent()) {
            let _removed = std::fs::remove_dir_all(dir);
        }
    }
}
