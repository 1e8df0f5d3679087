//! A Postgres schema of one's own.

use std::sync::Arc;

use clawdbot_store::postgres::PostgresStore;

/// The database URL tests use: `CLAWDBOT_TEST_DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var("CLAWDBOT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A migrated store in a fresh schema `t_<random>`, dropped on drop.
pub struct TestPostgres {
    pub url: String,
    pub schema: String,
    pub store: Arc<PostgresStore>,
}

impl TestPostgres {
    /// Creates the schema and runs the migrations in it.
    ///
    /// # Panics
    /// Postgres is unreachable: the message names the URL.
    pub async fn new() -> Self {
        let url = database_url();
        let schema = format!("t_{}", crate::random_suffix());
        let store = PostgresStore::connect(&url, &schema, 4)
            .await
            .unwrap_or_else(|error| panic!("test Postgres at {url} is unusable: {error:?} (start it, or set CLAWDBOT_TEST_DATABASE_URL)"));
        Self {
            url,
            schema,
            store: Arc::new(store),
        }
    }

    /// Runs `sql` in the test schema and returns the rows.
    ///
    /// # Panics
    /// The query fails.
    pub async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let client = self.client().await;
        client
            .query(sql, &[])
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    async fn client(&self) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = self
            .url
            .parse()
            .unwrap_or_else(|error| panic!("{}: {error}", self.url));
        config.options(format!("-c search_path={}", self.schema));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.url));
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        crate::block_on_side(async move {
            let Ok((client, connection)) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(connection);
            let _dropped = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await;
        });
    }
}
