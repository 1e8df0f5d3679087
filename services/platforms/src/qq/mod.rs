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
mod inbound;
mod outbound;
pub mod sign;
#[cfg(test)]
mod tests;

pub use config::{QqConfig, ReplyRules};
pub use inbound::QqInbound;
pub use outbound::{QUOTA_REFUSALS_TOTAL, QqOutbound};

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "qq";
