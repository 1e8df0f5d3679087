//! History on Postgres: a connection pool whose connections all use one schema, migrations
//! under an advisory lock (several processes start at once), and batched writes.

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

use crate::{Direction, HistoryRecord, Store, StoreError};

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

const INSERT_BATCH: &str =
    "INSERT INTO messages (id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
    $14::bytea[], $15::timestamptz[])
ON CONFLICT DO NOTHING";

const SELECT_CONVERSATION: &str = "SELECT id, direction, platform, bot_id, conversation_kind,
    conversation_id, sender_id, platform_message_id, event_type, skill, in_reply_to, status, text,
    payload, created_at
FROM (SELECT * FROM messages WHERE platform = $1 AND bot_id = $2 AND conversation_id = $3
      ORDER BY created_at DESC LIMIT $4) recent
ORDER BY created_at, direction";

#[async_trait::async_trait]
impl crate::HistoryStore for PostgresStore {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        partitions::ensure_for(&client, &self.known_partitions, records).await?;
        let column = |f: fn(&HistoryRecord) -> &str| {
            records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
        };
        let ids = column(|r| &r.id);
        let directions = column(|r| r.direction.as_str());
        let platforms = column(|r| &r.platform);
        let bots = column(|r| &r.bot_id);
        let kinds = column(|r| &r.conversation_kind);
        let conversations = column(|r| &r.conversation_id);
        let senders = column(|r| &r.sender_id);
        let message_ids = column(|r| &r.platform_message_id);
        let event_types = column(|r| &r.event_type);
        let skills = column(|r| &r.skill);
        let in_reply_to = column(|r| &r.in_reply_to);
        let statuses = column(|r| &r.status);
        let texts = column(|r| &r.text);
        let payloads: Vec<&[u8]> = records.iter().map(|r| r.payload.as_slice()).collect();
        let created: Vec<time::OffsetDateTime> = records.iter().map(|r| r.created_at).collect();
        client
            .execute(
                INSERT_BATCH,
                &[
                    &ids,
                    &directions,
                    &platforms,
                    &bots,
                    &kinds,
                    &conversations,
                    &senders,
                    &message_ids,
                    &event_types,
                    &skills,
                    &in_reply_to,
                    &statuses,
                    &texts,
                    &payloads,
                    &created,
                ],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "insert history batch",
                source,
            })
    }

    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                SELECT_CONVERSATION,
                &[&platform, &bot_id, &conversation_id, &limit],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "select conversation",
                source,
            })?;
        Ok(rows
            .iter()
            .map(|row| HistoryRecord {
                id: row.get(0),
                direction: if row.get::<_, &str>(1) == "in" {
                    Direction::In
                } else {
                    Direction::Out
                },
                platform: row.get(2),
                bot_id: row.get(3),
                conversation_kind: row.get(4),
                conversation_id: row.get(5),
                sender_id: row.get(6),
                platform_message_id: row.get(7),
                event_type: row.get(8),
                skill: row.get(9),
                in_reply_to: row.get(10),
                status: row.get(11),
                text: row.get(12),
                payload: row.get(13),
                created_at: row.get(14),
            })
            .collect())
    }

    async fn skill_activity(
        &self,
        since: time::OffsetDateTime,
    ) -> Result<Vec<crate::SkillActivity>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT o.skill, extract(epoch FROM o.created_at - i.created_at)::float8 * 1000
                 FROM messages o LEFT JOIN messages i ON i.id = o.in_reply_to AND i.direction = 'in'
                 WHERE o.direction = 'out' AND o.created_at >= $1 AND o.skill <> ''",
                &[&since],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "skill activity",
                source,
            })?;
        Ok(crate::activity(rows.iter().map(|row| {
            (row.get::<_, String>(0), row.get::<_, Option<f64>>(1))
        })))
    }
}

#[async_trait::async_trait]
impl crate::AuditStore for PostgresStore {
    async fn audit_settings(&self) -> Result<Option<(bool, i32)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT enabled, retention_days FROM audit_settings WHERE id = 1",
                &[],
            )
            .await
            .map_err(|source| StoreError::Query {
                context: "audit settings",
                source,
            })?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn set_audit(&self, enabled: bool, retention_days: i32) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO audit_settings (id, enabled, retention_days) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, retention_days = excluded.retention_days",
                &[&enabled, &retention_days],
            )
            .await
            .map_err(|source| StoreError::Query { context: "set audit", source })?;
        Ok(())
    }

    async fn record_audit(&self, records: &[crate::AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let column = |f: fn(&crate::AuditRecord) -> &str| {
            records.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()
        };
        let at: Vec<time::OffsetDateTime> = records.iter().map(|r| r.at).collect();
        client
            .execute(
                "INSERT INTO audit (at, actor, action, target, decision, reason)
                 SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])",
                &[&at, &column(|r| &r.actor), &column(|r| &r.action), &column(|r| &r.target), &column(|r| &r.decision), &column(|r| &r.reason)],
            )
            .await
            .map_err(|source| StoreError::Query { context: "record audit", source })?;
        Ok(())
    }

    async fn audit_records(&self, limit: i64) -> Result<Vec<crate::AuditRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT at, actor, action, target, decision, reason FROM audit ORDER BY at DESC LIMIT $1", &[&limit])
            .await
            .map_err(|source| StoreError::Query { context: "read audit", source })?;
        Ok(rows
            .iter()
            .map(|row| crate::AuditRecord {
                at: row.get(0),
                actor: row.get(1),
                action: row.get(2),
                target: row.get(3),
                decision: row.get(4),
                reason: row.get(5),
            })
            .collect())
    }

    async fn purge_audit(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM audit WHERE at < $1", &[&before])
            .await
            .map_err(|source| StoreError::Query {
                context: "purge audit",
                source,
            })
    }
}

#[async_trait::async_trait]
impl crate::SkillRegistry for PostgresStore {
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
        let client = self.client().await?;
        let rows = client
            .query("SELECT name, manifest FROM skill_registry", &[])
            .await
            .map_err(|source| StoreError::Query {
                context: "select skill registry",
                source,
            })?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn skill_states(&self) -> Result<std::collections::BTreeMap<String, bool>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT name, enabled FROM skill_states", &[])
            .await
            .map_err(|source| StoreError::Query {
                context: "select skill states",
                source,
            })?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    async fn set_skill_state(
        &self,
        name: &str,
        enabled: bool,
        changed_by: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO skill_states (name, enabled, changed_by) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by, changed_at = now()",
                &[&name, &enabled, &changed_by],
            )
            .await
            .map_err(|source| StoreError::Query { context: "set skill state", source })?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::LogStore for PostgresStore {
    async fn write_logs(&self, records: &[crate::LogRecord]) -> Result<(), StoreError> {
        self.insert_logs(records).await
    }

    async fn logs(&self, query: &crate::LogQuery) -> Result<Vec<crate::LogRecord>, StoreError> {
        self.select_logs(query).await
    }

    async fn log_summary(
        &self,
        group: crate::LogGroup,
        since: time::OffsetDateTime,
    ) -> Result<Vec<crate::LogSummary>, StoreError> {
        self.summarize_logs(group, since).await
    }

    async fn purge_logs(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        self.delete_logs(before).await
    }
}

#[async_trait::async_trait]
impl crate::SecretStore for PostgresStore {
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
