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
    /// History on MongoDB (a database of the test's own on [`mongodb_url`]), the rest on an
    /// SQLite file: the `storage: {type: mongodb}` split.
    Mongo,
    /// History on a `HistorySink` (`storage: {type: custom}`), the rest on an SQLite file: the
    /// example sink of `examples/history-sink-rust`, served over gRPC for the test alone, or
    /// the user's own at `CLAWDBOT_TEST_HISTORY_SINK` (a test instance: each case empties it
    /// first; run one case at a time).
    Sink,
}

/// The example sink (`examples/history-sink-rust`): the contract suite runs against it.
#[path = "../../../examples/history-sink-rust/src/memory.rs"]
mod example_sink;

/// The sink a test's history goes to: `CLAWDBOT_TEST_HISTORY_SINK`, else a fresh example
/// sink (see [`example_history_sink`]).
pub fn history_sink() -> String {
    std::env::var("CLAWDBOT_TEST_HISTORY_SINK").unwrap_or_else(|_| example_history_sink())
}

/// Serves a fresh in-memory example sink on a free port, on a thread and runtime of its own
/// (so that it answers clawdbot processes while the test blocks), for the rest of the test
/// process; returns its endpoint.
///
/// # Panics
/// No port or thread could be had.
pub fn example_history_sink() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the example sink");
    let address = listener.local_addr().expect("its address");
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::Builder::new()
        .name("example-history-sink".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the example sink");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let _ended = tonic::transport::Server::builder()
                    .add_service(clawdbot_history_sink::service(
                        example_sink::MemoryHistory::default(),
                    ))
                    .serve_with_incoming(incoming)
                    .await;
            });
        })
        .expect("the example sink's thread");
    format!("http://{address}")
}

/// The MongoDB-protocol server tests use: `CLAWDBOT_TEST_MONGODB_URL`, or SecantusDB as the
/// test command starts it (`mongodb://127.0.0.1:27017`).
pub fn mongodb_url() -> String {
    std::env::var("CLAWDBOT_TEST_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".to_string())
}

/// A store of one test's own, removed on drop.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub backend: StoreBackend,
    pub postgres: Option<TestPostgres>,
    /// The SQLite file, when the backend is SQLite (or holds the rest beside MongoDB).
    pub sqlite_path: Option<PathBuf>,
    /// Where the MongoDB history is, dropped with the test.
    pub mongo: Option<clawdbot_store::mongo::MongoSettings>,
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
                    mongo: None,
                }
            }
            StoreBackend::Sqlite => {
                let (sqlite, path) = temp_sqlite().await;
                Self {
                    store: Arc::new(sqlite),
                    backend,
                    postgres: None,
                    sqlite_path: Some(path),
                    mongo: None,
                }
            }
            StoreBackend::Mongo => {
                let (sqlite, path) = temp_sqlite().await;
                let settings = clawdbot_store::mongo::MongoSettings {
                    uri: mongodb_url(),
                    write_concern: "majority".into(),
                    database: format!("t_{}", crate::random_suffix()),
                    pool_size: 4,
                    timeout: std::time::Duration::from_secs(5),
                };
                let history = clawdbot_store::mongo::MongoHistory::connect(&settings)
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "MongoDB at {} (start SecantusDB: scripts/services-up): {error:?}",
                            settings.uri
                        )
                    });
                let store = clawdbot_store::split::SplitStore::mongo(history, Arc::new(sqlite));
                Self {
                    store: Arc::new(store),
                    backend,
                    postgres: None,
                    sqlite_path: Some(path),
                    mongo: Some(settings),
                }
            }
            StoreBackend::Sink => {
                let (sqlite, path) = temp_sqlite().await;
                let endpoint = history_sink();
                let history = clawdbot_store::sink::SinkHistory::connect(
                    &endpoint,
                    std::time::Duration::from_secs(5),
                )
                .await
                .unwrap_or_else(|error| panic!("history sink at {endpoint}: {error:?}"));
                // Each case starts from an empty history (a user's sink is shared by the cases,
                // run one at a time).
                let far_future = time::OffsetDateTime::now_utc() + time::Duration::days(36_500);
                clawdbot_store::HistoryStore::delete_history_before(&history, far_future)
                    .await
                    .unwrap_or_else(|error| panic!("emptying the sink at {endpoint}: {error:?}"));
                let store = clawdbot_store::split::SplitStore::sink(history, Arc::new(sqlite));
                Self {
                    store: Arc::new(store),
                    backend,
                    postgres: None,
                    sqlite_path: Some(path),
                    mongo: None,
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

/// A fresh SQLite store in a directory of its own.
async fn temp_sqlite() -> (SqliteStore, PathBuf) {
    let path = std::env::temp_dir()
        .join(format!("clawdbot-test-{}", crate::random_suffix()))
        .join("history.db");
    let store = SqliteStore::open(&path)
        .await
        .unwrap_or_else(|error| panic!("sqlite at {}: {error:?}", path.display()));
    (store, path)
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(settings) = self.mongo.take() {
            // A client of its own: the test's client lives on the test's runtime, which is
            // blocked here, so using it would wait for ever.
            crate::block_on_side(async move {
                if let Ok(history) = clawdbot_store::mongo::MongoHistory::connect(&settings).await {
                    let _dropped = history.drop_database().await;
                }
            });
        }
        if let Some(dir) = self.sqlite_path.as_ref().and_then(|path| path.parent()) {
            let _removed = std::fs::remove_dir_all(dir);
        }
    }
}
