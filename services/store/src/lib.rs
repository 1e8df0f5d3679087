//! clawdbot-store: message history.
//!
//! [`Store`] is the trait the history writer and skills use; [`postgres::PostgresStore`]
//! implements it for the cluster and [`sqlite::SqliteStore`] for the embedded mode, with the
//! same rows and the same contract. Migrations live in `migrations/` and run at start and by `clawdbot migrate`.

pub mod keyring;
mod logs;
pub mod mongo;
pub mod postgres;
mod secrets;
pub mod sink;
pub mod split;
pub mod sqlite;

pub use logs::{LogGroup, LogQuery, LogRecord, LogSummary, like_pattern};
pub use secrets::{SecretRecord, kind as secret_kind};

use time::OffsetDateTime;

/// Whether a row records a message received or a reply sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    /// Returns the value stored in the `direction` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One history row.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    /// Envelope id (in) or reply id (out).
    pub id: String,
    pub direction: Direction,
    pub platform: String,
    pub bot_id: String,
    pub conversation_kind: String,
    pub conversation_id: String,
    pub sender_id: String,
    pub platform_message_id: String,
    pub event_type: String,
    pub skill: String,
    pub in_reply_to: String,
    /// Delivery status for outbound rows (`delivered`, `failed`), empty for inbound.
    pub status: String,
    pub text: String,
    /// The protobuf message the row was made from.
    pub payload: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub at: OffsetDateTime,
    /// Who: `cli:<user>`, or `<platform>:<user id>`.
    pub actor: String,
    /// What: `skill.disable`, `skill.use`, ...
    pub action: String,
    /// On what: a skill name, a key.
    pub target: String,
    /// `allowed`, `denied`, `done`.
    pub decision: String,
    pub reason: String,
}

/// What one skill did recently (`clawdbot skill list`).
#[derive(Debug, Clone, PartialEq)]
pub struct SkillActivity {
    pub skill: String,
    pub calls: u64,
    /// Message received → reply delivered, 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

/// Returns the 99th percentile of `values` (nearest rank), 0 when empty.
pub fn p99(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot connect to postgres")]
    Connect(#[source] tokio_postgres::Error),
    #[error("no connection from the pool: {0}")]
    Pool(String),
    #[error("query failed: {context}")]
    Query {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("sqlite: {context}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("migration {version} failed")]
    Migration {
        version: i32,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("mongodb: {context}")]
    Mongo {
        context: &'static str,
        #[source]
        source: Box<mongodb::error::Error>,
    },
    #[error("history sink: {context}: {reason}")]
    Sink {
        context: &'static str,
        reason: String,
    },
}

impl StoreError {
    /// Returns the error kind, used as the `error_type` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::InvalidUrl { .. } => "store_invalid_url",
            StoreError::Connect(_) => "store_connect",
            StoreError::Pool(_) => "store_pool",
            StoreError::Query { .. } => "store_query",
            StoreError::Sqlite { .. } => "store_sqlite",
            StoreError::Migration { .. } => "store_migration",
            StoreError::Mongo { .. } => "store_mongodb",
            StoreError::Sink { .. } => "store_sink",
        }
    }
}

/// History: the conversation records, written in batches by the history writer and read by skills and reports.
#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    /// Writes a batch of rows in one statement; rows already present are skipped, so a replayed
    /// batch writes nothing twice. Returns how many rows were new.
    ///
    /// # Errors
    /// The database is unreachable or refused the batch; nothing of it was written.
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError>;

    /// Returns up to `limit` most recent rows of one conversation, oldest first.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError>;

    /// Returns, per skill, the replies it sent since `since` and the 99th percentile of their
    /// latency (message received → reply delivered), from history.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn skill_activity(&self, since: OffsetDateTime)
    -> Result<Vec<SkillActivity>, StoreError>;

    /// Returns up to `query.limit` rows matching `query`, oldest first (by time, then id),
    /// strictly after `query.after`: pages of a history read that holds one page at a time
    /// (`clawdbot history show|export`).
    ///
    /// # Errors
    /// The database is unreachable.
    async fn history_page(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError>;

    /// Deletes the rows written before `before` (history retention); returns how many.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn delete_history_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Has the database itself expire rows older than `keep` where it can (MongoDB: a TTL
    /// index on `created_at`), or stop doing so (`None`); returns whether it does. The
    /// relational backends cannot, and rely on [`HistoryStore::delete_history_before`].
    ///
    /// # Errors
    /// The database is unreachable or refuses the index.
    async fn expire_history_after(
        &self,
        _keep: Option<std::time::Duration>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Which history rows a page holds.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub platform: Option<String>,
    pub conversation_id: Option<String>,
    /// Only rows at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Text the row's text contains (any case).
    pub grep: Option<String>,
    /// Only rows after this one (its time and id): the last row of the previous page.
    pub after: Option<(OffsetDateTime, String)>,
    pub limit: i64,
}

/// The audit trail of admin actions and its settings.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Returns whether auditing is on and its retention in days (`None`: never configured).
    ///
    /// # Errors
    /// The database is unreachable.
    async fn audit_settings(&self) -> Result<Option<(bool, i32)>, StoreError>;

    /// Switches auditing on or off with a retention in days.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn set_audit(&self, enabled: bool, retention_days: i32) -> Result<(), StoreError>;

    /// Appends audit records (callers check that auditing is on).
    ///
    /// # Errors
    /// The database is unreachable.
    async fn record_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;

    /// Returns the newest `limit` records, newest first.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn audit_records(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;

    /// Deletes records older than `before`; returns how many went.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Skills loaded on the running cluster (versions, components) and the cluster-wide skill switches.
#[async_trait::async_trait]
pub trait SkillRegistry: Send + Sync {
    /// Registers (or replaces) a loaded skill's manifest, as JSON, and keeps it as the skill's
    /// newest version.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn register_skill(
        &self,
        name: &str,
        manifest_json: &str,
        loaded_by: &str,
    ) -> Result<(), StoreError>;

    /// Drops a loaded skill's newest version and registers the one before it again; returns
    /// that manifest, or `None` (nothing changed) when there is no earlier version.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn rollback_skill(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Stores a WebAssembly component under its SHA-256 (once, however often it is loaded).
    ///
    /// # Errors
    /// The database is unreachable.
    async fn put_skill_component(&self, sha256: &str, component: &[u8]) -> Result<(), StoreError>;

    /// Returns the component stored under `sha256`.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn skill_component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Returns the loaded skills' manifests (JSON), by name.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn registered_skills(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError>;

    /// Returns the skills switched on or off cluster-wide, by name.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn skill_states(&self) -> Result<std::collections::BTreeMap<String, bool>, StoreError>;

    /// Switches a skill on or off cluster-wide, recording who did it.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn set_skill_state(
        &self,
        name: &str,
        enabled: bool,
        changed_by: &str,
    ) -> Result<(), StoreError>;
}

/// Cluster-wide log records (warnings, errors, skill-call outcomes).
#[async_trait::async_trait]
pub trait LogStore: Send + Sync {
    /// Appends log records (one statement per batch).
    ///
    /// # Errors
    /// The database is unreachable.
    async fn write_logs(&self, records: &[LogRecord]) -> Result<(), StoreError>;

    /// Returns the records `query` selects, newest first.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError>;

    /// Counts records since `since` by `group`, busiest first.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn log_summary(
        &self,
        group: LogGroup,
        since: OffsetDateTime,
    ) -> Result<Vec<LogSummary>, StoreError>;

    /// Deletes records older than `before`; returns how many.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn purge_logs(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Secrets sealed under the master key, and issued API keys.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    /// Writes a sealed secret, replacing one of the same name.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn put_secret(&self, record: &SecretRecord) -> Result<(), StoreError>;

    /// Returns every sealed secret, by name.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError>;

    /// Replaces a secret's sealed value and key id only if it still holds `expected`, so that a
    /// rotation never overwrites a value changed meanwhile. Returns whether it replaced it.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn reseal_secret(
        &self,
        name: &str,
        expected: &[u8],
        key_id: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError>;

    /// Deletes a secret; returns whether it existed.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError>;

    /// Deletes secrets whose `expires_at` is at or before `now`; returns how many.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn purge_expired_secrets(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The whole store, one per backend (Postgres, SQLite), each concern in its own trait so that a
/// caller can take only the one it uses (`Arc<dyn HistoryStore>` from an `Arc<dyn Store>`).
#[async_trait::async_trait]
pub trait Store: HistoryStore + AuditStore + SkillRegistry + LogStore + SecretStore {
    /// Checks that the database answers.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Folds (skill, latency) rows into per-skill activity, busiest first.
pub(crate) fn activity(
    rows: impl IntoIterator<Item = (String, Option<f64>)>,
) -> Vec<SkillActivity> {
    let mut by_skill: std::collections::BTreeMap<String, (u64, Vec<f64>)> =
        std::collections::BTreeMap::new();
    for (skill, latency) in rows {
        let entry = by_skill.entry(skill).or_default();
        entry.0 += 1;
        entry.1.extend(latency);
    }
    let mut activity: Vec<SkillActivity> = by_skill
        .into_iter()
        .map(|(skill, (calls, mut latencies))| SkillActivity {
            skill,
            calls,
            p99_ms: p99(&mut latencies),
        })
        .collect();
    activity.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.skill.cmp(&b.skill)));
    activity
}
