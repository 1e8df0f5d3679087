//! Verifies and decodes alert notifications.

use clawdbot_core::message::{new_envelope_id, now_ms};
use clawdbot_core::proto::{Envelope, EventKind, Raw, Segment, segment::Kind as SegmentKind};
use sha1::{Digest, Sha1};

use super::{AlertmanagerConfig, EVENT_TYPE, NAME};
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

/// The inbound half of the alert webhook.
pub struct AlertmanagerInbound {
    config: AlertmanagerConfig,
}

impl AlertmanagerInbound {
    /// Returns the inbound half for `config`.
    pub fn new(config: AlertmanagerConfig) -> Self {
        Self { config }
    }
}

impl Inbound for AlertmanagerInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        "default"
    }

    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError> {
        let Some(token) = &self.config.token else {
            return Ok(());
        };
        let given = req
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or(InboundError::MissingSignature {
                header: "Authorization",
            })?
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "));
        match given {
            Some(given) if crate::secret_matches(given, std::iter::once(token)) => Ok(()),
            _ => Err(InboundError::BadSignature),
        }
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        crate::json_limits::check(req.body)?;
        // The shape the `alert_forward` skill reads; the whole payload travels on unchanged.
        let notification = clawdbot_core::notice::AlertNotification::parse(req.body)
            .map_err(InboundError::MalformedBody)?;
        let name = notification
            .group_labels
            .get("alertname")
            .map_or("alerts", String::as_str);
        let text = format!(
            "[{}:{}] {name}",
            notification.status.to_uppercase(),
            notification.alerts.len()
        );
        Ok(Inbox::Envelopes(vec![Envelope {
            id: new_envelope_id(),
            platform: NAME.to_string(),
            bot_id: "default".to_string(),
            self_id: NAME.to_string(),
            // A retry of the same notification has the same bytes.
            message_id: hex::encode(Sha1::digest(req.body)),
            kind: EventKind::Notice.into(),
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
            text,
            sent_at_ms: now_ms(),
            received_at_ms: now_ms(),
            reply_context: None,
            trace: None,
            mentions_bot: false,
            dedupe_id: String::new(),
        }]))
    }
}
