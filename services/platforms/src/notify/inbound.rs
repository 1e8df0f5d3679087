//! Authenticates and checks notify requests.

use clawdbot_core::message::{new_envelope_id, now_ms};
use clawdbot_core::proto::{Envelope, EventKind, Raw, Segment, segment::Kind as SegmentKind};

use super::{EVENT_TYPE, NAME, NotifyConfig};
use crate::{Inbound, InboundError, Inbox, IssuedKeys, WebhookRequest};

/// The inbound half of the notify API.
pub struct NotifyInbound {
    config: NotifyConfig,
    issued: IssuedKeys,
}

impl NotifyInbound {
    /// Returns the inbound half for `config`, accepting its keys and the `notify` keys issued
    /// from the store.
    pub fn new(config: NotifyConfig, issued: IssuedKeys) -> Self {
        Self { config, issued }
    }
}

impl Inbound for NotifyInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        "default"
    }

    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError> {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let given = header("x-api-key")
            .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
            .ok_or(InboundError::MissingSignature {
                header: "Authorization or X-API-Key",
            })?;
        if crate::secret_matches(given, self.config.api_keys.iter())
            || self.issued.accepts(NAME, given)
        {
            Ok(())
        } else {
            Err(InboundError::BadSignature)
        }
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        crate::json_limits::check(req.body)?;
        // The shape the `notify` skill reads, checked here so a caller learns of a mistake
        // at once (400).
        let request = clawdbot_core::notice::NotifyRequest::parse(req.body)
            .map_err(InboundError::MalformedBody)?;
        let summary = request
            .template
            .as_deref()
            .map_or_else(|| "text".to_string(), |t| format!("template {t}"));
        Ok(Inbox::Envelopes(vec![Envelope {
            id: new_envelope_id(),
            platform: NAME.to_string(),
            bot_id: "default".to_string(),
            self_id: NAME.to_string(),
            // The caller's id makes its retries safe; without one every request is new.
            message_id: request.id.clone().unwrap_or_default(),
            kind: EventKind::Request.into(),
            event_type: EVENT_TYPE.to_string(),
            conversation: None,
            sender: None,
            segments: vec![Segment {
                kind: Some(SegmentKind::Raw(Raw {
                    platform: NAME.to_string(),
                    r#type: EVENT_TYPE.to_string(),
                    data_json: String::from_utf8_lossy(req.body).into_owned(),
                })),
            }],
            text: format!("notify: {summary} to {} targets", request.targets.len()),
            sent_at_ms: now_ms(),
            received_at_ms: now_ms(),
            reply_context: None,
            trace: None,
            mentions_bot: false,
            dedupe_id: String::new(),
        }]))
    }
}
