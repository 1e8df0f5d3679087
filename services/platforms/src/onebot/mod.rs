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
pub mod cq;
mod event;
mod inbound;
mod outbound;
mod segments;
#[cfg(test)]
mod tests;

pub use config::OneBotConfig;
pub(crate) use config::number_or_numeric_string;
pub use inbound::{OneBotInbound, signature_header};
pub use outbound::OneBotOutbound;

/// The platform's name: config key, route segment, stream field, metric label.
pub const NAME: &str = "onebot";
