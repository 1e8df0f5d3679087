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
pub use inbound::WeComInbound;
pub use outbound::WeComOutbound;

/// The platform's name: stream field, metric label, `platform:` in targets.
pub const NAME: &str = "wecom";
/// The platform's segment in callback routes (WeCom's documented URL says `wechat`).
pub const ROUTE: &str = "wechat";
/// The config key (what existing WeCom configs use).
pub const CONFIG_KEY: &str = "wechat_enterprise";
