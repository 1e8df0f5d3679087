//! Sends replies: to a configured custom group robot (signed webhook, 20 a minute held
//! cluster-wide), through the message's session webhook while it is valid, else through the
//! robot OpenAPI (one-to-one batch send, group send) with the app's access token.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_core::proto::{ConversationKind, Reply};

use super::DingTalkReplyContext;
use clawdbot_core::shared::SharedState;
use serde_json::{Value, json};

use super::api::{ApiClient, CallError, redact};
use super::compose::{RobotMessage, compose, openapi_form};
use super::{DingTalkConfig, GroupRobotConfig, NAME, sign};
use crate::send_limit::wait_for_slot;
use crate::token::{AccessTokens, FetchedToken, TokenSource};
use crate::{Delivered, Outbound, OutboundError};

/// The outbound half of one DingTalk app and its custom robots.
pub struct DingTalkOutbound {
    config: DingTalkConfig,
    api: ApiClient,
    tokens: AccessTokens,
    shared: Arc<dyn SharedState>,
}

/// `oauth2/accessToken`: the new API's token from AppKey and AppSecret.
struct AccessTokenSource<'a> {
    api: &'a ApiClient,
    config: &'a DingTalkConfig,
}

#[async_trait::async_trait]
impl TokenSource for AccessTokenSource<'_> {
    async fn fetch(&self) -> Result<FetchedToken, OutboundError> {
        let url = format!(
            "{}/v1.0/oauth2/accessToken",
            self.config.api_base.trim_end_matches('/')
        );
        let body = json!({"appKey": self.config.app_key, "appSecret": self.config.app_secret});
        let (answer, attempts) = self.api.post(&url, None, &body).await;
        let answer = answer.map_err(|error| match error {
            CallError::Unavailable { reason } => OutboundError::Unavailable {
                reason: format!("accessToken: {reason}"),
                attempts,
            },
            refused => OutboundError::Refused {
                reason: format!("accessToken refused ({refused}); check app_key and app_secret"),
                attempts,
            },
        })?;
        let token = answer
            .get("accessToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OutboundError::Unavailable {
                reason: "accessToken answered without a token".into(),
                attempts,
            })?;
        let expires_in = answer
            .get("expireIn")
            .and_then(Value::as_u64)
            .unwrap_or(7200);
        Ok(FetchedToken {
            token: token.to_string(),
            expires_in: Duration::from_secs(expires_in),
        })
    }
}

#[derive(Default)]
struct Progress {
    attempts: u32,
    notes: Vec<String>,
    ids: Vec<String>,
}

impl DingTalkOutbound {
    /// Returns the outbound half for `config`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        config: DingTalkConfig,
        shared: Arc<dyn SharedState>,
    ) -> Result<Self, OutboundError> {
        let api = ApiClient::new(&config).map_err(OutboundError::InvalidReply)?;
        let tokens = AccessTokens::new(
            &format!("dingtalk:{}", config.app_key),
            shared.clone(),
            Duration::from_secs(300),
            Duration::from_secs(config.timeout_secs.saturating_mul(2) + 1),
        );
        Ok(Self {
            config,
            api,
            tokens,
            shared,
        })
    }

    async fn send_robot(
        &self,
        robot: &GroupRobotConfig,
        messages: &[RobotMessage],
        progress: &mut Progress,
    ) -> Result<(), OutboundError> {
        let base = robot.webhook.clone().unwrap_or_else(|| {
            format!(
                "{}/robot/send?access_token={}",
                self.config.oapi_base.trim_end_matches('/'),
                robot.access_token
            )
        });
        let schedule = format!("dingtalk:robot:{}:{}", self.config.id, robot.id);
        for message in messages {
            wait_for_slot(
                self.shared.as_ref(),
                &schedule,
                &self.config.robot_limit,
                &format!("group robot `{}`", robot.id),
            )
            .await?;
            // Signed per request: a timestamp reused for long is refused ("invalid timestamp").
            let url = match &robot.secret {
                Some(secret) => {
                    let timestamp = clawdbot_core::now_ms().to_string();
                    let signature = sign::url_encode(&sign::sign(secret, &timestamp));
                    format!("{base}&timestamp={timestamp}&sign={signature}")
                }
                None => base.clone(),
            };
            let (answer, attempts) = self.api.post(&url, None, &message.0).await;
            progress.attempts += attempts;
            answer.map_err(|error| classify(&format!("robot `{}`", robot.id), error, attempts))?;
        }
        Ok(())
    }

    async fn send_session(
        &self,
        webhook: &str,
        messages: &[RobotMessage],
        progress: &mut Progress,
    ) -> Result<(), OutboundError> {
        for message in messages {
            let (answer, attempts) = self.api.post(webhook, None, &message.0).await;
            progress.attempts += attempts;
            answer.map_err(|error| classify("session webhook", error, attempts))?;
        }
        Ok(())
    }

    async fn send_openapi(
        &self,
        reply: &Reply,
        group: bool,
        target: &str,
        messages: &[RobotMessage],
        progress: &mut Progress,
    ) -> Result<(), OutboundError> {
        let base = self.config.api_base.trim_end_matches('/');
        let robot_code = match context_of(reply) {
            Some(context) if !context.robot_code.is_empty() => context.robot_code,
            _ => self.config.robot_code().to_string(),
        };
        for message in messages {
            let Some((msg_key, msg_param)) = openapi_form(message) else {
                progress.notes.push(format!(
                    "{} message dropped: the robot OpenAPI has no template for it",
                    message.0["msgtype"]
                ));
                continue;
            };
            let (url, body) = if group {
                (
                    format!("{base}/v1.0/robot/groupMessages/send"),
                    json!({"robotCode": robot_code, "openConversationId": target, "msgKey": msg_key, "msgParam": msg_param}),
                )
            } else {
                (
                    format!("{base}/v1.0/robot/oToMessages/batchSend"),
                    json!({"robotCode": robot_code, "userIds": target.split('|').collect::<Vec<_>>(), "msgKey": msg_key, "msgParam": msg_param}),
                )
            };
            let answer = self.call_with_token(&url, &body, progress).await?;
            if let Some(key) = answer.get("processQueryKey").and_then(Value::as_str) {
                progress.ids.push(key.to_string());
            }
            for field in ["invalidStaffIdList", "flowControlledStaffIdList"] {
                let ids: Vec<&str> = answer
                    .get(field)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !ids.is_empty() {
                    progress.notes.push(format!("{field}: {}", ids.join("|")));
                }
            }
        }
        if messages.iter().any(|m| {
            m.0.get("at").is_some_and(|at| {
                at["atUserIds"].as_array().is_some_and(|a| !a.is_empty()) || at["isAtAll"] == true
            })
        }) {
            progress.notes.push(
                "mentions not sent: the robot OpenAPI has no @ (the session webhook had expired)"
                    .into(),
            );
        }
        Ok(())
    }

    async fn call_with_token(
        &self,
        url: &str,
        body: &Value,
        progress: &mut Progress,
    ) -> Result<Value, OutboundError> {
        let source = AccessTokenSource {
            api: &self.api,
            config: &self.config,
        };
        for round in 0..2 {
            let token = self.tokens.get(&source).await?;
            let (answer, attempts) = self.api.post(url, Some(&token), body).await;
            progress.attempts += attempts;
            match answer {
                Ok(answer) => return Ok(answer),
                Err(error) if round == 0 && error.is_token_rejected() => {
                    tracing::info!(error = %error, "dingtalk rejected the access token; fetching a new one");
                    self.tokens.invalidate(&token).await?;
                }
                Err(error) => return Err(classify(redact(url), error, progress.attempts)),
            }
        }
        Err(OutboundError::Unavailable {
            reason: "a fresh access token was rejected too".into(),
            attempts: progress.attempts,
        })
    }
}

#[async_trait::async_trait]
impl Outbound for DingTalkOutbound {
    async fn send(&self, reply: &Reply) -> Result<Delivered, OutboundError> {
        let conversation = reply
            .conversation
            .as_ref()
            .filter(|c| !c.id.is_empty())
            .ok_or_else(|| OutboundError::InvalidReply("reply has no conversation".into()))?;
        let group = match conversation.kind() {
            ConversationKind::Group => true,
            ConversationKind::Private => false,
            other => {
                return Err(OutboundError::InvalidReply(format!(
                    "DingTalk cannot send to a {} conversation",
                    other.as_str_name()
                )));
            }
        };
        let (messages, notes) = compose(&reply.segments);
        if messages.is_empty() {
            return Err(OutboundError::InvalidReply(
                "reply has nothing DingTalk can send".into(),
            ));
        }
        let mut progress = Progress {
            notes,
            ..Default::default()
        };
        if let Some(robot) = self
            .config
            .group_robots
            .iter()
            .find(|r| group && r.id == conversation.id)
        {
            self.send_robot(robot, &messages, &mut progress).await?;
        } else {
            let session = match context_of(reply) {
                Some(context) if !context.session_webhook.is_empty() => {
                    let margin = (self.config.session_webhook_margin_secs * 1000) as i64;
                    (context.session_webhook_expires_at_ms - margin > clawdbot_core::now_ms())
                        .then(|| context.session_webhook.clone())
                }
                _ => None,
            };
            match session {
                Some(webhook) => {
                    self.send_session(&webhook, &messages, &mut progress)
                        .await?
                }
                None => {
                    self.send_openapi(reply, group, &conversation.id, &messages, &mut progress)
                        .await?
                }
            }
        }
        Ok(Delivered {
            platform_message_id: progress.ids.join(","),
            attempts: progress.attempts.max(1),
            notes: progress.notes,
        })
    }
}

/// A DingTalk error as a delivery error: throttling and outages are retried later, anything
/// else (sign mismatch, unknown token, bad parameters) is a refusal with DingTalk's words.
fn classify(what: &str, error: CallError, attempts: u32) -> OutboundError {
    if error.is_retryable() {
        OutboundError::Unavailable {
            reason: format!("{what}: {error}"),
            attempts,
        }
    } else {
        OutboundError::Refused {
            reason: format!("{what}: {error}"),
            attempts,
        }
    }
}

/// The reply context of the message `reply` answers, if DingTalk wrote one.
fn context_of(reply: &Reply) -> Option<DingTalkReplyContext> {
    crate::reply_context::open(NAME, reply.reply_context.as_ref())
}
