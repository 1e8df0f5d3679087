//! Verifies and decodes OneBot HTTP POST events.

use clawdbot_core::message::{new_envelope_id, now_ms, render_text, take_bot_mentions};
use clawdbot_core::proto::{
    Conversation, ConversationKind, Envelope, EventKind, Raw, Segment, Sender,
    segment::Kind as SegmentKind,
};

use super::OneBotReplyContext;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::event::Event;
use super::segments::{decode_message, to_segment};
use super::{NAME, OneBotConfig};
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

const SIGNATURE_HEADER: &str = "x-signature";

/// Returns the `X-Signature` value OneBot sends for `body`: `sha1=` + hex HMAC-SHA1.
pub fn signature_header(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac(secret);
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

fn hmac(secret: &str) -> Hmac<Sha1> {
    // HMAC takes keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length")
}

/// The inbound half of one OneBot account.
pub struct OneBotInbound {
    config: OneBotConfig,
    /// Where API calls for a reverse socket held here come from.
    relay: Option<std::sync::Arc<dyn crate::relay::Relay>>,
}

impl OneBotInbound {
    /// Returns the inbound half for `config`.
    pub fn new(config: OneBotConfig) -> Self {
        Self {
            config,
            relay: None,
        }
    }

    /// Serves API calls on reverse sockets through `relay`.
    pub fn with_relay(mut self, relay: Option<std::sync::Arc<dyn crate::relay::Relay>>) -> Self {
        self.relay = relay;
        self
    }
}

#[async_trait::async_trait]
impl crate::socket::SocketEndpoint for OneBotInbound {
    /// OneBot v11 reverse WebSocket: `Authorization: Bearer <access_token>` (or
    /// `?access_token=`), `X-Self-ID` when sent must be this account's, `X-Client-Role`
    /// (or the path's `/event`, `/api`) says what the socket carries.
    fn accept(
        &self,
        headers: &http::HeaderMap,
        query: Option<&str>,
        role: Option<&str>,
    ) -> Result<String, InboundError> {
        if let Some(expected) = &self.config.access_token {
            let from_header = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("Token "))
                });
            let from_query = query.and_then(|q| {
                q.split('&')
                    .find_map(|pair| pair.strip_prefix("access_token="))
            });
            let given = from_header
                .or(from_query)
                .ok_or(InboundError::MissingSignature {
                    header: "Authorization",
                })?;
            if !crate::secret_matches(given, std::iter::once(expected)) {
                return Err(InboundError::BadSignature);
            }
        }
        let self_id = headers.get("x-self-id").and_then(|v| v.to_str().ok());
        if let Some(self_id) = self_id
            && self_id.trim() != self.config.self_id.to_string()
        {
            return Err(InboundError::MalformedBody(format!(
                "X-Self-ID `{self_id}` is not account `{}` (self_id `{}`)",
                self.config.id, self.config.self_id
            )));
        }
        let header_role = headers.get("x-client-role").and_then(|v| v.to_str().ok());
        let role = role.or(header_role);
        super::ws::Role::parse(role)
            .map(|role| role.label().to_string())
            .ok_or_else(|| {
                InboundError::MalformedBody(format!(
                    "X-Client-Role `{}` is none of Universal, Event, API",
                    role.unwrap_or_default()
                ))
            })
    }

    async fn serve(
        &self,
        io: crate::socket::SocketIo,
        role: &str,
        sink: &dyn crate::EnvelopeSink,
        stop: crate::Stop<'_>,
    ) -> String {
        let role = super::ws::Role::parse(Some(role)).unwrap_or(super::ws::Role::Universal);
        let mut stop = stop;
        super::ws::serve(io, role, self, sink, self.relay.as_deref(), &mut stop).await
    }
}

impl Inbound for OneBotInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn socket(&self) -> Option<&dyn crate::socket::SocketEndpoint> {
        (self.config.transport == super::Transport::WsReverse).then_some(self as _)
    }

    fn bot_id(&self) -> &str {
        &self.config.id
    }

    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError> {
        let Some(secret) = &self.config.secret else {
            return Ok(());
        };
        let header = req
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(InboundError::MissingSignature {
                header: "X-Signature",
            })?;
        let signature = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("sha1="))
            .and_then(|hex_digest| hex::decode(hex_digest).ok())
            .ok_or(InboundError::BadSignature)?;
        let mut mac = hmac(secret);
        mac.update(req.body);
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| InboundError::BadSignature)
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        crate::json_limits::check(req.body)?;
        let event: Event = serde_json::from_slice(req.body)
            .map_err(|error| InboundError::MalformedBody(format!("not a OneBot event: {error}")))?;
        if let Some(self_id) = event.self_id
            && self_id != self.config.self_id
        {
            return Err(InboundError::MalformedBody(format!(
                "self_id `{self_id}` is not account `{}` (self_id `{}`)",
                self.config.id, self.config.self_id
            )));
        }
        match event.post_type.as_str() {
            // The bot's own sends, reported back when the implementation's self-reporting is on
            // (NapCat `reportSelfMessage`, go-cqhttp `report-self-message`): never routed, or
            // an answer containing its own trigger would answer itself for ever.
            "message_sent" => Ok(Inbox::Skipped {
                reason: "own_message",
            }),
            "message" if event.user_id == Some(self.config.self_id) => Ok(Inbox::Skipped {
                reason: "own_message",
            }),
            "message" => self.message(event).map(|e| Inbox::Envelopes(vec![e])),
            "notice" | "request" => Ok(Inbox::Envelopes(vec![self.other_event(event, req.body)])),
            "meta_event" => Ok(Inbox::Nothing),
            other => Err(InboundError::UnsupportedEvent(format!(
                "post_type `{other}`"
            ))),
        }
    }
}

impl OneBotInbound {
    // Long on purpose: it fills every field of the envelope in one struct literal, next to the
    // event fields each comes from; split up, a reader would chase one envelope across helpers.
    fn message(&self, event: Event) -> Result<Envelope, InboundError> {
        let message_type = event.message_type.clone().unwrap_or_default();
        let message_id = event.message_id.ok_or_else(|| {
            InboundError::MalformedBody("message event without `message_id`".into())
        })?;
        let user_id = event
            .user_id
            .ok_or_else(|| InboundError::MalformedBody("message event without `user_id`".into()))?;
        let conversation = match message_type.as_str() {
            "group" => {
                let group_id = event.group_id.ok_or_else(|| {
                    InboundError::MalformedBody("group message without `group_id`".into())
                })?;
                Conversation {
                    kind: ConversationKind::Group.into(),
                    id: group_id.to_string(),
                }
            }
            "private" => Conversation {
                kind: ConversationKind::Private.into(),
                id: user_id.to_string(),
            },
            other => {
                return Err(InboundError::UnsupportedEvent(format!(
                    "message_type `{other}`"
                )));
            }
        };
        let raw_segments = match &event.message {
            Some(message) => decode_message(message)?,
            None => {
                return Err(InboundError::MalformedBody(
                    "message event without `message`".into(),
                ));
            }
        };
        let mut segments: Vec<Segment> = raw_segments.iter().map(to_segment).collect();
        let self_id = self.config.self_id.to_string();
        // `[CQ:at,qq=<self>] /echo hi` is handled as `/echo hi`, addressed to the bot.
        let mentions_bot = take_bot_mentions(&mut segments, &self_id);
        let sender = event.sender.unwrap_or_default();
        let role = sender.role.unwrap_or_default();
        let dedupe_id = dedupe_id(message_id, event.time, user_id, &segments);
        Ok(Envelope {
            id: new_envelope_id(),
            platform: NAME.to_string(),
            bot_id: self.config.id.clone(),
            self_id,
            message_id: message_id.to_string(),
            kind: EventKind::Message.into(),
            event_type: event_type(
                &event.post_type,
                Some(&message_type),
                event.sub_type.as_deref(),
            ),
            conversation: Some(conversation),
            sender: Some(Sender {
                user_id: user_id.to_string(),
                display_name: sender
                    .card
                    .filter(|card| !card.is_empty())
                    .or(sender.nickname)
                    .unwrap_or_default(),
                is_admin: role == "owner" || role == "admin",
                role,
            }),
            text: render_text(&segments),
            segments,
            sent_at_ms: event.time.unwrap_or_default().saturating_mul(1000),
            received_at_ms: now_ms(),
            reply_context: Some(crate::reply_context::seal(
                NAME,
                &OneBotReplyContext {
                    self_id: self.config.self_id,
                    message_type,
                    group_id: event.group_id.unwrap_or_default(),
                    user_id,
                    // message_id is int32 in the spec; keep 0 if an implementation exceeds it.
                    message_id: i32::try_from(message_id).unwrap_or_default(),
                },
            )),
            trace: None,
            mentions_bot,
            dedupe_id,
        })
    }

    /// Notices and requests: published for history, never routed to skills. The event JSON is
    /// kept whole as a raw segment since it has no normalized form.
    fn other_event(&self, event: Event, body: &[u8]) -> Envelope {
        let sub = event
            .notice_type
            .as_deref()
            .or(event.request_type.as_deref());
        let kind = if event.post_type == "notice" {
            EventKind::Notice
        } else {
            EventKind::Request
        };
        let conversation = match (event.group_id, event.user_id) {
            (Some(group_id), _) => Some(Conversation {
                kind: ConversationKind::Group.into(),
                id: group_id.to_string(),
            }),
            (None, Some(user_id)) => Some(Conversation {
                kind: ConversationKind::Private.into(),
                id: user_id.to_string(),
            }),
            (None, None) => None,
        };
        Envelope {
            id: new_envelope_id(),
            platform: NAME.to_string(),
            bot_id: self.config.id.clone(),
            self_id: self.config.self_id.to_string(),
            // No platform id: notices are not deduplicated.
            message_id: String::new(),
            kind: kind.into(),
            event_type: event_type(&event.post_type, sub, event.sub_type.as_deref()),
            conversation,
            sender: event.user_id.map(|user_id| Sender {
                user_id: user_id.to_string(),
                ..Default::default()
            }),
            segments: vec![Segment {
                kind: Some(SegmentKind::Raw(Raw {
                    platform: NAME.to_string(),
                    r#type: event.post_type.clone(),
                    data_json: String::from_utf8_lossy(body).into_owned(),
                })),
            }],
            text: String::new(),
            sent_at_ms: event.time.unwrap_or_default().saturating_mul(1000),
            received_at_ms: now_ms(),
            reply_context: None,
            trace: None,
            mentions_bot: false,
            dedupe_id: String::new(),
        }
    }
}

/// `message.group.normal`, `notice.group_increase.approve`, ...
fn event_type(post_type: &str, kind: Option<&str>, sub_type: Option<&str>) -> String {
    [Some(post_type), kind, sub_type]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// What tells a OneBot message from every other of the account's: `message_id` is a 32-bit
/// number that implementations reuse (NapCat hashes it, go-cqhttp wraps a counter), so a new
/// message can arrive with an id seen minutes ago. Bound to the send time, the sender and the
/// content, a reused id is a new message, while the implementation's retry of one event (the
/// same fields) is still one.
fn dedupe_id(message_id: i64, time: Option<i64>, user_id: i64, segments: &[Segment]) -> String {
    use prost::Message;
    use sha1::Digest;
    // The decoded segments, so that the CQ-string and array forms of one message agree.
    let mut sha = Sha1::new();
    for segment in segments {
        let encoded = segment.encode_to_vec();
        sha.update((encoded.len() as u64).to_le_bytes());
        sha.update(encoded);
    }
    let digest = sha.finalize();
    format!(
        "{message_id}:{}:{user_id}:{}",
        time.unwrap_or_default(),
        hex::encode(&digest[..4])
    )
}
