//! History on Postgres: a connection pool whose connections all use one schema, migrations
//! under an advisory lock (several processes start at once), and batched writes.

mod audit;
mod history;
mod logs;
mod migrate;
mod partitions;
mod secrets;
mod skill_versions;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::{Store, StoreError};

/// The history store on Postgres.
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    /// Month partitions known to exist, so that the writer checks each month once per process.
    known_partitions: Mutex<HashSet<String>>,
}

impl PostgresStore {
    /// Connects to `url` with every connection's `search_path` set to `schema`, creating the
    /// database and the schema when missing, and runs the migrations.
    ///
    /// # Errors
    /// An invalid URL, an unreachable server, or a failed migration.
    pub async fn connect(url: &str, schema: &str, pool_size: usize) -> Result<Self, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|error| StoreError::InvalidUrl {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        migrate::create_database_if_missing(&config).await?;
        migrate::create_schema_if_missing(&config, schema).await?;
        config.options(format!("-c search_path={schema}"));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .build()
            .map_err(|error| StoreError::Pool(error.to_string()))?;
        let store = Self {
            pool,
            schema: schema.to_string(),
            known_partitions: Mutex::new(HashSet::new()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Returns the schema this store writes to.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::Pool(error.to_string()))
    }

    /// Runs the migrations that have not run yet.
    ///
    /// # Errors
    /// A migration failed; the ones before it stay applied.
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        let mut client = self.client().await?;
        migrate::run(&mut client).await
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|source| StoreError::Query {
                context: "ping",
                source,
            })?;
        Ok(())
    }
}
