//! Sends replies as WeCom app messages (`message/send`, to the member a message came from) or
//! through a group robot (`webhook/send`, for `group: <robot name>` targets), holding WeCom's
//! send limits cluster-wide so that nothing is silently dropped by WeCom.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clawdbot_core::proto::{ConversationKind, Media, Reply};
use clawdbot_core::shared::SharedState;
use md5::Digest;
use serde_json::{Value, json};

use super::WeComConfig;
use super::api::{ApiClient, Body, CallError, TOKEN_ERRCODES};
use super::compose::{Channel, Part, compose};
use super::gettoken::GetToken;
use super::media::{self, MediaIds};
use crate::send_limit::wait_for_slot;
use crate::token::AccessTokens;
use crate::{Delivered, Outbound, OutboundError};

/// Group robot images: at most 2 MB.
const ROBOT_IMAGE_LIMIT: usize = 2 * 1024 * 1024;

/// The outbound half of one WeCom app and its group robots.
pub struct WeComOutbound {
    config: WeComConfig,
    api: ApiClient,
    tokens: AccessTokens,
    media_ids: MediaIds,
    shared: Arc<dyn SharedState>,
}

/// What sending the parts of one reply added up to.
#[derive(Default)]
struct Progress {
    message_ids: Vec<String>,
    attempts: u32,
    notes: Vec<String>,
}

impl WeComOutbound {
    /// Returns the outbound half for `config`, sharing tokens, media ids and send schedules
    /// through `shared`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: WeComConfig, shared: Arc<dyn SharedState>) -> Result<Self, OutboundError> {
        let api = ApiClient::new(&config).map_err(OutboundError::InvalidReply)?;
        Ok(Self {
            tokens: AccessTokens::new(
                &format!("wecom:{}:{}", config.corp_id, config.agent_id),
                shared.clone(),
                Duration::from_secs(config.token_refresh_before_secs),
                Duration::from_secs(config.timeout_secs.saturating_mul(2) + 1),
            ),
            media_ids: MediaIds::new(&config.corp_id, shared.clone()),
            api,
            shared,
            config,
        })
    }

    /// Calls an API that takes `access_token`; a token WeCom rejects is dropped and the call
    /// made once more with a fresh one.
    async fn call_with_token(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<(Value, u32), OutboundError> {
        let mut attempts = 0;
        for round in 0..2 {
            let source = GetToken {
                api: &self.api,
                corp_id: &self.config.corp_id,
                secret: &self.config.secret,
            };
            let token = self.tokens.get(&source).await?;
            let mut full_query = vec![("access_token", token.as_str())];
            full_query.extend_from_slice(query);
            let body = match &body {
                Body::None => Body::None,
                Body::Json(json) => Body::Json(json),
                Body::File { name, mime, bytes } => Body::File { name, mime, bytes },
            };
            let (answer, used) = self.api.call(path, &full_query, body).await;
            attempts += used;
            match answer {
                Ok(answer) => return Ok((answer, attempts)),
                Err(CallError::Api { errcode, errmsg })
                    if round == 0 && TOKEN_ERRCODES.contains(&errcode) =>
                {
                    tracing::info!(
                        errcode,
                        errmsg,
                        "wecom rejected the access token; fetching a new one"
                    );
                    self.tokens.invalidate(&token).await?;
                }
                Err(error) => return Err(api_error(path, error, attempts)),
            }
        }
        Err(OutboundError::Unavailable {
            reason: format!("{path}: a fresh access token was rejected too"),
            attempts,
        })
    }

    /// Returns the media id of `media` as `kind`, uploading it (once) if needed.
    async fn app_media_id(
        &self,
        kind: &str,
        media: &Media,
    ) -> Result<(String, u32), OutboundError> {
        if !media.file_id.is_empty() {
            return Ok((media.file_id.clone(), 0));
        }
        if let Some(id) = self.media_ids.get(kind, &media.url).await? {
            return Ok((id, 0));
        }
        let bytes = media::load_bytes(self.api.http(), media).await?;
        let name = media::file_name(media, kind);
        let mime = if media.mime.is_empty() {
            "application/octet-stream"
        } else {
            &media.mime
        };
        let body = Body::File {
            name: &name,
            mime,
            bytes: &bytes,
        };
        let (answer, attempts) = self
            .call_with_token("/cgi-bin/media/upload", &[("type", kind)], body)
            .await?;
        let id = media_id_of(&answer, attempts)?;
        self.media_ids.put(kind, &media.url, &id).await?;
        Ok((id, attempts))
    }

    async fn send_app(&self, user: &str, reply: &Reply) -> Result<Delivered, OutboundError> {
        let channel = Channel::App {
            markdown: self.config.markdown,
        };
        let (parts, notes) = compose(&reply.segments, channel);
        if parts.is_empty() {
            return Err(OutboundError::InvalidReply(
                "reply has nothing WeCom can send".into(),
            ));
        }
        let mut progress = Progress {
            notes,
            ..Default::default()
        };
        // `touser` may name several members (`a|b`): each has its own per-member limit.
        let schedules: Vec<(String, &str)> = user
            .split('|')
            .map(|member| {
                let key = format!(
                    "wecom:member:{}:{}:{member}",
                    self.config.corp_id, self.config.agent_id
                );
                (key, member)
            })
            .collect();
        for part in parts {
            let mut body = match part {
                Part::Body(body) => body,
                Part::Media { kind, media } => {
                    let (id, attempts) = self.app_media_id(kind, &media).await?;
                    progress.attempts += attempts;
                    json!({"msgtype": kind, kind: {"media_id": id}})
                }
                // Only the robot channel composes these.
                Part::RobotImage(_) => continue,
            };
            body["touser"] = json!(user);
            body["agentid"] = json!(self.config.agent_id);
            for (schedule, member) in &schedules {
                wait_for_slot(
                    self.shared.as_ref(),
                    schedule,
                    &self.config.member_limit,
                    &format!("member `{member}`"),
                )
                .await?;
            }
            let (answer, attempts) = self
                .call_with_token("/cgi-bin/message/send", &[], Body::Json(&body))
                .await
                .map_err(|error| with_progress(error, &progress))?;
            progress.attempts += attempts;
            if let Some(id) = answer.get("msgid").and_then(Value::as_str) {
                progress.message_ids.push(id.to_string());
            }
            for field in [
                "invaliduser",
                "invalidparty",
                "invalidtag",
                "unlicenseduser",
            ] {
                if let Some(invalid) = answer
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    let note = format!("{field}: {invalid}");
                    if !progress.notes.contains(&note) {
                        progress.notes.push(note);
                    }
                }
            }
        }
        Ok(delivered(progress))
    }

    async fn send_robot(&self, name: &str, reply: &Reply) -> Result<Delivered, OutboundError> {
        let robot = self.config.robots.get(name).ok_or_else(|| {
            let known: Vec<&String> = self.config.robots.keys().collect();
            OutboundError::InvalidReply(format!(
                "no group robot `{name}` in wechat_enterprise `{}` (robots: {known:?})",
                self.config.id
            ))
        })?;
        let (parts, notes) = compose(&reply.segments, Channel::Robot);
        if parts.is_empty() {
            return Err(OutboundError::InvalidReply(
                "reply has nothing WeCom can send".into(),
            ));
        }
        let mut progress = Progress {
            notes,
            ..Default::default()
        };
        let schedule = format!("wecom:robot:{}:{name}", self.config.id);
        let key = [("key", robot.key.as_str())];
        for part in parts {
            let body = match part {
                Part::Body(body) => body,
                Part::RobotImage(media) => {
                    let bytes = media::load_bytes(self.api.http(), &media).await?;
                    if bytes.len() > ROBOT_IMAGE_LIMIT {
                        return Err(OutboundError::InvalidReply(format!(
                            "robot images are at most 2 MB, this one is {} bytes",
                            bytes.len()
                        )));
                    }
                    json!({"msgtype": "image", "image": {
                        "base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
                        "md5": hex::encode(md5::Md5::digest(&bytes)),
                    }})
                }
                Part::Media { kind, media } => {
                    let bytes = media::load_bytes(self.api.http(), &media).await?;
                    let file_name = media::file_name(&media, kind);
                    let body = Body::File {
                        name: &file_name,
                        mime: "application/octet-stream",
                        bytes: &bytes,
                    };
                    let (answer, attempts) = self
                        .api
                        .call(
                            "/cgi-bin/webhook/upload_media",
                            &[key[0], ("type", kind)],
                            body,
                        )
                        .await;
                    progress.attempts += attempts;
                    let answer = answer
                        .map_err(|error| api_error("webhook/upload_media", error, attempts))?;
                    let id = media_id_of(&answer, attempts)?;
                    json!({"msgtype": kind, kind: {"media_id": id}})
                }
            };
            wait_for_slot(
                self.shared.as_ref(),
                &schedule,
                &self.config.robot_limit,
                &format!("group robot `{name}`"),
            )
            .await?;
            let (answer, attempts) = self
                .api
                .call("/cgi-bin/webhook/send", &key, Body::Json(&body))
                .await;
            progress.attempts += attempts;
            answer.map_err(|error| {
                with_progress(api_error("webhook/send", error, attempts), &progress)
            })?;
        }
        Ok(delivered(progress))
    }
}

#[async_trait::async_trait]
impl Outbound for WeComOutbound {
    async fn send(&self, reply: &Reply) -> Result<Delivered, OutboundError> {
        let conversation = reply
            .conversation
            .as_ref()
            .ok_or_else(|| OutboundError::InvalidReply("reply has no conversation".into()))?;
        if conversation.id.is_empty() {
            return Err(OutboundError::InvalidReply(
                "reply has an empty conversation id".into(),
            ));
        }
        match conversation.kind() {
            ConversationKind::Private => self.send_app(&conversation.id, reply).await,
            ConversationKind::Group => self.send_robot(&conversation.id, reply).await,
            other => Err(OutboundError::InvalidReply(format!(
                "WeCom cannot send to a {} conversation",
                other.as_str_name()
            ))),
        }
    }
}

fn delivered(progress: Progress) -> Delivered {
    Delivered {
        platform_message_id: progress.message_ids.join(","),
        attempts: progress.attempts.max(1),
        notes: progress.notes,
    }
}

fn media_id_of(answer: &Value, attempts: u32) -> Result<String, OutboundError> {
    answer
        .get("media_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| OutboundError::Unavailable {
            reason: "upload answered without a media_id".into(),
            attempts,
        })
}

/// An API error as a delivery error: busy/unreachable and frequency limits are worth a later
/// retry, anything else is WeCom refusing this message.
fn api_error(path: &str, error: CallError, attempts: u32) -> OutboundError {
    match error {
        CallError::Api {
            errcode: 45009,
            errmsg,
        } => OutboundError::Unavailable {
            reason: format!("{path}: API frequency exceeded (45009: {errmsg})"),
            attempts,
        },
        CallError::Api { errcode, errmsg } => OutboundError::Refused {
            reason: format!("{path}: errcode {errcode}: {errmsg}"),
            attempts,
        },
        CallError::Unavailable { reason } => OutboundError::Unavailable {
            reason: format!("{path}: {reason}"),
            attempts,
        },
    }
}

/// Says how far a multi-message reply got before it failed.
fn with_progress(error: OutboundError, progress: &Progress) -> OutboundError {
    if progress.message_ids.is_empty() {
        return error;
    }
    let sent = format!(" (after {} part(s) sent)", progress.message_ids.len());
    match error {
        OutboundError::Refused { reason, attempts } => OutboundError::Refused {
            reason: reason + &sent,
            attempts,
        },
        OutboundError::Unavailable { reason, attempts } => OutboundError::Unavailable {
            reason: reason + &sent,
            attempts,
        },
        other => other,
    }
}
