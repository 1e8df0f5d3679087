//! [`SharedState`] on Redis: values under `{prefix}:kv:*`, schedules under `{prefix}:slots:*`.

use std::time::Duration;

use clawdbot_core::shared::{SharedState, SharedStateError};

use super::{RedisBus, scripts, timed};
use crate::BusError;

fn unavailable(error: BusError) -> SharedStateError {
    SharedStateError(error.to_string())
}

fn ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

#[async_trait::async_trait]
impl SharedState for RedisBus {
    async fn get_value(&self, key: &str) -> Result<Option<String>, SharedStateError> {
        let cmd = redis::cmd("GET").arg(self.keys.shared_value(key)).clone();
        timed("GET", cmd.query_async(&mut self.conn.clone()))
            .await
            .map_err(unavailable)
    }

    async fn put_value(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let cmd = redis::cmd("SET")
            .arg(self.keys.shared_value(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .clone();
        timed("SET", cmd.query_async::<()>(&mut self.conn.clone()))
            .await
            .map_err(unavailable)
    }

    async fn put_value_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, SharedStateError> {
        let cmd = redis::cmd("SET")
            .arg(self.keys.shared_value(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .clone();
        let set: Option<String> = timed("SET NX", cmd.query_async(&mut self.conn.clone()))
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn delete_value_if(&self, key: &str, value: &str) -> Result<bool, SharedStateError> {
        let key = self.keys.shared_value(key);
        let cmd = self.scripts.delete_if.evalsha(&[&key]).arg(value).clone();
        let deleted: u64 =
            scripts::run_script(&self.scripts, &mut self.conn.clone(), "delete if", &cmd)
                .await
                .map_err(unavailable)?;
        Ok(deleted == 1)
    }

    async fn renew_value_if(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, SharedStateError> {
        let key = self.keys.shared_value(key);
        let cmd = self
            .scripts
            .renew_if
            .evalsha(&[&key])
            .arg(value)
            .arg(ttl_ms(ttl))
            .clone();
        let renewed: u64 =
            scripts::run_script(&self.scripts, &mut self.conn.clone(), "renew if", &cmd)
                .await
                .map_err(unavailable)?;
        Ok(renewed == 1)
    }

    async fn increment(&self, key: &str, by: u64, ttl: Duration) -> Result<u64, SharedStateError> {
        let key = self.keys.shared_value(key);
        let cmd = self
            .scripts
            .increment
            .evalsha(&[&key])
            .arg(ttl_ms(ttl))
            .arg(by.max(1))
            .clone();
        scripts::run_script(&self.scripts, &mut self.conn.clone(), "increment", &cmd)
            .await
            .map_err(unavailable)
    }

    async fn reserve_slot(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        max_wait: Duration,
    ) -> Result<Option<Duration>, SharedStateError> {
        let key = self.keys.schedule(key);
        let cmd = self
            .scripts
            .reserve_slot
            .evalsha(&[&key])
            .arg(limit.max(1))
            .arg(ttl_ms(window))
            .arg(max_wait.as_millis() as u64)
            .arg(uuid::Uuid::now_v7().to_string())
            .clone();
        let wait_ms: i64 =
            scripts::run_script(&self.scripts, &mut self.conn.clone(), "reserve slot", &cmd)
                .await
                .map_err(unavailable)?;
        Ok(u64::try_from(wait_ms).ok().map(Duration::from_millis))
    }
}
