//! The reply ledger of the in-process bus.

use std::time::{Duration, Instant};

use super::MemoryBus;
use super::state::LedgerValue;
use crate::{BusError, Claim, Completion, ReplyLedger, Stream};

/// Ledger writes between sweeps of expired records.
const SWEEP_EVERY: usize = 10_000;

#[async_trait::async_trait]
impl ReplyLedger for MemoryBus {
    async fn claim_many(
        &self,
        reply_ids: &[String],
        lease: Duration,
    ) -> Result<Vec<Claim>, BusError> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        let claims = reply_ids
            .iter()
            .map(|reply_id| match state.ledger.get(reply_id) {
                Some((LedgerValue::Done(result), expiry)) if *expiry > now => {
                    Claim::Done(result.clone())
                }
                Some((LedgerValue::Lease(_), expiry)) if *expiry > now => Claim::InFlight,
                _ => {
                    let token = uuid::Uuid::new_v4().simple().to_string();
                    state.ledger.insert(
                        reply_id.clone(),
                        (LedgerValue::Lease(token.clone()), now + lease),
                    );
                    Claim::Claimed(token)
                }
            })
            .collect();
        state.ledger_writes += reply_ids.len();
        if state.ledger_writes >= SWEEP_EVERY {
            state.ledger_writes = 0;
            state.ledger.retain(|_, (_, expiry)| *expiry > now);
        }
        Ok(claims)
    }

    async fn complete_many(
        &self,
        completions: &[Completion],
        ttl: Duration,
    ) -> Result<(), BusError> {
        let now = Instant::now();
        {
            let mut state = self.inner.lock();
            for completion in completions {
                let already_done = matches!(state.ledger.get(&completion.reply_id), Some((LedgerValue::Done(_), expiry)) if *expiry > now);
                if already_done {
                    continue;
                }
                state.ledger.insert(
                    completion.reply_id.clone(),
                    (LedgerValue::Done(completion.result.clone()), now + ttl),
                );
                state.append(
                    Stream::Outbound,
                    completion.record.clone(),
                    completion.traceparent.clone(),
                    Vec::new(),
                );
            }
        }
        self.inner.notify(Stream::Outbound).notify_waiters();
        Ok(())
    }

    async fn release_many(&self, leases: &[(String, String)]) -> Result<(), BusError> {
        let mut state = self.inner.lock();
        for (reply_id, token) in leases {
            if matches!(state.ledger.get(reply_id), Some((LedgerValue::Lease(held), _)) if held == token)
            {
                state.ledger.remove(reply_id);
            }
        }
        Ok(())
    }

    async fn renew_many(
        &self,
        leases: &[(String, String)],
        lease: Duration,
    ) -> Result<(), BusError> {
        let expiry = Instant::now() + lease;
        let mut state = self.inner.lock();
        for (reply_id, token) in leases {
            if let Some((LedgerValue::Lease(held), held_until)) = state.ledger.get_mut(reply_id)
                && held == token
            {
                *held_until = expiry;
            }
        }
        Ok(())
    }
}
