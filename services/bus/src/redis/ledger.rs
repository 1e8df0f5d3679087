//! The reply ledger on Redis: egress's idempotency records.

use std::time::Duration;

use super::RedisBus;
use super::scripts::run_script;
use crate::{BusError, Claim, ReplyLedger, Stream};

#[async_trait::async_trait]
impl ReplyLedger for RedisBus {
    async fn claim(&self, reply_id: &str, lease: Duration) -> Result<Claim, BusError> {
        let token = uuid_token();
        let key = self.keys.reply(reply_id);
        let cmd = self
            .scripts
            .ledger_claim
            .evalsha(&[&key])
            .arg(lease.as_millis().max(1) as u64)
            .arg(&token)
            .clone();
        let reply: String =
            run_script(&self.scripts, &mut self.conn.clone(), "ledger claim", &cmd).await?;
        Ok(match reply.as_str() {
            "claimed" => Claim::Claimed(token),
            "inflight" => Claim::InFlight,
            done => Claim::Done(done.strip_prefix('D').unwrap_or(done).to_string()),
        })
    }

    async fn complete(
        &self,
        reply_id: &str,
        token: &str,
        result: &str,
        ttl: Duration,
        record: &[u8],
        traceparent: &str,
    ) -> Result<(), BusError> {
        let key = self.keys.reply(reply_id);
        let stream = self.keys.stream(Stream::Outbound);
        let cmd = self
            .scripts
            .ledger_complete
            .evalsha(&[&key, &stream])
            .arg(token)
            .arg(result)
            .arg(ttl.as_millis().max(1) as u64)
            .arg(record)
            .arg(traceparent)
            .clone();
        let _completed: i64 = run_script(
            &self.scripts,
            &mut self.conn.clone(),
            "ledger complete",
            &cmd,
        )
        .await?;
        Ok(())
    }

    async fn release(&self, reply_id: &str, token: &str) -> Result<(), BusError> {
        let key = self.keys.reply(reply_id);
        let cmd = self
            .scripts
            .ledger_release
            .evalsha(&[&key])
            .arg(token)
            .clone();
        let _released: i64 = run_script(
            &self.scripts,
            &mut self.conn.clone(),
            "ledger release",
            &cmd,
        )
        .await?;
        Ok(())
    }
}

/// A random lease token; only its holder may complete or release the lease.
fn uuid_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
