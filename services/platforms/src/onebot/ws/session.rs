//! One socket to a OneBot implementation, whichever side opened it: events in, API calls out,
//! answers matched to their calls by `echo`.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{RelayedCall, calls_channel};
use crate::onebot::OneBotInbound;
use crate::relay::Relay;
use crate::socket::SocketIo;
use crate::{EnvelopeSink, Inbound, Inbox, Stop, WebhookRequest};

/// Calls waiting for an answer on one socket, at most: an implementation that never answers
/// must not grow the map for ever (the callers time out long before).
const MAX_WAITING: usize = 10_000;

/// What a socket carries (OneBot's `X-Client-Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Events and API calls.
    Universal,
    /// Events only.
    Event,
    /// API calls only.
    Api,
}

impl Role {
    /// The label [`crate::socket::SocketEndpoint::accept`] returns for this role.
    pub fn label(self) -> &'static str {
        match self {
            Self::Universal => "universal",
            Self::Event => "event",
            Self::Api => "api",
        }
    }

    /// Reads `X-Client-Role` (or the path's last segment): `Universal` when absent.
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("universal") => Some(Self::Universal),
            Some("event") => Some(Self::Event),
            Some("api") => Some(Self::Api),
            Some(_) => None,
        }
    }

    fn carries_calls(self) -> bool {
        self != Self::Event
    }
}

/// Serves one socket of `inbound`'s account until it closes or `stop` completes; returns why it
/// ended, for the log.
pub async fn serve(
    mut io: SocketIo,
    role: Role,
    inbound: &OneBotInbound,
    sink: &dyn EnvelopeSink,
    relay: Option<&dyn Relay>,
    stop: &mut Stop<'_>,
) -> String {
    let mut calls = match (role.carries_calls(), relay) {
        (true, Some(relay)) => match relay.listen(&calls_channel(inbound.bot_id())).await {
            Ok(calls) => Some(calls),
            Err(error) => return format!("cannot listen for API calls: {error}"),
        },
        _ => None,
    };
    // echo → the caller's channel.
    let mut waiting: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            () = &mut *stop => return "stopped".into(),
            frame = io.incoming.recv() => match frame {
                None => return "socket closed".into(),
                Some(text) => on_frame(&text, inbound, sink, relay, &mut waiting).await,
            },
            call = next_call(&mut calls) => match call {
                None => return "the relay of API calls ended".into(),
                Some(bytes) => {
                    if !forward_call(&bytes, &io.outgoing, &mut waiting).await {
                        return "socket closed while sending".into();
                    }
                }
            },
        }
    }
}

async fn next_call(calls: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match calls {
        Some(calls) => calls.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes a relayed call to the socket; false when the socket is gone.
async fn forward_call(
    bytes: &[u8],
    outgoing: &mpsc::Sender<String>,
    waiting: &mut HashMap<String, String>,
) -> bool {
    let Ok(call) = serde_json::from_slice::<RelayedCall>(bytes) else {
        tracing::warn!(
            platform = super::super::NAME,
            "unreadable relayed API call; dropped"
        );
        return true;
    };
    if waiting.len() >= MAX_WAITING {
        waiting.clear();
    }
    waiting.insert(call.echo.clone(), call.answer_to);
    let frame = json!({"action": call.action, "params": call.params, "echo": call.echo});
    outgoing.send(frame.to_string()).await.is_ok()
}

/// An event (published) or an API answer (relayed back to its caller).
async fn on_frame(
    text: &str,
    inbound: &OneBotInbound,
    sink: &dyn EnvelopeSink,
    relay: Option<&dyn Relay>,
    waiting: &mut HashMap<String, String>,
) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        tracing::warn!(
            platform = super::super::NAME,
            "websocket frame is not JSON; ignored"
        );
        return;
    };
    if frame.get("post_type").is_some() {
        publish_event(text, inbound, sink).await;
        return;
    }
    let echo = match &frame["echo"] {
        Value::String(echo) => echo.clone(),
        Value::Null => return,
        other => other.to_string(),
    };
    let (Some(answer_to), Some(relay)) = (waiting.remove(&echo), relay) else {
        return;
    };
    if let Err(error) = relay.send(&answer_to, text.as_bytes()).await {
        tracing::warn!(platform = super::super::NAME, %error, "cannot relay an API answer; the call will time out");
    }
}

async fn publish_event(text: &str, inbound: &OneBotInbound, sink: &dyn EnvelopeSink) {
    // The socket was authenticated when it opened: events on it carry no signature.
    let headers = http::HeaderMap::new();
    let request = WebhookRequest {
        method: &http::Method::POST,
        headers: &headers,
        query: None,
        body: text.as_bytes(),
    };
    match inbound.parse(&request) {
        Ok(Inbox::Envelopes(envelopes)) => {
            for envelope in envelopes {
                if let Err(reason) = sink.publish(envelope).await {
                    // No redelivery on a socket: say what was lost.
                    tracing::error!(platform = super::super::NAME, %reason, "cannot publish an event from the websocket; it is lost");
                }
            }
        }
        Ok(Inbox::Skipped { reason }) => {
            tracing::debug!(platform = super::super::NAME, reason, "event not routed");
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(platform = super::super::NAME, reason = %error, "websocket event refused");
        }
    }
}
