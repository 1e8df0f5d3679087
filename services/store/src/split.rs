//! A store whose history lives apart from the rest: MongoDB (or any [`HistoryStore`]) for the
//! rows that grow with traffic, a relational store for the small, transactional concerns —
//! skills and switches, secrets, audit, logs — that every process reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::{
    AuditRecord, AuditStore, HistoryQuery, HistoryRecord, HistoryStore, LogGroup, LogQuery,
    LogRecord, LogStore, LogSummary, SecretRecord, SecretStore, SkillActivity, SkillRegistry,
    Store, StoreError,
};

/// History on `history`, everything else on `control`.
pub struct SplitStore {
    history: Arc<dyn HistoryStore>,
    control: Arc<dyn Store>,
    /// Checks the history side too (`ping`).
    history_ping: Arc<dyn Fn() -> HistoryPing + Send + Sync>,
}

/// A future that answers when the history side does.
pub type HistoryPing =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

/// A store that holds history only (MongoDB, a sink) and can say whether it is reachable.
pub trait HistoryOnly: HistoryStore + Clone + 'static {
    fn reachable(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

impl HistoryOnly for crate::mongo::MongoHistory {
    fn reachable(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.ping()
    }
}

impl HistoryOnly for crate::sink::SinkHistory {
    fn reachable(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.ping()
    }
}

impl SplitStore {
    /// History on MongoDB, the rest on `control` (what `storage: {type: mongodb}` opens).
    pub fn mongo(history: crate::mongo::MongoHistory, control: Arc<dyn Store>) -> Self {
        Self::history_only(history, control)
    }

    /// History on a sink of the user's own, the rest on `control` (`storage: {type: custom}`).
    pub fn sink(history: crate::sink::SinkHistory, control: Arc<dyn Store>) -> Self {
        Self::history_only(history, control)
    }

    /// `history` for history, pinged with the rest; `control` for everything else.
    pub fn history_only<H: HistoryOnly>(history: H, control: Arc<dyn Store>) -> Self {
        let pinged = history.clone();
        Self::new(
            Arc::new(history),
            control,
            Arc::new(move || {
                let history = pinged.clone();
                Box::pin(async move { history.reachable().await })
            }),
        )
    }

    pub fn new(
        history: Arc<dyn HistoryStore>,
        control: Arc<dyn Store>,
        history_ping: Arc<dyn Fn() -> HistoryPing + Send + Sync>,
    ) -> Self {
        Self {
            history,
            control,
            history_ping,
        }
    }
}

#[async_trait::async_trait]
impl HistoryStore for SplitStore {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        self.history.write_history(records).await
    }
    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        (self.history)
            .conversation(platform, bot_id, conversation_id, limit)
            .await
    }
    async fn skill_activity(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<SkillActivity>, StoreError> {
        self.history.skill_activity(since).await
    }
    async fn history_page(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError> {
        self.history.history_page(query).await
    }
    async fn delete_history_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.history.delete_history_before(before).await
    }
    async fn expire_history_after(
        &self,
        keep: Option<std::time::Duration>,
    ) -> Result<bool, StoreError> {
        self.history.expire_history_after(keep).await
    }
}

#[async_trait::async_trait]
impl AuditStore for SplitStore {
    async fn audit_settings(&self) -> Result<Option<(bool, i32)>, StoreError> {
        self.control.audit_settings().await
    }
    async fn set_audit(&self, enabled: bool, retention_days: i32) -> Result<(), StoreError> {
        self.control.set_audit(enabled, retention_days).await
    }
    async fn record_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.control.record_audit(records).await
    }
    async fn audit_records(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.control.audit_records(limit).await
    }
    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.control.purge_audit(before).await
    }
}

#[async_trait::async_trait]
impl SkillRegistry for SplitStore {
    async fn register_skill(
        &self,
        name: &str,
        manifest_json: &str,
        loaded_by: &str,
    ) -> Result<(), StoreError> {
        self.control
            .register_skill(name, manifest_json, loaded_by)
            .await
    }
    async fn rollback_skill(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.control.rollback_skill(name).await
    }
    async fn put_skill_component(&self, sha256: &str, component: &[u8]) -> Result<(), StoreError> {
        self.control.put_skill_component(sha256, component).await
    }
    async fn skill_component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.control.skill_component(sha256).await
    }
    async fn registered_skills(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.control.registered_skills().await
    }
    async fn skill_states(&self) -> Result<BTreeMap<String, bool>, StoreError> {
        self.control.skill_states().await
    }
    async fn set_skill_state(
        &self,
        name: &str,
        enabled: bool,
        changed_by: &str,
    ) -> Result<(), StoreError> {
        self.control
            .set_skill_state(name, enabled, changed_by)
            .await
    }
}

#[async_trait::async_trait]
impl LogStore for SplitStore {
    async fn write_logs(&self, records: &[LogRecord]) -> Result<(), StoreError> {
        self.control.write_logs(records).await
    }
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        self.control.logs(query).await
    }
    async fn log_summary(
        &self,
        group: LogGroup,
        since: OffsetDateTime,
    ) -> Result<Vec<LogSummary>, StoreError> {
        self.control.log_summary(group, since).await
    }
    async fn purge_logs(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.control.purge_logs(before).await
    }
}

#[async_trait::async_trait]
impl SecretStore for SplitStore {
    async fn put_secret(&self, record: &SecretRecord) -> Result<(), StoreError> {
        self.control.put_secret(record).await
    }
    async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        self.control.secrets().await
    }
    async fn reseal_secret(
        &self,
        name: &str,
        expected: &[u8],
        key_id: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        self.control
            .reseal_secret(name, expected, key_id, sealed)
            .await
    }
    async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        self.control.delete_secret(name).await
    }
    async fn purge_expired_secrets(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.control.purge_expired_secrets(now).await
    }
}

#[async_trait::async_trait]
impl Store for SplitStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.control.ping().await?;
        (self.history_ping)().await
    }
}
