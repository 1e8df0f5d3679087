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
