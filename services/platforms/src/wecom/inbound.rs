//! Verifies, decrypts and decodes WeCom app callbacks: the GET URL verification and the POST
//! of an encrypted message or event.

use clawdbot_core::message::{new_envelope_id, now_ms, render_text};
use clawdbot_core::proto::{
    Conversation, ConversationKind, Envelope, EventKind, LinkCard, Media, Raw, Segment, Sender,
    Text, segment::Kind as SegmentKind,
};

use super::WeComReplyContext;

use super::crypto::{self, WeComCrypto};
use super::query::CallbackQuery;
use super::xml::{self, Fields, XmlError};
use super::{NAME, ROUTE, WeComConfig};
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

/// The inbound half of one WeCom app.
pub struct WeComInbound {
    config: WeComConfig,
    crypto: WeComCrypto,
    /// Seconds since the epoch to check callback timestamps against: the real clock, or a
    /// fixed one for the published vectors (signed in 2014).
    clock: fn() -> i64,
}

fn system_clock() -> i64 {
    now_ms() / 1000
}

impl WeComInbound {
    /// Returns the inbound half for `config`.
    ///
    /// # Errors
    /// The EncodingAESKey is not one (config validation reports this first).
    pub fn new(config: WeComConfig) -> Result<Self, String> {
        let key = crypto::aes_key(&config.encoding_aes_key)
            .map_err(|reason| format!("`encoding_aes_key` {reason}"))?;
        let crypto = WeComCrypto::new(&config.token, key);
        Ok(Self {
            config,
            crypto,
            clock: system_clock,
        })
    }

    /// Checks timestamps against `clock` instead of the system clock (tests of old vectors).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// The text that was signed: `echostr` on GET, the body's `<Encrypt>` on POST. Reads the
    /// body no further than `<Encrypt>`, in bounded space: this runs before the signature is
    /// checked, for anyone who can reach the endpoint.
    fn signed_text(
        &self,
        req: &WebhookRequest,
        query: &CallbackQuery,
    ) -> Result<String, InboundError> {
        if *req.method == http::Method::GET {
            return query.echostr.clone().ok_or_else(|| {
                InboundError::MalformedBody("query parameter `echostr` is missing".into())
            });
        }
        if *req.method != http::Method::POST {
            return Err(InboundError::MalformedBody(format!(
                "method {} (WeCom sends GET to verify the URL and POST for messages)",
                req.method
            )));
        }
        let body = std::str::from_utf8(req.body)
            .map_err(|_| InboundError::MalformedBody("body is not UTF-8".into()))?;
        xml::encrypt_field(body).map_err(|error| xml_error(error, ""))
    }

    /// Decrypts `ciphertext` and checks it is addressed to this corp.
    fn open(&self, ciphertext: &str) -> Result<String, InboundError> {
        let opened = self
            .crypto
            .decrypt(ciphertext)
            .map_err(|error| InboundError::MalformedBody(format!("cannot decrypt: {error}")))?;
        if opened.receive_id != self.config.corp_id {
            return Err(InboundError::WrongRecipient {
                expected: self.config.corp_id.clone(),
                got: opened.receive_id,
            });
        }
        Ok(opened.message)
    }

    /// Refuses a validly signed callback whose timestamp is outside the window (a replay).
    fn check_window(&self, timestamp: &str) -> Result<(), InboundError> {
        let sent: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| InboundError::MalformedSignature(format!("timestamp `{timestamp}`")))?;
        let skew_secs = (self.clock)().saturating_sub(sent);
        if skew_secs.unsigned_abs() > self.config.timestamp_window_secs {
            return Err(InboundError::StaleSignature {
                skew_secs,
                window_secs: self.config.timestamp_window_secs,
            });
        }
        Ok(())
    }
}

/// Maps an XML refusal to the answer, prefixing where the XML was (`decrypted message: `).
fn xml_error(error: XmlError, place: &str) -> InboundError {
    match error {
        XmlError::Malformed(reason) => InboundError::MalformedBody(format!("{place}{reason}")),
        XmlError::OverLimit(reason) => InboundError::OverLimit(format!("{place}{reason}")),
    }
}

impl Inbound for WeComInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn route(&self) -> &'static str {
        ROUTE
    }

    fn bot_id(&self) -> &str {
        &self.config.id
    }

    fn accepted_status(&self) -> http::StatusCode {
        // WeCom retries anything but 200; the body stays empty ("no passive reply").
        http::StatusCode::OK
    }

    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError> {
        let query = CallbackQuery::parse(req.query)?;
        let signed = self.signed_text(req, &query)?;
        if !self.crypto.verify(
            &query.msg_signature,
            &query.timestamp,
            &query.nonce,
            &signed,
        ) {
            return Err(InboundError::BadSignature);
        }
        // After the signature: a forged request learns nothing about the clock.
        self.check_window(&query.timestamp)
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        let query = CallbackQuery::parse(req.query)?;
        let ciphertext = self.signed_text(req, &query)?;
        let plaintext = self.open(&ciphertext)?;
        if *req.method == http::Method::GET {
            // The bare plaintext: no quotes, no newline, or the admin console refuses the URL.
            return Ok(Inbox::Handshake {
                content_type: "text/plain; charset=utf-8",
                body: plaintext.into_bytes(),
            });
        }
        let fields =
            xml::parse(&plaintext).map_err(|error| xml_error(error, "decrypted message: "))?;
        self.envelope(&fields).map(|e| Inbox::Envelopes(vec![e]))
    }
}

impl WeComInbound {
    /// Turns a decrypted message or event into an envelope.
    // Long on purpose: it fills every field of the envelope in one struct literal, next to the
    // event fields each comes from; split up, a reader would chase one envelope across helpers.
    pub fn envelope(&self, fields: &Fields) -> Result<Envelope, InboundError> {
        let required = |name: &str| {
            fields
                .get(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| InboundError::MalformedBody(format!("no `<{name}>` in the message")))
        };
        let msg_type = identifier(required("MsgType")?, "MsgType")?;
        let user_id = required("FromUserName")?.to_string();
        let create_time: i64 = fields.text("CreateTime").parse().unwrap_or_default();
        let (kind, event_type, message_id, segments) = match msg_type {
            "event" => {
                let event = identifier(fields.text("Event"), "Event")?;
                // Events have no MsgId. A retry repeats the whole event, so sender, time, event
                // and a digest of every field identify it; two different events of one member in
                // the same second (two menu clicks: another EventKey) stay two.
                let id = format!("{user_id}:{create_time}:{event}:{}", fields_digest(fields));
                let segments = vec![raw_segment(msg_type, fields)];
                (EventKind::Notice, format!("event.{event}"), id, segments)
            }
            _ => match message_segments(msg_type, fields) {
                Some(segments) => (
                    EventKind::Message,
                    format!("message.{msg_type}"),
                    required("MsgId")?.to_string(),
                    segments,
                ),
                None => {
                    // Kept for history, never routed: a skill would not know what it is.
                    tracing::warn!(
                        platform = NAME,
                        msg_type,
                        "unknown WeCom MsgType: accepted, not routed"
                    );
                    let id = fields.get("MsgId").map_or_else(
                        || format!("{user_id}:{create_time}:{msg_type}"),
                        str::to_string,
                    );
                    let segments = vec![raw_segment(msg_type, fields)];
                    (
                        EventKind::Notice,
                        format!("message.{msg_type}"),
                        id,
                        segments,
                    )
                }
            },
        };
        let agent_id = fields
            .get("AgentID")
            .and_then(|id| id.parse().ok())
            .unwrap_or(self.config.agent_id);
        Ok(Envelope {
            id: new_envelope_id(),
            platform: NAME.to_string(),
            bot_id: self.config.id.clone(),
            self_id: format!("{}/{agent_id}", self.config.corp_id),
            message_id,
            kind: kind.into(),
            event_type,
            conversation: Some(Conversation {
                kind: ConversationKind::Private.into(),
                id: user_id.clone(),
            }),
            sender: Some(Sender {
                user_id: user_id.clone(),
                ..Default::default()
            }),
            text: render_text(&segments),
            segments,
            sent_at_ms: create_time.saturating_mul(1000),
            received_at_ms: now_ms(),
            reply_context: Some(crate::reply_context::seal(
                NAME,
                &WeComReplyContext {
                    corp_id: self.config.corp_id.clone(),
                    agent_id,
                    user_id,
                },
            )),
            trace: None,
            // A member writes to the app itself: every message is addressed to the bot.
            mentions_bot: true,
            dedupe_id: String::new(),
        })
    }
}

/// Checks that a type name (`MsgType`, `Event`) is one: WeCom's are short snake_case words.
/// Anything else is refused rather than copied into event types, metrics and history.
fn identifier<'a>(value: &'a str, field: &str) -> Result<&'a str, InboundError> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(value)
    } else {
        Err(InboundError::MalformedBody(format!(
            "`<{field}>` is not a WeCom type name (up to 64 letters, digits, `_` or `-`)"
        )))
    }
}

/// The segments of a message type clawdbot understands; `None` for any other.
fn message_segments(msg_type: &str, fields: &Fields) -> Option<Vec<Segment>> {
    let media = |mime: &str| Media {
        url: fields.text("PicUrl").to_string(),
        file_id: fields.text("MediaId").to_string(),
        name: fields.text("FileName").to_string(),
        mime: mime.to_string(),
    };
    let kind = match msg_type {
        "text" => SegmentKind::Text(Text {
            text: fields.text("Content").to_string(),
        }),
        "image" => SegmentKind::Image(media("image/jpeg")),
        "voice" => SegmentKind::Voice(media(&format!("audio/{}", fields.text("Format")))),
        "video" => SegmentKind::Video(media("video/mp4")),
        "file" => SegmentKind::File(media("")),
        "link" => SegmentKind::Link(LinkCard {
            url: fields.text("Url").to_string(),
            title: fields.text("Title").to_string(),
            description: fields.text("Description").to_string(),
            image_url: fields.text("PicUrl").to_string(),
        }),
        "location" => {
            // No location segment in the model: the label and coordinates as text, the fields
            // kept whole for a skill that wants them.
            // Rendered as "[location] label (x, y)".
            let text = format!(
                " {} ({}, {})",
                fields.text("Label"),
                fields.text("Location_X"),
                fields.text("Location_Y")
            );
            return Some(vec![
                raw_segment(msg_type, fields),
                Segment {
                    kind: Some(SegmentKind::Text(Text { text })),
                },
            ]);
        }
        _ => return None,
    };
    Some(vec![Segment { kind: Some(kind) }])
}

/// A short digest of every field (sorted by name): equal for a retry of the same callback.
fn fields_digest(fields: &Fields) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(fields.to_json().as_bytes());
    hex::encode(&digest[..8])
}

/// The decrypted fields as JSON, for what has no normalized form.
fn raw_segment(msg_type: &str, fields: &Fields) -> Segment {
    Segment {
        kind: Some(SegmentKind::Raw(Raw {
            platform: NAME.to_string(),
            r#type: msg_type.to_string(),
            data_json: fields.to_json(),
        })),
    }
}
