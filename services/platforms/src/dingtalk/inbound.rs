//! Verifies and decodes DingTalk's HTTP robot callbacks (`mode: http`): headers `timestamp`
//! (ms) and `sign` = base64(HMAC-SHA256(app_secret, timestamp + "\n" + app_secret)), the
//! timestamp within `timestamp_window_secs` of this server's clock.

use super::{DingTalkConfig, NAME, message, sign};
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

/// The inbound half of one DingTalk app in HTTP mode.
pub struct DingTalkInbound {
    config: DingTalkConfig,
}

impl DingTalkInbound {
    /// Returns the inbound half for `config`.
    pub fn new(config: DingTalkConfig) -> Self {
        Self { config }
    }
}

fn header<'a>(req: &'a WebhookRequest, name: &'static str) -> Result<&'a str, InboundError> {
    req.headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or(InboundError::MissingSignature { header: name })
}

impl Inbound for DingTalkInbound {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        &self.config.id
    }

    fn accepted_status(&self) -> http::StatusCode {
        // DingTalk reads the answer as JSON; an empty 200 means "no synchronous reply".
        http::StatusCode::OK
    }

    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError> {
        let timestamp = header(req, "timestamp")?;
        let signature = header(req, "sign")?;
        let sent_ms: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| InboundError::BadSignature)?;
        // Check the signature first: a forged request learns nothing about the clock.
        if !sign::verify(&self.config.app_secret, timestamp.trim(), signature) {
            return Err(InboundError::BadSignature);
        }
        let skew_secs = (clawdbot_core::now_ms() - sent_ms) / 1000;
        if skew_secs.unsigned_abs() > self.config.timestamp_window_secs {
            return Err(InboundError::StaleSignature {
                skew_secs,
                window_secs: self.config.timestamp_window_secs,
            });
        }
        Ok(())
    }

    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError> {
        message::decode(&self.config, req.body).map(|envelope| Inbox::Envelopes(vec![envelope]))
    }
}
