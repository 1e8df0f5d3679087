//! Sockets a platform's side opens to us (OneBot reverse WebSocket) at
//! `/clawdbot/{platform}[/{id}]/ws[/{role}]`: the account's endpoint checks the handshake, the
//! upgraded socket's frames are pumped to it, and the events it publishes go through the same
//! publisher (dedupe, the inbound stream) as webhooks. The socket lives until it closes or
//! the process shuts down.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clawdbot_platforms::socket::SocketIo;
use clawdbot_platforms::{EnvelopeSink, Inbound};
use tokio::sync::mpsc;

use crate::IngressState;

/// Frames buffered each way between the socket and the platform.
const FRAMES: usize = 256;

/// Every socket route (`/clawdbot/{platform}[/{id}]/ws[/{role}]`): the path's named parts.
pub(crate) async fn upgrade(
    State(state): State<Arc<IngressState>>,
    Path(parts): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let part = |name: &str| parts.get(name).map(String::as_str);
    accept(
        &state,
        part("platform").unwrap_or_default(),
        part("id"),
        part("role"),
        query,
        headers,
        upgrade,
    )
}

fn accept(
    state: &Arc<IngressState>,
    platform: &str,
    id: Option<&str>,
    role: Option<&str>,
    query: Option<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let inbound = match id {
        Some(id) => state.inbounds.get(&(platform.to_string(), id.to_string())),
        None => state.defaults.get(platform),
    };
    let Some(inbound) = inbound.cloned() else {
        return crate::handler::not_found(state, platform, id);
    };
    let Some(endpoint) = inbound.socket() else {
        let reason = format!(
            "account `{}` of `{platform}` takes no websocket here (for OneBot: `transport: ws-reverse`)",
            inbound.bot_id()
        );
        tracing::warn!(platform, %reason, "websocket refused");
        return (StatusCode::NOT_FOUND, format!("{reason}\n")).into_response();
    };
    let role = match endpoint.accept(&headers, query.as_deref(), role) {
        Ok(role) => role,
        Err(error) => {
            tracing::warn!(platform, bot_id = inbound.bot_id(), error_type = error.kind(), reason = %error, "websocket refused");
            return (error.status(), format!("{error}\n")).into_response();
        }
    };
    let state = state.clone();
    upgrade.on_upgrade(move |socket| serve(state, inbound, role, socket))
}

async fn serve(
    state: Arc<IngressState>,
    inbound: Arc<dyn Inbound>,
    role: String,
    socket: WebSocket,
) {
    let Some(endpoint) = inbound.socket() else {
        return;
    };
    let platform = inbound.platform();
    tracing::info!(
        platform,
        bot_id = inbound.bot_id(),
        role,
        "websocket connected"
    );
    let sink: Arc<dyn EnvelopeSink> = Arc::new(crate::connections::PublisherSink {
        publisher: state.publisher.clone(),
    });
    let shutdown = state.shutdown.clone();
    let stop = Box::pin(async move { shutdown.cancelled().await });
    let ended = endpoint.serve(pump(socket), &role, &*sink, stop).await;
    tracing::info!(platform, bot_id = inbound.bot_id(), reason = %ended, "websocket ended");
}

/// Moves text frames between the upgraded socket and a [`SocketIo`] (axum answers pings).
fn pump(socket: WebSocket) -> SocketIo {
    let (incoming_tx, incoming) = mpsc::channel::<String>(FRAMES);
    let (outgoing, mut outgoing_rx) = mpsc::channel::<String>(FRAMES);
    tokio::spawn(async move {
        let mut socket = socket;
        loop {
            tokio::select! {
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if incoming_tx.send(text.to_string()).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                frame = outgoing_rx.recv() => match frame {
                    Some(text) => {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _closed = socket.send(Message::Close(None)).await;
                        break;
                    }
                },
            }
        }
    });
    SocketIo { incoming, outgoing }
}
