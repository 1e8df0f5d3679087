//! WeCom (企业微信) self-built apps (自建应用) and their group robots (群机器人)
//! (facts: `docs/protocols/wecom.md`; vectors: `fixtures/wecom.vectors.json`).
//!
//! Inbound: `/clawdbot/wechat/callback` (or `/clawdbot/wechat/{id}/callback`). GET is the URL
//! verification (answer the decrypted `echostr`, bare); POST carries `<Encrypt>`, signed with
//! SHA-1 over the sorted token/timestamp/nonce/ciphertext and encrypted with AES-256-CBC
//! (padding to 32 bytes). Messages and events become envelopes; the answer is 200 with an empty
//! body as soon as the envelope is in the stream (WeCom retries after 5 s; retries dedupe by
//! MsgId, events by sender + CreateTime + event).
//!
//! Outbound: private conversations are app messages (`message/send` to the member), group
//! conversations name a configured group robot (`webhook/send`). The access token lives in
//! the shared state (one fetch for all replicas); WeCom's per-member (30/min) and per-robot
//! (20/min) limits are held cluster-wide by queueing sends for their slot.

mod api;
mod compose;
mod config;
mod context;
pub mod crypto;
mod gettoken;
mod inbound;
mod media;
mod outbound;
mod query;
#[cfg(test)]
mod tests;
pub mod xml;

pub use config::{RobotConfig, SendLimit, WeComConfig};
pub use context::WeComReplyContext;
pub use inbound::WeComInbound;
pub use outbound::WeComOutbound;

use std::sync::Arc;

use crate::{Inbound, OneOrMany, OutboundError, PlatformServices, Section};

/// The platform's name: stream field, metric label, `platform:` in targets.
pub const NAME: &str = "wecom";
/// The platform's segment in callback routes (WeCom's documented URL says `wechat`).
pub const ROUTE: &str = "wechat";
/// The config key (what existing WeCom configs use).
pub const CONFIG_KEY: &str = "wechat_enterprise";

/// The registration (see [`crate::registry`]).
pub const PLATFORM: crate::Platform = crate::Platform {
    name: NAME,
    config_key: CONFIG_KEY,
    route: ROUTE,
    read: crate::registry::read::<OneOrMany<WeComConfig>>,
    schema: schemars::SchemaGenerator::subschema_for::<OneOrMany<WeComConfig>>,
    served_without_section: false,
};

impl Section for OneOrMany<WeComConfig> {
    fn validate(&self, key: &str) -> Vec<String> {
        self.validate_accounts(key, WeComConfig::validate, |a| &a.id)
    }
    fn chats(&self) -> bool {
        !self.is_empty()
    }
    fn inbounds(&self, _: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        self.iter()
            .filter_map(|app| match WeComInbound::new(app.clone()) {
                Ok(inbound) => Some(Arc::new(inbound) as Arc<dyn Inbound>),
                Err(reason) => {
                    // Validation has checked the key; an app that still fails is skipped, loudly.
                    tracing::error!(app = %app.id, %reason, "wecom app not served");
                    None
                }
            })
            .collect()
    }
    fn outbounds(
        &self,
        services: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        crate::registry::shared_outbounds(NAME, self, services, |a| &a.id, WeComOutbound::new)
    }
}
