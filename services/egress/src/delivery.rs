//! Delivering claimed replies: per conversation in order, each conversation in a task of its
//! own, so that the caller going away (a worker killed mid-call, a gRPC deadline) cannot cut a
//! delivery between the platform's answer and its record.

use std::collections::HashMap;
use std::sync::Arc;

use clawdbot_bus::Completion;
use clawdbot_core::proto::{DeliveryRecord, DeliveryStatus, Reply, SendResponse};
use clawdbot_core::telemetry::{self, EGRESS_DELIVERIES_TOTAL};
use clawdbot_platforms::{Delivered, Outbound, OutboundError};
use prost::Message;
use tonic::Status;
use tracing::Instrument;

use crate::recorder::Recorder;

const COMPONENT: &str = "egress";

/// What a call answers for one reply.
pub(crate) type Outcome = Result<SendResponse, Status>;

/// A reply whose lease this process holds, with its platform's sender.
pub(crate) struct Claimed {
    /// Its position in the call's request.
    pub index: usize,
    pub platform: &'static str,
    pub outbound: Arc<dyn Outbound>,
    pub reply: Reply,
    pub token: String,
}

/// Splits `claimed` into chains, one per conversation, each in request order.
pub(crate) fn chains(claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
    let mut chains: Vec<Vec<Claimed>> = Vec::new();
    let mut by_conversation: HashMap<String, usize> = HashMap::new();
    for reply in claimed {
        let key = conversation_key(reply.platform, &reply.reply);
        match by_conversation.get(&key) {
            Some(&chain) => chains[chain].push(reply),
            None => {
                by_conversation.insert(key, chains.len());
                chains.push(vec![reply]);
            }
        }
    }
    chains
}

/// The conversation `reply` goes to, as a key.
pub(crate) fn conversation_key(platform: &str, reply: &Reply) -> String {
    let conversation = reply.conversation.as_ref();
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        platform,
        reply.bot_id,
        conversation.map(|c| c.kind).unwrap_or_default(),
        conversation.map(|c| c.id.as_str()).unwrap_or_default()
    )
}

/// Sends one conversation's replies in order and hands each outcome to the recorder as soon
/// as it is known; returns once the delivered ones are in the ledger, so that a caller told
/// "delivered" finds the record (history, later calls) already there. After a reply that
/// could not be delivered, the later ones of the chain are not sent (their leases are given
/// back): a retry delivers them after it, in order.
pub(crate) async fn run_chain(
    chain: Vec<Claimed>,
    recorder: Arc<Recorder>,
) -> Vec<(usize, Outcome)> {
    let mut outcomes = Vec::with_capacity(chain.len());
    let mut records = Vec::new();
    let mut blocked_by: Option<String> = None;
    for claimed in chain {
        if let Some(earlier) = &blocked_by {
            recorder.release(claimed.reply.id.clone(), claimed.token);
            let status = Status::unavailable(format!(
                "not sent: earlier reply `{earlier}` of this conversation was not delivered"
            ));
            outcomes.push((claimed.index, Err(status)));
            continue;
        }
        let span = tracing::info_span!("egress", platform = claimed.platform, reply_id = %claimed.reply.id);
        telemetry::set_remote_parent(&span, claimed.reply.trace.as_ref());
        let result = claimed.outbound.send(&claimed.reply).instrument(span).await;
        let outcome = classify(&claimed, result);
        match &outcome {
            Ok(response) => records.push(recorder.complete(completion(&claimed, response))),
            // An invalid reply never goes out, so it holds nothing up.
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                recorder.release(claimed.reply.id.clone(), claimed.token.clone());
            }
            Err(_) => {
                blocked_by = Some(claimed.reply.id.clone());
                recorder.release(claimed.reply.id.clone(), claimed.token.clone());
            }
        }
        outcomes.push((claimed.index, outcome));
    }
    for written in records {
        // An error only means the recorder stopped (the process is exiting).
        let _written = written.await;
    }
    outcomes
}

fn completion(claimed: &Claimed, response: &SendResponse) -> Completion {
    Completion {
        reply_id: claimed.reply.id.clone(),
        token: claimed.token.clone(),
        result: crate::result::encode(response),
        traceparent: claimed
            .reply
            .trace
            .as_ref()
            .map(|t| t.traceparent.clone())
            .unwrap_or_default(),
        record: DeliveryRecord {
            reply: Some(claimed.reply.clone()),
            response: Some(response.clone()),
            finished_at_ms: clawdbot_core::now_ms(),
        }
        .encode_to_vec(),
    }
}

/// Turns a platform result into the call's outcome, counting and logging it.
fn classify(claimed: &Claimed, result: Result<Delivered, OutboundError>) -> Outcome {
    let (platform, reply_id) = (claimed.platform, claimed.reply.id.as_str());
    match result {
        Ok(delivered) => {
            count(platform, "delivered");
            Ok(SendResponse {
                status: DeliveryStatus::Delivered.into(),
                platform_message_id: delivered.platform_message_id,
                error: String::new(),
                duplicate: false,
                attempts: delivered.attempts,
                notes: delivered.notes,
            })
        }
        Err(OutboundError::Refused { reason, attempts }) => {
            count(platform, "failed");
            telemetry::count_error(COMPONENT, "platform_refused");
            tracing::warn!(platform, reply_id, error = %reason, "platform refused the reply");
            Ok(SendResponse {
                status: DeliveryStatus::Failed.into(),
                error: reason,
                attempts,
                ..Default::default()
            })
        }
        Err(error) => {
            count(platform, error.kind());
            telemetry::count_error(COMPONENT, error.kind());
            tracing::warn!(platform, reply_id, error = %error, "delivery failed");
            Err(match error {
                OutboundError::InvalidReply(reason) => Status::invalid_argument(reason),
                other => Status::unavailable(other.to_string()),
            })
        }
    }
}

pub(crate) fn count(platform: &'static str, outcome: &'static str) {
    metrics::counter!(EGRESS_DELIVERIES_TOTAL, "platform" => platform, "outcome" => outcome)
        .increment(1);
}
