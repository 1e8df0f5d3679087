//! OneBot v11, as spoken by NapCat, Lagrange.OneBot, LLOneBot and go-cqhttp
//! (spec: <https://github.com/botuniverse/onebot-11>; facts and vectors in
//! `docs/protocols/onebot11.md`).
//!
//! Inbound: HTTP POST event reporting to `/clawdbot/onebot/callback` (or
//! `/clawdbot/onebot/{id}/callback`), with `X-Signature: sha1=HMAC-SHA1(secret, raw body)` when a
//! secret is configured. `message` arrives as a segment array or a CQ-code string; both decode to
//! the same envelope. Message events are routed to skills; notices and requests are published
//! (history keeps them) but no skill receives them; meta events (heartbeats) are answered and
//! dropped. The answer is always 204 with no quick operation: replies go through the HTTP API.
//!
//! Outbound: `send_group_msg` / `send_private_msg` on the HTTP API with `Authorization: Bearer`,
//! messages always sent as segment arrays (no escaping needed, `auto_escape` irrelevant).

mod config;
mod context;
pub mod cq;
mod event;
mod forward_message;
mod inbound;
mod outbound;
mod segments;
#[cfg(test)]
mod tests;
pub mod ws;

pub(crate) use config::number_or_numeric_string;
pub use config::{OneBotConfig, Transport};
pub use context::OneBotReplyContext;
pub use inbound::{OneBotInbound, signature_header};
pub use outbound::OneBotOutbound;

use std::sync::Arc;

use crate::{Inbound, OneOrMany, Outbound, OutboundError, PlatformServices, Section};

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "onebot";

/// The registration (see [`crate::registry`]).
pub const PLATFORM: crate::Platform = crate::Platform {
    name: NAME,
    config_key: NAME,
    route: NAME,
    read: crate::registry::read::<OneOrMany<OneBotConfig>>,
    schema: schemars::SchemaGenerator::subschema_for::<OneOrMany<OneBotConfig>>,
    served_without_section: false,
};

impl Section for OneOrMany<OneBotConfig> {
    fn validate(&self, key: &str) -> Vec<String> {
        self.validate_accounts(key, OneBotConfig::validate, |a| &a.id)
    }
    fn chats(&self) -> bool {
        !self.is_empty()
    }
    fn inbounds(&self, services: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        self.iter()
            .map(|account| {
                Arc::new(OneBotInbound::new(account.clone()).with_relay(services.relay.clone()))
                    as Arc<dyn Inbound>
            })
            .collect()
    }
    fn outbounds(
        &self,
        services: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        // One answer channel per process for every account's socket calls.
        let caller = services
            .relay
            .clone()
            .map(|relay| Arc::new(ws::WsCaller::new(relay)));
        self.iter()
            .map(|account| {
                let outbound: Arc<dyn Outbound> =
                    Arc::new(OneBotOutbound::new(account.clone(), caller.clone())?);
                Ok((account.id.clone(), outbound))
            })
            .collect()
    }
    fn connections(&self, services: &PlatformServices) -> Vec<Arc<dyn crate::Connection>> {
        self.iter()
            .filter(|account| account.transport == Transport::WsForward)
            .map(|account| {
                Arc::new(ws::ForwardSocket::new(
                    account.clone(),
                    services.relay.clone(),
                )) as Arc<dyn crate::Connection>
            })
            .collect()
    }
}
