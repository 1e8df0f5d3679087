//! Migrations: numbered SQL files applied in order, each in its own transaction, under an
//! advisory lock so that processes starting together do not race.

use tokio_postgres::NoTls;

use crate::StoreError;

/// The migrations, in order. Append only: an applied migration is never edited.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_messages.sql")),
    (2, include_str!("../migrations/0002_skill_states.sql")),
    (3, include_str!("../migrations/0003_skill_registry.sql")),
    (4, include_str!("../migrations/0004_audit.sql")),
    (5, include_str!("../migrations/0005_logs.sql")),
    (6, include_str!("../migrations/0006_secrets.sql")),
    (7, include_str!("../migrations/0007_skill_versions.sql")),
];

/// Arbitrary constant naming clawdbot's migration lock (pg_advisory_xact_lock takes a bigint).
const MIGRATION_LOCK: i64 = 0x636c_6177_6462_6f74; // "clawdbot"

pub(super) async fn run(client: &mut deadpool_postgres::Object) -> Result<Vec<i32>, StoreError> {
    let query = |context: &'static str| move |source| StoreError::Query { context, source };
    let tx = client
        .transaction()
        .await
        .map_err(query("begin migrations"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(query("migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS clawdbot_migrations (
            version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(query("create clawdbot_migrations"))?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM clawdbot_migrations", &[])
        .await
        .map_err(query("read clawdbot_migrations"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut newly_applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|source| StoreError::Migration {
                version: *version,
                source,
            })?;
        tx.execute(
            "INSERT INTO clawdbot_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(|source| StoreError::Migration {
            version: *version,
            source,
        })?;
        tracing::info!(version, "migration applied");
        newly_applied.push(*version);
    }
    tx.commit().await.map_err(query("commit migrations"))?;
    Ok(newly_applied)
}

/// Connects once, outside the pool, with `config` as given.
async fn connect_once(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "setup connection closed");
        }
    });
    Ok(client)
}

/// Creates the configured database when the server says it does not exist, so that
/// `storage.dsn` can name a database nobody created by hand yet.
pub(super) async fn create_database_if_missing(
    config: &tokio_postgres::Config,
) -> Result<(), StoreError> {
    let error = match connect_once(config).await {
        Ok(_client) => return Ok(()),
        Err(error) => error,
    };
    let missing = error.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME);
    let Some(name) = config.get_dbname().filter(|_| missing) else {
        return Err(StoreError::Connect(error));
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let client = connect_once(&admin).await.map_err(StoreError::Connect)?;
    let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match client.batch_execute(&create).await {
        Ok(()) => {
            tracing::info!(database = name, "database created");
            Ok(())
        }
        // Another process created it meanwhile.
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) =>
        {
            Ok(())
        }
        Err(source) => Err(StoreError::Query {
            context: "create database",
            source,
        }),
    }
}

/// Creates `schema` if missing (tests own one schema each; production uses `public`).
pub(super) async fn create_schema_if_missing(
    config: &tokio_postgres::Config,
    schema: &str,
) -> Result<(), StoreError> {
    let client = connect_once(config).await.map_err(StoreError::Connect)?;
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\"",
        schema.replace('"', "\"\"")
    );
    match client.batch_execute(&create).await {
        Ok(()) => Ok(()),
        // Two processes creating it at once: the loser sees a unique violation.
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Ok(())
        }
        Err(source) => Err(StoreError::Query {
            context: "create schema",
            source,
        }),
    }
}
