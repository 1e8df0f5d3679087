//! DingTalk (钉钉) enterprise-internal robots and custom group robots (facts:
//! `docs/protocols/dingtalk.md`; vectors: `fixtures/dingtalk.vectors.json`).
//!
//! Inbound, `mode: http`: DingTalk POSTs robot messages to `/clawdbot/dingtalk/callback` with
//! `timestamp` and `sign` headers (HMAC-SHA256 with the app secret, within an hour of this
//! server's clock). `mode: stream`: one ingress replica holds a WebSocket to DingTalk's gateway
//! (see `stream`). Both decode the same message JSON into envelopes; dedupe by msgId.
//!
//! Outbound: a group conversation naming a configured custom robot goes through its signed
//! webhook (20 a minute, held cluster-wide by queueing); other replies go through the
//! message's session webhook while valid, then through the robot OpenAPI with the app's token.

mod api;
mod compose;
mod config;
mod context;
mod inbound;
mod message;
mod outbound;
pub mod sign;
pub mod stream;
#[cfg(test)]
mod tests;

pub use config::{DingTalkConfig, GroupRobotConfig, Mode, StreamSettings};
pub use context::DingTalkReplyContext;
pub use inbound::DingTalkInbound;
pub use message::decode;
pub use outbound::DingTalkOutbound;

use std::sync::Arc;

use crate::{Connection, Inbound, OneOrMany, OutboundError, PlatformServices, Section};

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "dingtalk";

/// The registration (see [`crate::registry`]).
pub const PLATFORM: crate::Platform = crate::Platform {
    name: NAME,
    config_key: NAME,
    route: NAME,
    read: crate::registry::read::<OneOrMany<DingTalkConfig>>,
    schema: schemars::SchemaGenerator::subschema_for::<OneOrMany<DingTalkConfig>>,
    served_without_section: false,
};

impl Section for OneOrMany<DingTalkConfig> {
    fn validate(&self, key: &str) -> Vec<String> {
        self.validate_accounts(key, DingTalkConfig::validate, |a| &a.id)
    }
    fn chats(&self) -> bool {
        !self.is_empty()
    }
    fn inbounds(&self, _: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        // Stream-mode apps arrive over their connection, not a route.
        self.iter()
            .filter(|app| app.mode == Mode::Http)
            .map(|app| Arc::new(DingTalkInbound::new(app.clone())) as Arc<dyn Inbound>)
            .collect()
    }
    fn outbounds(
        &self,
        services: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        crate::registry::shared_outbounds(NAME, self, services, |a| &a.id, DingTalkOutbound::new)
    }
    fn connections(&self, _: &PlatformServices) -> Vec<Arc<dyn Connection>> {
        self.iter()
            .filter(|app| app.mode == Mode::Stream)
            .filter_map(|app| match stream::StreamClient::new(app.clone()) {
                Ok(client) => Some(Arc::new(client) as Arc<dyn Connection>),
                Err(reason) => {
                    tracing::error!(app = %app.id, %reason, "dingtalk stream not started");
                    None
                }
            })
            .collect()
    }
}
