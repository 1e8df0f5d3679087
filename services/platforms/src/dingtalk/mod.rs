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
mod inbound;
mod message;
mod outbound;
pub mod sign;
pub mod stream;
#[cfg(test)]
mod tests;

pub use config::{DingTalkConfig, GroupRobotConfig, Mode, StreamSettings};
pub use inbound::DingTalkInbound;
pub use message::decode;
pub use outbound::DingTalkOutbound;

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "dingtalk";
