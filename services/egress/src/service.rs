//! `Send` and `SendBatch`: validate, claim (one ledger round trip per batch), deliver (per
//! conversation in order, conversations concurrently, in tasks the call cannot cancel), and
//! answer; the recorder writes the outcomes.

use std::sync::Arc;

use clawdbot_bus::{Bus, Claim};
use clawdbot_core::egress::ReplySender;
use clawdbot_core::proto::egress_server::Egress;
use clawdbot_core::proto::{
    Reply, SendBatchRequest, SendBatchResponse, SendError, SendRequest, SendResponse, SendResult,
    TraceContext, send_result,
};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry;
use clawdbot_platforms::{Outbound, Outbounds};
use tonic::{Request, Response, Status};

use crate::EgressSettings;
use crate::delivery::{self, Claimed, Outcome};
use crate::recorder::Recorder;

const COMPONENT: &str = "egress";
/// Replies per `SendBatch` call; larger batches are refused so one call cannot hog the service.
pub const MAX_BATCH: usize = 1000;

/// The egress service: one per process, shared by all calls.
pub struct EgressService {
    settings: EgressSettings,
    bus: Arc<dyn Bus>,
    outbounds: Outbounds,
    recorder: Arc<Recorder>,
    /// Deliveries run as tasks of their own that shutdown waits for.
    shutdown: Shutdown,
}

/// A reply that passed validation, with its platform's sender.
struct Accepted {
    index: usize,
    platform: &'static str,
    outbound: Arc<dyn Outbound>,
    reply: Reply,
}

impl EgressService {
    /// Returns the service delivering through `outbounds`, with its ledger on `bus`; its
    /// deliveries and their records finish before `shutdown` lets the process exit.
    pub fn new(
        settings: EgressSettings,
        bus: Arc<dyn Bus>,
        outbounds: Outbounds,
        shutdown: &Shutdown,
    ) -> Self {
        let recorder = Arc::new(Recorder::start(
            bus.clone(),
            settings.lease,
            settings.result_ttl,
        ));
        Self {
            settings,
            bus,
            outbounds,
            recorder,
            shutdown: shutdown.clone(),
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

    /// Delivers `replies`, each at most once across all calls, those of one conversation in
    /// request order; outcomes in request order. Once a reply is claimed its delivery runs
    /// to its end and is recorded even if this call is dropped.
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
        let claimed = self.sort_claims(accepted, claims, &mut outcomes);
        let running: Vec<_> = delivery::chains(claimed)
            .into_iter()
            .map(|chain| {
                self.shutdown
                    .spawn(delivery::run_chain(chain, self.recorder.clone()))
            })
            .collect();
        for finished in futures::future::join_all(running).await {
            match finished {
                Ok(chain) => {
                    for (index, outcome) in chain {
                        outcomes[index] = Some(outcome);
                    }
                }
                // A panicking sender: its replies read "not handled" and their leases expire.
                Err(error) => tracing::error!(error = %error, "a delivery task failed"),
            }
        }
        finish(outcomes)
    }

    /// Answers at once the replies delivered before (their stored result) or being delivered
    /// elsewhere (unavailable, as are later replies of that conversation, which would overtake
    /// it); returns the ones this call claimed, to deliver.
    fn sort_claims(
        &self,
        accepted: Vec<Accepted>,
        claims: Vec<Claim>,
        outcomes: &mut [Option<Outcome>],
    ) -> Vec<Claimed> {
        let mut claimed = Vec::with_capacity(accepted.len());
        // Conversations with a reply being delivered elsewhere: their later replies in this
        // call wait too, or they would overtake it.
        let mut behind_in_flight = std::collections::HashSet::new();
        for (reply, claim) in accepted.into_iter().zip(claims) {
            let conversation = delivery::conversation_key(reply.platform, &reply.reply);
            let claim = match claim {
                Claim::Claimed(token) if behind_in_flight.contains(&conversation) => {
                    self.recorder.release(reply.reply.id.clone(), token);
                    let message = format!(
                        "reply `{}` waits for an earlier reply of its conversation being delivered right now",
                        reply.reply.id
                    );
                    outcomes[reply.index] = Some(Err(Status::unavailable(message)));
                    continue;
                }
                Claim::InFlight => {
                    behind_in_flight.insert(conversation);
                    Claim::InFlight
                }
                other => other,
            };
            match claim {
                Claim::Done(stored) => {
                    delivery::count(reply.platform, "duplicate");
                    let mut response = crate::result::decode(&stored);
                    response.duplicate = true;
                    outcomes[reply.index] = Some(Ok(response));
                }
                Claim::InFlight => {
                    delivery::count(reply.platform, "in_flight");
                    let message =
                        format!("reply `{}` is being delivered right now", reply.reply.id);
                    outcomes[reply.index] = Some(Err(Status::unavailable(message)));
                }
                Claim::Claimed(token) => {
                    self.recorder.hold(&reply.reply.id, &token);
                    claimed.push(Claimed {
                        index: reply.index,
                        platform: reply.platform,
                        outbound: reply.outbound,
                        reply: reply.reply,
                        token,
                    });
                }
            }
        }
        claimed
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
