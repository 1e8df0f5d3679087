//! Replies through QQ's OpenAPI, holding QQ's rules before any call: only replies (proactive
//! messages stopped on 2025-04-21), within the reply window after the message, at most
//! `max_replies` per message, each with its own `msg_seq` — allocated by one atomic counter in
//! the shared state, so that egress replicas never reuse one.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_core::proto::{Reply, segment::Kind as SegmentKind};

use super::QqReplyContext;
use clawdbot_core::shared::SharedState;
use serde_json::{Value, json};

use super::{NAME, QqConfig};
use crate::token::{AccessTokens, FetchedToken, TokenSource, shared_error};
use crate::{Delivered, Outbound, OutboundError};

pub use clawdbot_core::telemetry::QUOTA_REFUSALS_TOTAL;

/// The outbound half of one QQ bot.
pub struct QqOutbound {
    config: QqConfig,
    client: reqwest::Client,
    tokens: AccessTokens,
    shared: Arc<dyn SharedState>,
}

struct GetAppAccessToken<'a> {
    client: &'a reqwest::Client,
    config: &'a QqConfig,
}

#[async_trait::async_trait]
impl TokenSource for GetAppAccessToken<'_> {
    async fn fetch(&self) -> Result<FetchedToken, OutboundError> {
        let body = json!({"appId": self.config.app_id, "clientSecret": self.config.secret});
        let unavailable = |reason: String| OutboundError::Unavailable {
            reason: format!("getAppAccessToken: {reason}"),
            attempts: 1,
        };
        let response = self
            .client
            .post(&self.config.token_url)
            .json(&body)
            .send()
            .await
            .map_err(|error| unavailable(error.without_url().to_string()))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        let token = answer["access_token"].as_str().filter(|t| !t.is_empty());
        let Some(token) = token else {
            if status.is_server_error() {
                return Err(unavailable(format!("http {status}")));
            }
            return Err(OutboundError::Refused {
                reason: format!(
                    "getAppAccessToken refused (http {status}: {answer}); check app_id and secret"
                ),
                attempts: 1,
            });
        };
        // QQ sends `expires_in` as a string ("7200"); accept a number too.
        let expires_in = answer["expires_in"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| answer["expires_in"].as_u64())
            .unwrap_or(7200);
        Ok(FetchedToken {
            token: token.to_string(),
            expires_in: Duration::from_secs(expires_in),
        })
    }
}

impl QqOutbound {
    /// Returns the outbound half for `config`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: QqConfig, shared: Arc<dyn SharedState>) -> Result<Self, OutboundError> {
        let client = clawdbot_core::tls::http_client_builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|error| OutboundError::InvalidReply(format!("http client: {error}")))?;
        // QQ issues a new token in the last 60 s of the old one's life (both valid then).
        let tokens = AccessTokens::new(
            &format!("qq:{}", config.app_id),
            shared.clone(),
            Duration::from_secs(55),
            Duration::from_secs(config.timeout_secs.saturating_mul(2) + 1),
        );
        Ok(Self {
            config,
            client,
            tokens,
            shared,
        })
    }

    fn refuse(&self, reason: &'static str, message: String) -> OutboundError {
        metrics::counter!(QUOTA_REFUSALS_TOTAL, "platform" => super::NAME, "reason" => reason)
            .increment(1);
        tracing::warn!(platform = super::NAME, reason, %message, "reply refused by QQ's rules before any API call");
        OutboundError::Refused {
            reason: message,
            attempts: 0,
        }
    }

    /// Checks the window and allocates this reply's `msg_seq`s (one per message part).
    async fn allocate(
        &self,
        context: &QqReplyContext,
        parts: usize,
    ) -> Result<Vec<u64>, OutboundError> {
        let rules = &self.config.replies;
        let window = match context.scene.as_str() {
            "group" => rules.group_window_secs,
            "c2c" => rules.c2c_window_secs,
            _ => rules.channel_window_secs,
        };
        let age_ms = clawdbot_core::now_ms() - context.message_at_ms;
        if age_ms > (window * 1000) as i64 {
            return Err(self.refuse(
                "window",
                format!(
                    "QQ accepts replies to a {} message for {} s; this one is {} s old",
                    context.scene,
                    window,
                    age_ms / 1000
                ),
            ));
        }
        let key = format!(
            "qq:seq:{}:{}",
            self.config.app_id,
            if context.msg_id.is_empty() {
                &context.event_id
            } else {
                &context.msg_id
            }
        );
        // One round trip reserves a number for every part of the reply.
        let parts = parts as u64;
        let last = self
            .shared
            .increment(&key, parts, Duration::from_secs(window + 600))
            .await
            .map_err(shared_error)?;
        if last > rules.max_replies {
            return Err(self.refuse(
                "count",
                format!(
                    "QQ allows {} replies per message; this would be reply {last}",
                    rules.max_replies
                ),
            ));
        }
        let seqs: Vec<u64> = (last + 1 - parts..=last).collect();
        Ok(seqs)
    }

    /// The message bodies of a reply (without msg_id/msg_seq), uploading media first.
    async fn bodies(
        &self,
        reply: &Reply,
        context: &QqReplyContext,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Value>, OutboundError> {
        let mut bodies = Vec::new();
        let mut text = String::new();
        let mut markdown = false;
        for segment in &reply.segments {
            match &segment.kind {
                Some(SegmentKind::Text(t)) => text.push_str(&t.text),
                Some(SegmentKind::Markdown(m)) => {
                    markdown = true;
                    text.push_str(&m.markdown);
                }
                Some(SegmentKind::Mention(m)) => text.push_str(&format!(
                    "@{}",
                    if m.display_name.is_empty() {
                        &m.user_id
                    } else {
                        &m.display_name
                    }
                )),
                Some(SegmentKind::Link(link)) => text.push_str(&link.url),
                Some(
                    SegmentKind::Image(media)
                    | SegmentKind::Video(media)
                    | SegmentKind::Voice(media),
                ) if media.url.starts_with("http") => {
                    let file_type = match &segment.kind {
                        Some(SegmentKind::Image(_)) => 1,
                        Some(SegmentKind::Video(_)) => 2,
                        _ => 3,
                    };
                    let file_info = self.upload(context, file_type, &media.url).await?;
                    bodies.push(
                        json!({"msg_type": 7, "content": " ", "media": {"file_info": file_info}}),
                    );
                }
                Some(other) => {
                    let note = format!(
                        "{} segment dropped: QQ replies carry text, markdown and media URLs",
                        segment_name(other)
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                None => {}
            }
        }
        if !text.trim().is_empty() {
            let body = if markdown {
                json!({"msg_type": 2, "markdown": {"content": text}})
            } else {
                json!({"msg_type": 0, "content": text})
            };
            bodies.insert(0, body);
        }
        Ok(bodies)
    }

    async fn upload(
        &self,
        context: &QqReplyContext,
        file_type: u8,
        url: &str,
    ) -> Result<Value, OutboundError> {
        let path = match context.scene.as_str() {
            "group" => format!("/v2/groups/{}/files", context.target),
            "c2c" => format!("/v2/users/{}/files", context.target),
            other => {
                return Err(OutboundError::InvalidReply(format!(
                    "QQ uploads media only for group and c2c replies, not {other}"
                )));
            }
        };
        let answer = self
            .call(
                &path,
                &json!({"file_type": file_type, "url": url, "srv_send_msg": false}),
            )
            .await?;
        Ok(answer["file_info"].clone())
    }

    /// Acknowledges a button click (`INTERACTION_CREATE`) so that the user's client stops
    /// spinning: `PUT /interactions/{id}` with `{"code": 0}` (success), as the official SDK's
    /// `on_interaction_result` does (docs/protocols/qq.md).
    ///
    /// # Errors
    /// QQ refused it, or could not be reached.
    pub async fn acknowledge_interaction(&self, interaction_id: &str) -> Result<(), OutboundError> {
        let path = format!("/interactions/{}", crate::percent_encode(interaction_id));
        self.request(reqwest::Method::PUT, &path, &json!({"code": 0}))
            .await
            .map(|_| ())
    }

    async fn call(&self, path: &str, body: &Value) -> Result<Value, OutboundError> {
        self.request(reqwest::Method::POST, path, body).await
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, OutboundError> {
        let url = format!("{}{path}", self.config.api_base());
        let source = GetAppAccessToken {
            client: &self.client,
            config: &self.config,
        };
        let mut last = String::new();
        let mut backoff = Duration::from_millis(self.config.retry_backoff_ms);
        let mut token_refreshed = false;
        for attempt in 1..=self.config.max_attempts {
            let token = self.tokens.get(&source).await?;
            let response = self
                .client
                .request(method.clone(), &url)
                .header("authorization", format!("QQBot {token}"))
                .header("x-union-appid", &self.config.app_id)
                .json(body)
                .send()
                .await;
            match response {
                Ok(response) => {
                    let status = response.status();
                    let answer: Value = response.json().await.unwrap_or_default();
                    if status.is_success()
                        && answer.get("code").is_none_or(|c| c.as_i64() == Some(0))
                    {
                        return Ok(answer);
                    }
                    if status == reqwest::StatusCode::UNAUTHORIZED && !token_refreshed {
                        token_refreshed = true;
                        self.tokens.invalidate(&token).await?;
                        continue;
                    }
                    let code = answer["code"].as_i64().unwrap_or_default();
                    let reason = format!(
                        "{path}: http {status}, code {code}: {}",
                        answer["message"].as_str().unwrap_or_default()
                    );
                    // 22009: rate limited; 304082/304083: media fetch failed; 5xx: QQ's side.
                    if !(status.is_server_error() || [22009, 304_082, 304_083].contains(&code)) {
                        return Err(OutboundError::Refused {
                            reason,
                            attempts: attempt,
                        });
                    }
                    last = reason;
                }
                Err(error) => last = format!("{path}: transport: {}", error.without_url()),
            }
            if attempt < self.config.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        Err(OutboundError::Unavailable {
            reason: last,
            attempts: self.config.max_attempts,
        })
    }
}

fn segment_name(kind: &SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Quote(_) => "quote",
        SegmentKind::File(_) => "file",
        SegmentKind::Raw(_) => "raw",
        SegmentKind::Image(_) | SegmentKind::Video(_) | SegmentKind::Voice(_) => {
            "media without an http(s) URL"
        }
        _ => "a",
    }
}

#[async_trait::async_trait]
impl Outbound for QqOutbound {
    async fn send(&self, reply: &Reply) -> Result<Delivered, OutboundError> {
        let context =
            crate::reply_context::open::<QqReplyContext>(NAME, reply.reply_context.as_ref());
        let context = match &context {
            Some(context) => context,
            _ => {
                return Err(self.refuse(
                    "proactive",
                    "QQ bots can only reply since 2025-04-21: a message needs the message it answers (proactive sends are refused)".into(),
                ));
            }
        };
        let mut notes = Vec::new();
        let bodies = self.bodies(reply, context, &mut notes).await?;
        if bodies.is_empty() {
            return Err(OutboundError::InvalidReply(
                "reply has nothing QQ can send".into(),
            ));
        }
        let seqs = self.allocate(context, bodies.len()).await?;
        let path = match context.scene.as_str() {
            "group" => format!("/v2/groups/{}/messages", context.target),
            "c2c" => format!("/v2/users/{}/messages", context.target),
            "channel" => format!("/channels/{}/messages", context.target),
            _ => format!("/dms/{}/messages", context.target),
        };
        let mut ids = Vec::new();
        for (mut body, seq) in bodies.into_iter().zip(seqs) {
            if context.msg_id.is_empty() {
                body["event_id"] = json!(context.event_id);
            } else {
                body["msg_id"] = json!(context.msg_id);
            }
            body["msg_seq"] = json!(seq);
            let answer = self.call(&path, &body).await?;
            if let Some(id) = answer["id"].as_str() {
                ids.push(id.to_string());
            }
        }
        Ok(Delivered {
            platform_message_id: ids.join(","),
            attempts: 1,
            notes,
        })
    }
}
