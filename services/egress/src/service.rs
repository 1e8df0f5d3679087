//! `Send` and `SendBatch`: validate, claim (one ledger round trip per batch), deliver
//! concurrently, record (one round trip per batch).

use std::sync::Arc;

use clawdbot_bus::{Bus, Claim, Completion};
use clawdbot_core::egress::ReplySender;
use clawdbot_core::proto::egress_server::Egress;
use clawdbot_core::proto::{
    DeliveryRecord, DeliveryStatus, Reply, SendBatchRequest, SendBatchResponse, SendError,
    SendRequest, SendResponse, SendResult, TraceContext, send_result,
};
use clawdbot_core::telemetry::{self, EGRESS_DELIVERIES_TOTAL};
use clawdbot_platforms::{Outbound, OutboundError, Outbounds};
use prost::Message;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::EgressSettings;

const COMPONENT: &str = "egress";
/// Replies per `SendBatch` call; larger batches are refused so one call cannot hog the service.
pub const MAX_BATCH: usize = 1000;

/// The egress service: one per process, shared by all calls.
pub struct EgressService {
    settings: EgressSettings,
    bus: Arc<dyn Bus>,
    outbounds: Outbounds,
}

/// A reply that passed validation, with its platform's sender.
struct Accepted {
    index: usize,
    platform: &'static str,
    outbound: Arc<dyn Outbound>,
    reply: Reply,
}

type Outcome = Result<SendResponse, Status>;

impl EgressService {
    /// Returns the service delivering through `outbounds`, with its ledger on `bus`.
    pub fn new(settings: EgressSettings, bus: Arc<dyn Bus>, outbounds: Outbounds) -> Self {
        Self {
            settings,
            bus,
            outbounds,
        }
    }

    fn accept(&self, index: usize, reply: Reply) -> Result<Accepted, Status> {
        if reply.id.is_empty() {
            return Err(Status::invalid_argument(
                "reply.id (the idempotency key) is empty",
            ));
        }
        let found = self
            .outbounds
            .iter()
            .find(|((platform, bot_id), _)| *platform == reply.platform && *bot_id == reply.bot_id)
            .map(|((platform, _), outbound)| (*platform, outbound.clone()));
        match found {
            Some((platform, outbound)) => Ok(Accepted {
                index,
                platform,
                outbound,
                reply,
            }),
            None => Err(Status::invalid_argument(format!(
                "no configured account `{}` on platform `{}`",
                reply.bot_id, reply.platform
            ))),
        }
    }

    /// Delivers `replies`, each at most once across all calls; outcomes in request order.
    async fn deliver_batch(&self, replies: Vec<Reply>) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = (0..replies.len()).map(|_| None).collect();
        let mut accepted = Vec::with_capacity(replies.len());
        for (index, reply) in replies.into_iter().enumerate() {
            match self.accept(index, reply) {
                Ok(reply) => accepted.push(reply),
                Err(status) => outcomes[index] = Some(Err(status)),
            }
        }
        let ids: Vec<String> = accepted.iter().map(|a| a.reply.id.clone()).collect();
        let claims = match self
            .bus
            .ledger()
            .claim_many(&ids, self.settings.lease)
            .await
        {
            Ok(claims) => claims,
            Err(error) => {
                telemetry::count_error(COMPONENT, error.kind());
                let status = Status::unavailable(format!("reply ledger unavailable: {error}"));
                for reply in &accepted {
                    outcomes[reply.index] = Some(Err(status.clone()));
                }
                return finish(outcomes);
            }
        };
        let mut to_send = Vec::with_capacity(accepted.len());
        for (reply, claim) in accepted.into_iter().zip(claims) {
            match claim {
                Claim::Done(stored) => {
                    count(reply.platform, "duplicate");
                    let mut response = decode_result(&stored);
                    response.duplicate = true;
                    outcomes[reply.index] = Some(Ok(response));
                }
                Claim::InFlight => {
                    count(reply.platform, "in_flight");
                    let message =
                        format!("reply `{}` is being delivered right now", reply.reply.id);
                    outcomes[reply.index] = Some(Err(Status::unavailable(message)));
                }
                Claim::Claimed(token) => to_send.push((reply, token)),
            }
        }
        let sends = to_send.iter().map(|(accepted, _)| {
            let span = tracing::info_span!("egress", platform = accepted.platform, reply_id = %accepted.reply.id);
            telemetry::set_remote_parent(&span, accepted.reply.trace.as_ref());
            accepted.outbound.send(&accepted.reply).instrument(span)
        });
        let results = futures::future::join_all(sends).await;
        let mut completions = Vec::new();
        let mut releases = Vec::new();
        for ((accepted, token), result) in to_send.into_iter().zip(results) {
            let outcome = self.classify(&accepted, result);
            match &outcome {
                Ok(response) => completions.push(Completion {
                    reply_id: accepted.reply.id.clone(),
                    token,
                    result: encode_result(response),
                    traceparent: accepted
                        .reply
                        .trace
                        .as_ref()
                        .map(|t| t.traceparent.clone())
                        .unwrap_or_default(),
                    record: DeliveryRecord {
                        reply: Some(accepted.reply),
                        response: Some(response.clone()),
                        finished_at_ms: clawdbot_core::now_ms(),
                    }
                    .encode_to_vec(),
                }),
                // Transient or invalid: give the lease back so that a later call may deliver.
                Err(_) => releases.push((accepted.reply.id.clone(), token)),
            }
            outcomes[accepted.index] = Some(outcome);
        }
        let ledger = self.bus.ledger();
        if let Err(error) = ledger
            .complete_many(&completions, self.settings.result_ttl)
            .await
        {
            // Delivered but not recorded: callers still get the truth (delivered), and the
            // leases keep retries away until they expire.
            telemetry::count_error(COMPONENT, error.kind());
            tracing::error!(count = completions.len(), error = %error, "delivered but could not record the results");
        }
        if let Err(error) = ledger.release_many(&releases).await {
            tracing::warn!(error = %error, "cannot release delivery leases; they will expire");
        }
        finish(outcomes)
    }

    /// Turns a platform result into the call's outcome, counting and logging it.
    fn classify(
        &self,
        accepted: &Accepted,
        result: Result<clawdbot_platforms::Delivered, OutboundError>,
    ) -> Outcome {
        let (platform, reply_id) = (accepted.platform, accepted.reply.id.as_str());
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
}

fn finish(outcomes: Vec<Option<Outcome>>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(Status::internal("reply was not handled"))))
        .collect()
}

#[tonic::async_trait]
impl Egress for EgressService {
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendResponse>, Status> {
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut reply = request
            .into_inner()
            .reply
            .ok_or_else(|| Status::invalid_argument("request has no reply"))?;
        if let Some(traceparent) = traceparent {
            reply.trace = Some(TraceContext {
                traceparent,
                tracestate: String::new(),
            });
        }
        let mut outcomes = self.deliver_batch(vec![reply]).await;
        outcomes
            .pop()
            .unwrap_or_else(|| Err(Status::internal("no outcome")))
            .map(Response::new)
    }

    async fn send_batch(
        &self,
        request: Request<SendBatchRequest>,
    ) -> Result<Response<SendBatchResponse>, Status> {
        let results = ReplySender::send_batch(self, request.into_inner().replies).await?;
        Ok(Response::new(SendBatchResponse { results }))
    }
}

/// The direct call a worker in the same process makes.
#[async_trait::async_trait]
impl ReplySender for EgressService {
    async fn send_batch(&self, replies: Vec<Reply>) -> Result<Vec<SendResult>, Status> {
        if replies.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "{} replies in one batch; at most {MAX_BATCH}",
                replies.len()
            )));
        }
        Ok(self
            .deliver_batch(replies)
            .await
            .into_iter()
            .map(|outcome| SendResult {
                result: Some(match outcome {
                    Ok(response) => send_result::Result::Response(response),
                    Err(status) => send_result::Result::Error(SendError {
                        code: status.code() as i32,
                        message: status.message().to_string(),
                    }),
                }),
            })
            .collect())
    }
}

fn count(platform: &'static str, outcome: &'static str) {
    metrics::counter!(EGRESS_DELIVERIES_TOTAL, "platform" => platform, "outcome" => outcome)
        .increment(1);
}

/// The stored result: the SendResponse as JSON (the ledger holds text).
fn encode_result(response: &SendResponse) -> String {
    serde_json::json!({
        "status": response.status,
        "platform_message_id": response.platform_message_id,
        "error": response.error,
        "attempts": response.attempts,
        "notes": response.notes,
    })
    .to_string()
}

fn decode_result(stored: &str) -> SendResponse {
    let value: serde_json::Value = serde_json::from_str(stored).unwrap_or_default();
    let text = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let number = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default()
    };
    SendResponse {
        status: number("status") as i32,
        platform_message_id: text("platform_message_id"),
        error: text("error"),
        duplicate: false,
        attempts: number("attempts") as u32,
        notes: value
            .get("notes")
            .and_then(|v| v.as_array())
            .map(|notes| {
                notes
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
