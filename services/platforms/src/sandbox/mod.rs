//! The sandbox: a chat page served by clawdbot itself, to try skills with no chat platform at
//! all. It is a platform like the others — its messages go ingress → bus → worker → egress —
//! so what works here works on a real platform.
//!
//! Inbound: the page posts JSON to `/clawdbot/sandbox/callback`: who the person says they are
//! (user id, admin or not), where (private chat or a group id), and the text. Outbound: replies
//! are broadcast on the bus channel `sandbox:<id>`; every ingress process relays them to the
//! pages watching that conversation (server-sent events), so the sandbox works in a cluster too.
//!
//! The sandbox trusts what the page says about the person: it is for trying skills on a
//! machine you control, not for the internet. It is on by default in `clawdbot up` only.

mod config;
mod inbound;
mod outbound;
#[cfg(test)]
mod tests;

pub use config::SandboxConfig;
pub use inbound::SandboxInbound;
pub use outbound::{SandboxOutbound, SandboxSink, channel, reply_json};

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "sandbox";

use std::sync::Arc;

use crate::{Inbound, Outbound, OutboundError, PlatformServices, Section};

/// The registration (see [`crate::registry`]).
pub const PLATFORM: crate::Platform = crate::Platform {
    name: NAME,
    config_key: NAME,
    route: NAME,
    read: crate::registry::read::<SandboxConfig>,
    schema: schemars::SchemaGenerator::subschema_for::<SandboxConfig>,
    served_without_section: false,
};

/// The section only switches the sandbox on or off: what is served comes from
/// [`PlatformServices::sandbox`], since `clawdbot up` serves it when the section is absent.
impl Section for SandboxConfig {
    fn validate(&self, key: &str) -> Vec<String> {
        SandboxConfig::validate(self, key)
    }
    fn chats(&self) -> bool {
        true
    }
    fn inbounds(&self, _: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        Vec::new()
    }
    fn outbounds(
        &self,
        _: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        Ok(Vec::new())
    }
}

/// The sandbox's inbound, when the process serves one.
pub fn inbound(services: &PlatformServices) -> Option<Arc<dyn Inbound>> {
    let sandbox = services.sandbox.as_ref()?;
    Some(Arc::new(SandboxInbound::new(sandbox.clone())))
}

/// The sandbox's outbound by its id, when the process serves one and has a sink for replies.
pub fn outbound(services: &PlatformServices) -> Option<(String, Arc<dyn Outbound>)> {
    let (sandbox, sink) = (services.sandbox.as_ref()?, services.sandbox_sink.as_ref()?);
    Some((
        sandbox.id.clone(),
        Arc::new(SandboxOutbound::new(sink.clone())),
    ))
}
