//! The reply ledger on Redis: egress's idempotency records, one pipelined round trip per batch.

use std::time::Duration;

use super::RedisBus;
use super::scripts::run_pipeline;
use crate::{BusError, Claim, Completion, ReplyLedger, Stream};

#[async_trait::async_trait]
impl ReplyLedger for RedisBus {
    async fn claim_many(
        &self,
        reply_ids: &[String],
        lease: Duration,
    ) -> Result<Vec<Claim>, BusError> {
        if reply_ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease_ms = lease.as_millis().max(1) as u64;
        let tokens: Vec<String> = reply_ids
            .iter()
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        let mut pipe = redis::pipe();
        for (reply_id, token) in reply_ids.iter().zip(&tokens) {
            let key = self.keys.reply(reply_id);
            pipe.add_command(
                self.scripts
                    .ledger_claim
                    .evalsha(&[&key])
                    .arg(lease_ms)
                    .arg(token)
                    .clone(),
            );
        }
        let replies: Vec<String> =
            run_pipeline(&self.scripts, &mut self.conn.clone(), "ledger claim", &pipe).await?;
        Ok(replies
            .into_iter()
            .zip(tokens)
            .map(|(reply, token)| match reply.as_str() {
                "claimed" => Claim::Claimed(token),
                "inflight" => Claim::InFlight,
                done => Claim::Done(done.strip_prefix('D').unwrap_or(done).to_string()),
            })
            .collect())
    }

    async fn complete_many(
        &self,
        completions: &[Completion],
        ttl: Duration,
    ) -> Result<(), BusError> {
        if completions.is_empty() {
            return Ok(());
        }
        let stream = self.keys.stream(Stream::Outbound);
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        for completion in completions {
            let key = self.keys.reply(&completion.reply_id);
            pipe.add_command(
                self.scripts
                    .ledger_complete
                    .evalsha(&[&key, &stream])
                    .arg(&completion.token)
                    .arg(&completion.result)
                    .arg(ttl_ms)
                    .arg(&completion.record)
                    .arg(&completion.traceparent)
                    .clone(),
            );
        }
        let _completed: Vec<i64> = run_pipeline(
            &self.scripts,
            &mut self.conn.clone(),
            "ledger complete",
            &pipe,
        )
        .await?;
        Ok(())
    }

    async fn release_many(&self, leases: &[(String, String)]) -> Result<(), BusError> {
        if leases.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (reply_id, token) in leases {
            let key = self.keys.reply(reply_id);
            pipe.add_command(
                self.scripts
                    .ledger_release
                    .evalsha(&[&key])
                    .arg(token)
                    .clone(),
            );
        }
        let _released: Vec<i64> = run_pipeline(
            &self.scripts,
            &mut self.conn.clone(),
            "ledger release",
            &pipe,
        )
        .await?;
        Ok(())
    }

    async fn renew_many(
        &self,
        leases: &[(String, String)],
        lease: Duration,
    ) -> Result<(), BusError> {
        if leases.is_empty() {
            return Ok(());
        }
        let lease_ms = lease.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        for (reply_id, token) in leases {
            let key = self.keys.reply(reply_id);
            pipe.add_command(
                self.scripts
                    .renew_if
                    .evalsha(&[&key])
                    .arg(format!("L{token}"))
                    .arg(lease_ms)
                    .clone(),
            );
        }
        let _renewed: Vec<i64> =
            run_pipeline(&self.scripts, &mut self.conn.clone(), "ledger renew", &pipe).await?;
        Ok(())
    }
}
