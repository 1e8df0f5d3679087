//! The `Send` call: validate, claim, deliver, record.

use std::sync::Arc;

use clawdbot_bus::{Bus, Claim};
use clawdbot_core::proto::egress_server::Egress;
use clawdbot_core::proto::{
    DeliveryRecord, DeliveryStatus, Reply, SendRequest, SendResponse, TraceContext,
};
use clawdbot_core::telemetry::{self, EGRESS_DELIVERIES_TOTAL};
use clawdbot_platforms::{OutboundError, Outbounds};
use prost::Message;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::EgressSettings;

const COMPONENT: &str = "egress";

/// The egress service: one per process, shared by all calls.
pub struct EgressService {
    settings: EgressSettings,
    bus: Arc<dyn Bus>,
    outbounds: Outbounds,
}

impl EgressService {
    /// Returns the service delivering through `outbounds`, with its ledger on `bus`.
    pub fn new(settings: EgressSettings, bus: Arc<dyn Bus>, outbounds: Outbounds) -> Self {
        Self {
            settings,
            bus,
            outbounds,
        }
    }

    async fn deliver(&self, reply: Reply) -> Result<SendResponse, Status> {
        if reply.id.is_empty() {
            return Err(Status::invalid_argument(
                "reply.id (the idempotency key) is empty",
            ));
        }
        let Some((platform, outbound)) = self
            .outbounds
            .iter()
            .find(|((platform, bot_id), _)| *platform == reply.platform && *bot_id == reply.bot_id)
            .map(|((platform, _), outbound)| (*platform, outbound.clone()))
        else {
            return Err(Status::invalid_argument(format!(
                "no configured account `{}` on platform `{}`",
                reply.bot_id, reply.platform
            )));
        };
        let ledger = self.bus.ledger();
        let token = match ledger
            .claim(&reply.id, self.settings.lease)
            .await
            .map_err(unavailable)?
        {
            Claim::Done(stored) => {
                count(platform, "duplicate");
                let mut response = decode_result(&stored);
                response.duplicate = true;
                return Ok(response);
            }
            Claim::InFlight => {
                count(platform, "in_flight");
                return Err(Status::unavailable(format!(
                    "reply `{}` is being delivered right now",
                    reply.id
                )));
            }
            Claim::Claimed(token) => token,
        };
        let response = match outbound.send(&reply).await {
            Ok(delivered) => SendResponse {
                status: DeliveryStatus::Delivered.into(),
                platform_message_id: delivered.platform_message_id,
                error: String::new(),
                duplicate: false,
                attempts: delivered.attempts,
            },
            Err(OutboundError::Refused { reason, attempts }) => {
                tracing::warn!(platform, reply_id = %reply.id, error = %reason, "platform refused the reply");
                telemetry::count_error(COMPONENT, "platform_refused");
                SendResponse {
                    status: DeliveryStatus::Failed.into(),
                    error: reason,
                    attempts,
                    ..Default::default()
                }
            }
            Err(error) => {
                // Transient or invalid: give the lease back so that a later call may deliver.
                if let Err(release_error) = ledger.release(&reply.id, &token).await {
                    tracing::warn!(error = %release_error, "cannot release delivery lease; it will expire");
                }
                telemetry::count_error(COMPONENT, error.kind());
                count(platform, error.kind());
                tracing::warn!(platform, reply_id = %reply.id, error = %error, "delivery failed");
                return Err(match error {
                    OutboundError::InvalidReply(reason) => Status::invalid_argument(reason),
                    other => Status::unavailable(other.to_string()),
                });
            }
        };
        let outcome = if response.status == DeliveryStatus::Delivered as i32 {
            "delivered"
        } else {
            "failed"
        };
        count(platform, outcome);
        let traceparent = reply
            .trace
            .as_ref()
            .map(|t| t.traceparent.clone())
            .unwrap_or_default();
        let record = DeliveryRecord {
            reply: Some(reply),
            response: Some(response.clone()),
            finished_at_ms: clawdbot_core::now_ms(),
        };
        let reply_id = record
            .reply
            .as_ref()
            .map(|r| r.id.as_str())
            .unwrap_or_default();
        if let Err(error) = ledger
            .complete(
                reply_id,
                &token,
                &encode_result(&response),
                self.settings.result_ttl,
                &record.encode_to_vec(),
                &traceparent,
            )
            .await
        {
            // Delivered but not recorded: the caller still gets the truth (delivered), and the
            // lease keeps a retry away until it expires.
            telemetry::count_error(COMPONENT, error.kind());
            tracing::error!(reply_id, error = %error, "delivered but could not record the result");
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl Egress for EgressService {
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendResponse>, Status> {
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let reply = request
            .into_inner()
            .reply
            .ok_or_else(|| Status::invalid_argument("request has no reply"))?;
        let span = tracing::info_span!("egress", platform = %reply.platform, reply_id = %reply.id);
        let trace = traceparent.map(|traceparent| TraceContext {
            traceparent,
            tracestate: String::new(),
        });
        telemetry::set_remote_parent(&span, trace.as_ref().or(reply.trace.as_ref()));
        self.deliver(reply)
            .instrument(span)
            .await
            .map(Response::new)
    }
}

fn count(platform: &'static str, outcome: &'static str) {
    metrics::counter!(EGRESS_DELIVERIES_TOTAL, "platform" => platform, "outcome" => outcome)
        .increment(1);
}

fn unavailable(error: clawdbot_bus::BusError) -> Status {
    telemetry::count_error(COMPONENT, error.kind());
    Status::unavailable(format!("reply ledger unavailable: {error}"))
}

/// The stored result: the SendResponse as JSON (the ledger holds text).
fn encode_result(response: &SendResponse) -> String {
    serde_json::json!({
        "status": response.status,
        "platform_message_id": response.platform_message_id,
        "error": response.error,
        "attempts": response.attempts,
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
    }
}
