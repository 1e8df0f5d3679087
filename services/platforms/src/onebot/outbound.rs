//! Sends replies through the OneBot API (`send_group_msg`, `send_private_msg`): over HTTP, or
//! over the account's WebSocket (held by an ingress, reached through [`super::ws::WsCaller`]).

use std::time::Duration;

use clawdbot_core::proto::{ConversationKind, Reply};
use serde::Deserialize;
use serde_json::json;

use std::sync::Arc;

use super::forward_message;
use super::segments::to_onebot;
use super::ws::WsCaller;
use super::{OneBotConfig, Transport};
use crate::late_answer::{self, Answer, UnknownOutcome};
use crate::{Delivered, Outbound, OutboundError};

/// The outbound half of one OneBot account.
pub struct OneBotOutbound {
    config: OneBotConfig,
    client: reqwest::Client,
    /// Calls over the account's socket (transports `ws-*`).
    socket: Option<Arc<WsCaller>>,
    /// Bounds the calls in flight to `max_in_flight` (a per-account queue).
    in_flight: tokio::sync::Semaphore,
}

/// The API's answer: `{"status","retcode","data","message","wording"}`.
#[derive(Debug, Deserialize)]
struct ApiResponse {
    #[serde(default)]
    retcode: i64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    /// NapCat's explanation when retcode != 0.
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    wording: Option<String>,
}

impl OneBotOutbound {
    /// Returns the outbound half for `config`.
    ///
    /// # Errors
    /// The HTTP client cannot be built, or the account talks over a WebSocket and `socket` is
    /// none (no relay to reach its holder).
    pub fn new(config: OneBotConfig, socket: Option<Arc<WsCaller>>) -> Result<Self, OutboundError> {
        if config.transport != Transport::Http && socket.is_none() {
            return Err(OutboundError::InvalidReply(format!(
                "account `{}` talks over a websocket, and this process has no relay to its holder",
                config.id
            )));
        }
        let client = clawdbot_core::tls::http_client_builder()
            // The whole call's timeout is `late_answer::await_answer`'s: a call past it may have
            // arrived, so it is not cut off (see `attempt`).
            .connect_timeout(Duration::from_secs(config.timeout_secs))
            .pool_max_idle_per_host(config.max_in_flight)
            .build()
            .map_err(|error| OutboundError::InvalidReply(format!("http client: {error}")))?;
        let in_flight = tokio::sync::Semaphore::new(config.max_in_flight);
        Ok(Self {
            config,
            client,
            socket,
            in_flight,
        })
    }

    /// Returns the API action and its body for `reply`.
    fn request(&self, reply: &Reply) -> Result<(&'static str, serde_json::Value), OutboundError> {
        let conversation = reply
            .conversation
            .as_ref()
            .ok_or_else(|| OutboundError::InvalidReply("reply has no conversation".into()))?;
        let target: i64 = conversation.id.parse().map_err(|_| {
            OutboundError::InvalidReply(format!(
                "conversation id `{}` is not a QQ number",
                conversation.id
            ))
        })?;
        let message = to_onebot(&reply.segments);
        let limit = self.config.forward_over_chars;
        if forward_message::too_long(&message, limit) {
            let nodes = forward_message::nodes(
                &message,
                limit,
                &self.config.forward_name,
                self.config.self_id,
            );
            return match conversation.kind() {
                ConversationKind::Group => Ok((
                    "send_group_forward_msg",
                    json!({"group_id": target, "messages": nodes}),
                )),
                ConversationKind::Private => Ok((
                    "send_private_forward_msg",
                    json!({"user_id": target, "messages": nodes}),
                )),
                other => Err(OutboundError::InvalidReply(format!(
                    "OneBot cannot send to a {} conversation",
                    other.as_str_name()
                ))),
            };
        }
        match conversation.kind() {
            ConversationKind::Group => Ok((
                "send_group_msg",
                json!({"group_id": target, "message": message}),
            )),
            ConversationKind::Private => Ok((
                "send_private_msg",
                json!({"user_id": target, "message": message}),
            )),
            other => Err(OutboundError::InvalidReply(format!(
                "OneBot cannot send to a {} conversation",
                other.as_str_name()
            ))),
        }
    }

    /// One attempt of API `action`.
    async fn attempt(&self, action: &str, body: &serde_json::Value) -> Attempt {
        // The semaphore is never closed, so acquiring only fails if that changes.
        let Ok(slot) = self.in_flight.acquire().await else {
            return Attempt::Transient("outbound queue closed".to_string());
        };
        let call = self.call(action, body);
        let timeout = Duration::from_secs(self.config.timeout_secs);
        let late = Duration::from_secs(self.config.late_answer_secs);
        match late_answer::await_answer(call, timeout, late, slot).await {
            Answer::OnTime(attempt) => attempt,
            Answer::Late(attempt) => {
                tracing::warn!(
                    action,
                    late_after_secs = self.config.timeout_secs,
                    "onebot api answered after its timeout; the answer counts"
                );
                attempt
            }
            Answer::Unanswered => Attempt::Unknown(format!(
                "no answer within {} s (+{} s late-answer wait); it may have been delivered",
                self.config.timeout_secs, self.config.late_answer_secs
            )),
        }
    }

    /// The call and its answer, over the account's transport.
    async fn call(&self, action: &str, body: &serde_json::Value) -> Attempt {
        match &self.socket {
            Some(socket) if self.config.transport != Transport::Http => {
                match socket.call(&self.config.id, action, body.clone()).await {
                    Ok(answer) => match serde_json::from_value::<ApiResponse>(answer) {
                        Ok(api) => interpret(api),
                        Err(error) => Attempt::Refused(format!("unreadable API answer: {error}")),
                    },
                    Err(reason) => Attempt::Transient(reason),
                }
            }
            _ => {
                let url = format!("{}/{action}", self.config.api_root.trim_end_matches('/'));
                self.http_call(&url, body).await
            }
        }
    }

    /// The HTTP call and its answer.
    async fn http_call(&self, url: &str, body: &serde_json::Value) -> Attempt {
        let mut request = self.client.post(url).json(body);
        if let Some(token) = &self.config.access_token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Attempt::Transient(format!("transport: {error}")),
        };
        let status = response.status();
        if status.is_server_error() {
            return Attempt::Transient(format!("http {status}"));
        }
        if !status.is_success() {
            return Attempt::Refused(format!("http {status}"));
        }
        match response.json().await {
            Ok(api) => interpret(api),
            Err(error) => Attempt::Refused(format!("unreadable API response: {error}")),
        }
    }
}

/// What an API answer means, whichever transport brought it.
fn interpret(api: ApiResponse) -> Attempt {
    // retcode 1 is "async": queued by the implementation, which counts as accepted.
    if api.retcode == 0 || api.retcode == 1 {
        let message_id = api
            .data
            .as_ref()
            .and_then(|data| data.get("message_id"))
            .map(|id| id.to_string())
            .unwrap_or_default();
        return Attempt::Accepted(message_id);
    }
    let explanation = api.wording.or(api.message).unwrap_or(api.status);
    Attempt::Refused(format!("retcode {}: {explanation}", api.retcode))
}

/// How one attempt ended.
enum Attempt {
    /// Accepted, with the platform's message id.
    Accepted(String),
    /// Refused for good (4xx, a failing retcode).
    Refused(String),
    /// Not accepted, worth another attempt (transport error before an answer, 5xx).
    Transient(String),
    /// No answer at all: it may have been delivered.
    Unknown(String),
}

#[async_trait::async_trait]
impl Outbound for OneBotOutbound {
    async fn send(&self, reply: &Reply) -> Result<Delivered, OutboundError> {
        let (action, body) = self.request(reply)?;
        let mut backoff = Duration::from_millis(self.config.retry_backoff_ms);
        let mut last_error = String::new();
        for attempt in 1..=self.config.max_attempts {
            match self.attempt(action, &body).await {
                Attempt::Accepted(platform_message_id) => {
                    return Ok(Delivered {
                        platform_message_id,
                        attempts: attempt,
                        notes: Vec::new(),
                    });
                }
                Attempt::Refused(reason) => {
                    return Err(OutboundError::Refused {
                        reason,
                        attempts: attempt,
                    });
                }
                Attempt::Unknown(reason)
                    if self.config.unknown_outcome == UnknownOutcome::GiveUp =>
                {
                    tracing::warn!(action, attempt, error = %reason, "onebot send outcome unknown; not sent again (unknown_outcome: give_up)");
                    return Err(OutboundError::Refused {
                        reason,
                        attempts: attempt,
                    });
                }
                Attempt::Transient(reason) | Attempt::Unknown(reason) => {
                    tracing::warn!(action, attempt, error = %reason, "onebot api call failed");
                    last_error = reason;
                }
            }
            if attempt < self.config.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        Err(OutboundError::Unavailable {
            reason: last_error,
            attempts: self.config.max_attempts,
        })
    }
}
