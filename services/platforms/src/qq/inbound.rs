//! QQ webhooks: op 13 (callback-URL validation) answered with a signature, op 0 dispatches
//! verified over the timestamp and raw body and decoded into envelopes. One inbound serves
//! every configured bot on `/clawdbot/qq/callback`, choosing by `X-Bot-Appid`.

use clawdbot_core::message::{new_envelope_id, now_ms, render_text};
use clawdbot_core::proto::{
    Conversation, ConversationKind, Envelope, EventKind, Media, Raw, Segment, Sender, Text,
    segment::Kind as SegmentKind,
};

use super::QqReplyContext;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};

use super::sign::{self, SignatureError};
use super::{NAME, QqConfig};
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

struct Bot {
    config: QqConfig,
    signing: SigningKey,
    verifying: VerifyingKey,
}

/// The inbound half of every configured QQ bot.
pub struct QqInbound {
    bots: Vec<Bot>,
    /// Each bot's API client, by account id, for acknowledging button clicks (the ingress has
    /// the shared token like egress does); none without the shared state.
    acknowledgers: std::collections::HashMap<String, std::sync::Arc<super::QqOutbound>>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    id: String,
    op: i64,
    #[serde(default)]
    d: Value,
    #[serde(default)]
    t: String,
}

impl QqInbound {
    /// Returns the inbound half for `bots` (at least one).
    pub fn new(bots: Vec<QqConfig>) -> Self {
        let bots = bots
            .into_iter()
            .map(|config| {
                let signing = sign::signing_key(&config.secret);
                Bot {
                    verifying: signing.verifying_key(),
                    signing,
                    config,
                }
            })
            .collect();
        Self {
            bots,
            acknowledgers: Default::default(),
        }
    }

    /// Acknowledges button clicks through `shared` (the tokens every replica shares).
    pub fn with_acknowledgers(
        mut self,
        shared: Option<std::sync::Arc<dyn clawdbot_core::shared::SharedState>>,
    ) -> Self {
        let Some(shared) = shared else {
            return self;
        };
        for bot in &self.bots {
            match super::QqOutbound::new(bot.config.clone(), shared.clone()) {
                Ok(client) => {
                    self.acknowledgers
                        .insert(bot.config.id.clone(), std::sync::Arc::new(client));
                }
                Err(error) => {
                    tracing::error!(platform = NAME, bot = %bot.config.id, %error, "button clicks will not be acknowledged");
                }
            }
        }
        self
    }

    /// The bot a request is for: by `X-Bot-Appid`, or the only one.
    fn bot(&self, req: &WebhookRequest) -> Result<&Bot, InboundError> {
        let app_id = req.headers.get("x-bot-appid").and_then(|v| v.to_str().ok());
        match app_id {
            Some(app_id) => self
                .bots
                .iter()
                .find(|bot| bot.config.app_id == app_id)
                .ok_or_else(|| InboundError::WrongRecipient {
                    expected: self
                        .bots
                        .iter()
                        .map(|b| b.config.app_id.as_str())
                        .collect::<Vec<_>>()
                        .join("|"),
                    got: app_id.to_string(),
                }),
            None if self.bots.len() == 1 => Ok(&self.bots[0]),
            None => Err(InboundError::MalformedBody(
                "header `X-Bot-Appid` is missing and several QQ bots are configured".into(),
            )),
        }
    }
}

fn payload(body: &[u8]) -> Result<Payload, InboundError> {
    crate::json_limits::check(body)?;
    serde_json::from_slice(body)
        .map_err(|error| InboundError::MalformedBody(format!("not a QQ payload: {error}")))
}

/// op 13's fields, checked to be what QQ sends (a digit timestamp, an alphanumeric token): the
/// answer signs them with the bot's key, and unchecked they would make this endpoint sign
/// `timestamp + {"op":0,...}` for anyone — a forged event's valid signature.
fn validation_fields(d: &Value) -> Result<(&str, &str), InboundError> {
    let plain_token = d["plain_token"].as_str().unwrap_or_default();
    let event_ts = d["event_ts"].as_str().unwrap_or_default();
    let token_ok = !plain_token.is_empty()
        && plain_token.len() <= 128
        && plain_token.bytes().all(|b| b.is_ascii_alphanumeric());
    let ts_ok = !event_ts.is_empty()
        && event_ts.len() <= 20
        && event_ts.bytes().all(|b| b.is_ascii_digit());
    if token_ok && ts_ok {
        Ok((event_ts, plain_token))
    } else {
        Err(InboundError::MalformedBody(
            "op 13 needs a digit `event_ts` and an alphanumeric `plain_token`".into(),
        ))
    }
}

impl Inbound for QqInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        // The route's account: the bots behind it are told apart by X-Bot-Appid.
        "default"
    }

    fn accepted_status(&self) -> http::StatusCode {
        http::StatusCode::OK
    }

    /// A button click (`INTERACTION_CREATE`) is acknowledged once it is in the stream, whether
    /// or not a skill answers it, or the user's client keeps spinning.
    fn acknowledge(&self, envelope: &Envelope) -> Option<crate::Acknowledgement> {
        if envelope.event_type != "INTERACTION_CREATE" {
            return None;
        }
        let client = self.acknowledgers.get(&envelope.bot_id)?.clone();
        let interaction_id = envelope
            .segments
            .iter()
            .find_map(|segment| match &segment.kind {
                Some(SegmentKind::Raw(raw)) => serde_json::from_str::<Value>(&raw.data_json)
                    .ok()
                    .and_then(|event| event["d"]["id"].as_str().map(str::to_string)),
                _ => None,
            })?;
        Some(Box::pin(async move {
            if let Err(error) = client.acknowledge_interaction(&interaction_id).await {
                tracing::warn!(platform = NAME, interaction_id, %error, "button click not acknowledged");
            }
        }))
    }

    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError> {
        let bot = self.bot(req)?;
        let signature = req
            .headers
            .get("x-signature-ed25519")
            .and_then(|v| v.to_str().ok());
        let timestamp = req
            .headers
            .get("x-signature-timestamp")
            .and_then(|v| v.to_str().ok());
        let (signature, timestamp) = match (signature, timestamp) {
            (Some(signature), Some(timestamp)) => (signature, timestamp),
            _ => {
                // QQ does not sign the op 13 validation; its fields are checked in `parse`.
                if payload(req.body).is_ok_and(|p| p.op == 13) {
                    return Ok(());
                }
                let header = if signature.is_none() {
                    "X-Signature-Ed25519"
                } else {
                    "X-Signature-Timestamp"
                };
                return Err(InboundError::MissingSignature { header });
            }
        };
        sign::verify_hex(&bot.verifying, &[timestamp.as_bytes(), req.body], signature).map_err(
            |error| match error {
                SignatureError::Mismatch => InboundError::BadSignature,
                other => InboundError::MalformedSignature(other.to_string()),
            },
        )?;
        let sent: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| InboundError::BadSignature)?;
        let skew_secs = now_ms() / 1000 - sent;
        if skew_secs.unsigned_abs() > bot.config.timestamp_window_secs {
            return Err(InboundError::StaleSignature {
                skew_secs,
                window_secs: bot.config.timestamp_window_secs,
            });
        }
        Ok(())
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        let bot = self.bot(req)?;
        let payload = payload(req.body)?;
        match payload.op {
            13 => {
                let (event_ts, plain_token) = validation_fields(&payload.d)?;
                let signature =
                    sign::sign_hex(&bot.signing, &[event_ts.as_bytes(), plain_token.as_bytes()]);
                let body = json!({"plain_token": plain_token, "signature": signature});
                Ok(Inbox::Handshake {
                    content_type: "application/json",
                    body: body.to_string().into_bytes(),
                })
            }
            // A channel's every-message feed carries the bot's own sends (and other bots'),
            // marked `author.bot`: answered, they would start a loop.
            0 if payload.t == "MESSAGE_CREATE" && payload.d["author"]["bot"] == true => {
                Ok(Inbox::Skipped {
                    reason: "own_message",
                })
            }
            0 => Ok(Inbox::Envelopes(vec![envelope(
                &bot.config,
                &payload,
                req.body,
            )?])),
            other => {
                tracing::warn!(
                    platform = NAME,
                    op = other,
                    "unknown QQ op: accepted, not routed"
                );
                Ok(Inbox::Nothing)
            }
        }
    }
}

/// The scene of a message event, and how it is addressed.
struct Scene {
    name: &'static str,
    conversation: Conversation,
    target: String,
    sender: Sender,
}

fn text_of(d: &Value, key: &str) -> String {
    d.pointer(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn push_text(segments: &mut Vec<Segment>, text: String) {
    if !text.is_empty() {
        segments.push(Segment {
            kind: Some(SegmentKind::Text(Text { text })),
        });
    }
}

fn scene(event: &str, d: &Value) -> Option<Scene> {
    let conversation = |kind: ConversationKind, id: &str| Conversation {
        kind: kind.into(),
        id: id.to_string(),
    };
    Some(match event {
        "GROUP_AT_MESSAGE_CREATE" => {
            let group = text_of(d, "/group_openid");
            Scene {
                name: "group",
                conversation: conversation(ConversationKind::Group, &group),
                target: group,
                sender: Sender {
                    user_id: text_of(d, "/author/member_openid"),
                    ..Default::default()
                },
            }
        }
        "C2C_MESSAGE_CREATE" => {
            let user = text_of(d, "/author/user_openid");
            Scene {
                name: "c2c",
                conversation: conversation(ConversationKind::Private, &user),
                target: user.clone(),
                sender: Sender {
                    user_id: user,
                    ..Default::default()
                },
            }
        }
        // A guild channel message: `AT_MESSAGE_CREATE` @s the bot; `MESSAGE_CREATE` is every
        // message of the channel, for private-domain bots (bot-docs, send-receive/event.md).
        "AT_MESSAGE_CREATE" | "MESSAGE_CREATE" => {
            let channel = text_of(d, "/channel_id");
            Scene {
                name: "channel",
                conversation: conversation(ConversationKind::Channel, &channel),
                target: channel,
                sender: Sender {
                    user_id: text_of(d, "/author/id"),
                    display_name: text_of(d, "/author/username"),
                    ..Default::default()
                },
            }
        }
        "DIRECT_MESSAGE_CREATE" => {
            let user = text_of(d, "/author/id");
            Scene {
                name: "dm",
                conversation: conversation(ConversationKind::Private, &user),
                target: text_of(d, "/guild_id"),
                sender: Sender {
                    user_id: user,
                    display_name: text_of(d, "/author/username"),
                    ..Default::default()
                },
            }
        }
        _ => return None,
    })
}

/// Message content: the text, mentions, and attachments as image or file segments. Group and
/// C2C content comes with the bot's @ already taken out (a leading space left); guild content
/// writes mentions inline as `<@!id>` (or `<@id>`), and `mentions[]` says which of them are
/// bots: the bot's own is taken out (so `<@!bot> /echo hi` routes as `/echo hi`), anyone
/// else's becomes a mention segment. Without `mentions[]`, a leading one is taken for the bot's
/// (only messages that @ the bot reach it) — except in `MESSAGE_CREATE` (`every_message`),
/// where only `mentions[]` says who is the bot. Returns the segments and whether the bot's own
/// mention was among them.
fn segments(d: &Value, every_message: bool) -> (Vec<Segment>, bool) {
    let content = d["content"].as_str().unwrap_or_default();
    let bots: Vec<&str> = d["mentions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["bot"].as_bool() == Some(true))
        .filter_map(|m| m["id"].as_str())
        .collect();
    let mut segments = Vec::new();
    let mut rest = content;
    let mut text = String::new();
    let mut bot_mentioned = false;
    while let Some(start) = rest.find("<@") {
        let Some(end) = rest[start..].find('>').map(|end| start + end) else {
            break;
        };
        text.push_str(&rest[..start]);
        let id = rest[start + 2..end].trim_start_matches('!');
        let leading = segments.is_empty() && text.trim().is_empty();
        let the_bot = bots.contains(&id) || (bots.is_empty() && leading && !every_message);
        bot_mentioned |= the_bot;
        if !the_bot {
            push_text(&mut segments, std::mem::take(&mut text));
            segments.push(Segment {
                kind: Some(SegmentKind::Mention(clawdbot_core::proto::Mention {
                    user_id: id.to_string(),
                    all: false,
                    display_name: String::new(),
                })),
            });
        }
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    push_text(&mut segments, text);
    // The space left where the bot's @ was, at either end.
    if let Some(Segment {
        kind: Some(SegmentKind::Text(first)),
    }) = segments.first_mut()
    {
        first.text = first.text.trim_start().to_string();
    }
    if let Some(Segment {
        kind: Some(SegmentKind::Text(last)),
    }) = segments.last_mut()
    {
        last.text = last.text.trim_end().to_string();
    }
    segments.retain(|s| !matches!(&s.kind, Some(SegmentKind::Text(t)) if t.text.is_empty()));
    for attachment in d["attachments"].as_array().into_iter().flatten() {
        let mime = attachment["content_type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut url = attachment["url"].as_str().unwrap_or_default().to_string();
        if url.starts_with("//") {
            url = format!("https:{url}");
        }
        let media = Media {
            url,
            file_id: String::new(),
            name: attachment["filename"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            mime: mime.clone(),
        };
        let kind = if mime.starts_with("image") {
            SegmentKind::Image(media)
        } else if mime.starts_with("video") {
            SegmentKind::Video(media)
        } else if mime.starts_with("voice") || mime.starts_with("audio") {
            SegmentKind::Voice(media)
        } else {
            SegmentKind::File(media)
        };
        segments.push(Segment { kind: Some(kind) });
    }
    (segments, bot_mentioned)
}

// Long on purpose: it fills every field of the envelope in one struct literal, next to the
// event fields each comes from; split up, a reader would chase one envelope across helpers.
fn envelope(config: &QqConfig, payload: &Payload, body: &[u8]) -> Result<Envelope, InboundError> {
    let d = &payload.d;
    let sent_at_ms = d["timestamp"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map_or_else(now_ms, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    // Dedupe by event id; QQ may deliver one event twice.
    let event_id = if payload.id.is_empty() {
        text_of(d, "/id")
    } else {
        payload.id.clone()
    };
    let every_message = payload.t == "MESSAGE_CREATE";
    let mut mentions_bot = false;
    let (kind, scene, segments) = match scene(&payload.t, d) {
        Some(scene) => {
            if text_of(d, "/id").is_empty() {
                return Err(InboundError::MalformedBody(format!(
                    "{} without `d.id`",
                    payload.t
                )));
            }
            let (segments, bot_mentioned) = segments(d, every_message);
            // Everything but a channel's every-message feed is addressed to the bot.
            mentions_bot = bot_mentioned || !every_message;
            (EventKind::Message, Some(scene), segments)
        }
        None => {
            if !matches!(
                payload.t.as_str(),
                "GROUP_ADD_ROBOT" | "GROUP_DEL_ROBOT" | "FRIEND_ADD" | "FRIEND_DEL"
            ) {
                tracing::warn!(platform = NAME, event = %payload.t, "unknown QQ event: accepted, not routed");
            }
            let raw = Segment {
                kind: Some(SegmentKind::Raw(Raw {
                    platform: NAME.to_string(),
                    r#type: payload.t.clone(),
                    data_json: String::from_utf8_lossy(body).into_owned(),
                })),
            };
            (EventKind::Notice, None, vec![raw])
        }
    };
    let (conversation, sender, reply_context) = match scene {
        Some(scene) => {
            let context = QqReplyContext {
                app_id: config.app_id.clone(),
                scene: scene.name.to_string(),
                target: scene.target,
                msg_id: text_of(d, "/id"),
                event_id: payload.id.clone(),
                message_at_ms: sent_at_ms,
            };
            (
                Some(scene.conversation),
                Some(scene.sender),
                Some(crate::reply_context::seal(NAME, &context)),
            )
        }
        None => {
            let group = text_of(d, "/group_openid");
            let user = text_of(d, "/openid");
            let conversation = if !group.is_empty() {
                Some(Conversation {
                    kind: ConversationKind::Group.into(),
                    id: group,
                })
            } else if !user.is_empty() {
                Some(Conversation {
                    kind: ConversationKind::Private.into(),
                    id: user,
                })
            } else {
                None
            };
            (conversation, None, None)
        }
    };
    Ok(Envelope {
        id: new_envelope_id(),
        platform: NAME.to_string(),
        bot_id: config.id.clone(),
        self_id: config.app_id.clone(),
        message_id: event_id,
        kind: kind.into(),
        event_type: payload.t.clone(),
        conversation,
        sender,
        text: render_text(&segments),
        segments,
        sent_at_ms,
        received_at_ms: now_ms(),
        reply_context,
        trace: None,
        mentions_bot,
        dedupe_id: String::new(),
    })
}
