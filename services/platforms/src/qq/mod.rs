//! The official QQ bot API (q.qq.com; OneBot is the community protocol and its own platform).
//! Facts and vectors: `docs/protocols/qq.md`; vectors: `fixtures/qq.vectors.json`.
//!
//! Inbound: `/clawdbot/qq/callback` (bots told apart by `X-Bot-Appid`): op 13 validation is
//! answered with an Ed25519 signature over event_ts + plain_token; op 0 events are verified
//! over `X-Signature-Timestamp` + the raw body, within a timestamp window, and decoded
//! (group @, C2C, guild @ and DM messages; robot/friend add and remove events as notices).
//!
//! Outbound: passive replies only, within QQ's window and count, each with its own `msg_seq`.

mod config;
mod context;
mod inbound;
mod outbound;
pub mod sign;
#[cfg(test)]
mod tests;

pub use config::{QqConfig, ReplyRules};
pub use context::QqReplyContext;
pub use inbound::QqInbound;
pub use outbound::{QUOTA_REFUSALS_TOTAL, QqOutbound};

use std::sync::Arc;

use crate::{Inbound, OneOrMany, OutboundError, PlatformServices, Section};

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "qq";

/// The registration (see [`crate::registry`]).
pub const PLATFORM: crate::Platform = crate::Platform {
    name: NAME,
    config_key: NAME,
    route: NAME,
    read: crate::registry::read::<OneOrMany<QqConfig>>,
    schema: schemars::SchemaGenerator::subschema_for::<OneOrMany<QqConfig>>,
    served_without_section: false,
};

impl Section for OneOrMany<QqConfig> {
    fn validate(&self, key: &str) -> Vec<String> {
        self.validate_accounts(key, QqConfig::validate, |b| &b.id)
    }
    fn chats(&self) -> bool {
        !self.is_empty()
    }
    fn inbounds(&self, services: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        // One route for every bot: QQ names the bot in `X-Bot-Appid`.
        if self.is_empty() {
            return Vec::new();
        }
        vec![Arc::new(
            QqInbound::new(self.iter().cloned().collect())
                .with_acknowledgers(services.shared.clone()),
        )]
    }
    fn outbounds(
        &self,
        services: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        crate::registry::shared_outbounds(NAME, self, services, |a| &a.id, QqOutbound::new)
    }
}
