//! OneBot v11 over WebSocket, both directions (spec: `communication/ws.md` and
//! `communication/ws-reverse.md` of botuniverse/onebot-11; facts in `docs/protocols/onebot11.md`).
//!
//! One socket carries both halves: events arrive as the same JSON the HTTP POST reporting sends
//! (decoded by [`super::OneBotInbound`]), API calls leave as `{"action","params","echo"}` and
//! their answers come back as `{"status","retcode","data","echo"}` on the same socket. With
//! reverse WebSocket the implementation may instead open two sockets, one for events and one
//! for API calls (`X-Client-Role: Event` / `API`, or the `/ws/event` and `/ws/api` paths).
//!
//! Egress does not hold the socket: an ingress does (reverse: whichever replica the
//! implementation reached; forward: the replica holding the account's lease). A reply's API
//! call goes to the holder over the [`crate::relay::Relay`] (the bus's broadcast) and the holder
//! sends the answer back on the caller's own channel. No holder listening means the call
//! reached no one, and the send is retried later like any transient failure.

mod caller;
mod forward;
mod session;

pub use caller::WsCaller;
pub use forward::{ForwardSocket, pump};
pub use session::{Role, serve};

/// The channel the holder of `account`'s socket listens to for API calls.
fn calls_channel(account: &str) -> String {
    format!("onebot:ws:calls:{account}")
}

/// An API call on its way from egress to the holder.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RelayedCall {
    action: String,
    params: serde_json::Value,
    echo: String,
    /// The caller's channel, for the answer.
    answer_to: String,
}
