//! Opens the two backends from the config, for the roles and for every admin command alike:
//! the bus (`cluster.redis` → Redis Streams, else the in-process bus, which only `clawdbot up`
//! may use) and the store (`storage` → Postgres or SQLite; SQLite at [`DEFAULT_SQLITE_PATH`]
//! when absent). Each error names the key to fix.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clawdbot_bus::Bus;
use clawdbot_bus::memory::MemoryBus;
use clawdbot_bus::redis::RedisBus;
use clawdbot_config::{Config, StorageConfig};
use clawdbot_store::Store;
use clawdbot_store::postgres::PostgresStore;
use clawdbot_store::sqlite::SqliteStore;

/// Where history goes when the config names no storage.
pub const DEFAULT_SQLITE_PATH: &str = "clawdbot.db";

/// Connects the configured bus; the in-process one only when `embedded_allowed` (all roles in
/// one process), since roles apart reach each other through Redis.
pub async fn connect_bus(config: &Config, embedded_allowed: bool) -> anyhow::Result<Arc<dyn Bus>> {
    let Some(cluster) = &config.core.cluster else {
        if !embedded_allowed {
            bail!(
                "no `cluster.redis` configured: a role running on its own reaches the others through Redis (or run everything with `clawdbot up`)"
            );
        }
        return Ok(Arc::new(MemoryBus::new()));
    };
    let bus = RedisBus::connect(&cluster.redis, &cluster.key_prefix)
        .await
        .with_context(|| {
            format!(
                "cannot reach Redis at `{}` (`cluster.redis`)",
                cluster.redis
            )
        })?;
    Ok(Arc::new(bus))
}

/// Opens the configured store (applying its migrations); returns it and a description of
/// where it is.
pub async fn connect_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, String)> {
    match &config.core.storage {
        Some(storage) => open_storage(storage, "storage").await,
        None => open_sqlite(Path::new(DEFAULT_SQLITE_PATH), "storage").await,
    }
}

/// Opens one `storage` section (`key` names it in errors).
async fn open_storage(
    storage: &StorageConfig,
    key: &str,
) -> anyhow::Result<(Arc<dyn Store>, String)> {
    match storage {
        StorageConfig::Postgresql {
            dsn,
            pool_size,
            schema,
        } => {
            let store = PostgresStore::connect(dsn, schema, *pool_size)
                .await
                .with_context(|| {
                    format!("cannot use Postgres at `{}` (`{key}.dsn`)", redact(dsn))
                })?;
            Ok((
                Arc::new(store),
                format!("Postgres {} (schema {schema})", redact(dsn)),
            ))
        }
        StorageConfig::Sqlite { path } => {
            open_sqlite(Path::new(path), &format!("{key}.path")).await
        }
        StorageConfig::Mongodb {
            uri,
            write_concern,
            database,
            pool_size,
            timeout_ms,
            control,
        } => {
            let settings = clawdbot_store::mongo::MongoSettings {
                uri: uri.clone(),
                write_concern: write_concern.clone(),
                database: database.clone(),
                pool_size: *pool_size,
                timeout: Duration::from_millis(*timeout_ms),
            };
            let history = clawdbot_store::mongo::MongoHistory::connect(&settings)
                .await
                .with_context(|| format!("cannot use MongoDB (`{key}.uri`)"))?;
            beside_control(history, "MongoDB", &format!("{key}.uri"), control, key).await
        }
        StorageConfig::Custom {
            endpoint,
            timeout_ms,
            control,
        } => {
            let timeout = Duration::from_millis(*timeout_ms);
            let history = clawdbot_store::sink::SinkHistory::connect(endpoint, timeout)
                .await
                .with_context(|| format!("cannot use the history sink (`{key}.endpoint`)"))?;
            let name = format!("the sink at {endpoint}");
            beside_control(history, &name, &format!("{key}.endpoint"), control, key).await
        }
    }
}

/// A history-only store (`name`, configured at `address_key`) that answers, beside the
/// relational store of `control`.
async fn beside_control<H: clawdbot_store::split::HistoryOnly>(
    history: H,
    name: &str,
    address_key: &str,
    control: &Option<Box<StorageConfig>>,
    key: &str,
) -> anyhow::Result<(Arc<dyn Store>, String)> {
    history
        .reachable()
        .await
        .with_context(|| format!("{name} does not answer (`{address_key}`)"))?;
    let (control, control_at) = open_control(control.as_deref(), key).await?;
    let store = clawdbot_store::split::SplitStore::history_only(history, control);
    Ok((
        Arc::new(store),
        format!("history on {name}, the rest on {control_at}"),
    ))
}

/// The relational store beside a history-only one (`storage.control`), else `./clawdbot.db`.
async fn open_control(
    control: Option<&StorageConfig>,
    key: &str,
) -> anyhow::Result<(Arc<dyn Store>, String)> {
    match control {
        Some(control) => Box::pin(open_storage(control, &format!("{key}.control"))).await,
        None => open_sqlite(Path::new(DEFAULT_SQLITE_PATH), &format!("{key}.control")).await,
    }
}

async fn open_sqlite(path: &Path, key: &str) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let store = SqliteStore::open(path)
        .await
        .with_context(|| format!("cannot use SQLite file `{}` (`{key}`)", path.display()))?;
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((Arc::new(store), shown.display().to_string()))
}

/// `clawdbot migrate`: opens the store, which applies the migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let (_store, location) = connect_store(config).await?;
    crate::cli_out::say!("migrations applied: {location}");
    Ok(())
}

/// Hides the password of a URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
