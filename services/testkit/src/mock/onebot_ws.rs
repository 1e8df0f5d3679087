//! The mock OneBot implementation's WebSocket sides, written from the OneBot v11 spec
//! (`communication/ws.md`, `ws-reverse.md`): a forward WebSocket server at `/` (clawdbot
//! connects, `Authorization: Bearer` or `?access_token=` checked) and a reverse client (the mock
//! connects to clawdbot with `X-Self-ID`, `X-Client-Role: Universal` and the token). On either,
//! API calls `{"action","params","echo"}` are handled like the HTTP API's (recorded, failures
//! as programmed) and answered with the same `echo`; events are pushed with
//! [`super::onebot::MockOneBot::push_event`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message as AxumMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::onebot::{Shared, api_call, check_token};

/// `GET /`: the forward WebSocket server.
pub(super) async fn forward(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(status) = check_token(&shared, &headers, query.as_deref()) {
        shared.failed_calls.fetch_add(1, Ordering::Relaxed);
        return status.into_response();
    }
    upgrade.on_upgrade(move |socket| serve_axum(shared, socket))
}

async fn serve_axum(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut pushed = register(&shared);
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(AxumMessage::Text(text))) => {
                    if let Some(answer) = answer(&shared, text.as_str()).await
                        && socket.send(AxumMessage::Text(answer.into())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(AxumMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            event = pushed.recv() => match event {
                Some(event) => {
                    if socket.send(AxumMessage::Text(event.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
}

/// Connects to clawdbot's reverse WebSocket at `url` as account `self_id` and serves it in
/// the background.
///
/// # Errors
/// The connection or its handshake was refused (the message says how).
pub(super) async fn connect_reverse(
    shared: Arc<Shared>,
    url: &str,
    self_id: i64,
    token: Option<&str>,
) -> Result<(), String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    let self_id = self_id.to_string();
    for (name, value) in [
        ("x-self-id", Some(self_id.as_str())),
        ("x-client-role", Some("Universal")),
    ] {
        if let Some(value) = value.and_then(|v| v.parse().ok()) {
            headers.insert(name, value);
        }
    }
    if let Some(value) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
        headers.insert("authorization", value);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    // Registered before returning, so that an event pushed right after goes out on it.
    let pushed = register(&shared);
    tokio::spawn(serve_client(shared, socket, pushed));
    Ok(())
}

async fn serve_client<S>(
    shared: Arc<Shared>,
    mut socket: tokio_tungstenite::WebSocketStream<S>,
    mut pushed: mpsc::UnboundedReceiver<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(answer) = answer(&shared, text.as_str()).await
                        && socket.send(Message::Text(answer.into())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            event = pushed.recv() => match event {
                Some(event) => {
                    if socket.send(Message::Text(event.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
}

/// Adds a socket to those events are pushed to; returns where its pushed events arrive.
fn register(shared: &Shared) -> mpsc::UnboundedReceiver<String> {
    let (pushed_tx, pushed) = mpsc::unbounded_channel::<String>();
    if let Ok(mut sockets) = shared.sockets.lock() {
        sockets.retain(|socket| !socket.is_closed());
        sockets.push(pushed_tx);
    }
    shared.sockets_opened.fetch_add(1, Ordering::Relaxed);
    shared.notify.notify_waiters();
    pushed
}

/// The answer to an API call frame (with its `echo`), or none for anything else.
async fn answer(shared: &Arc<Shared>, text: &str) -> Option<String> {
    let frame: Value = serde_json::from_str(text).ok()?;
    let action = frame["action"].as_str()?.to_string();
    let mut answer = match api_call(shared, "ws", action, &frame["params"]).await {
        Ok(answer) => answer,
        // A socket has no HTTP status: the spec's failure shape, the status as retcode.
        Err(status) => {
            json!({"status": "failed", "retcode": status.as_u16(), "data": null, "message": "mock refusal"})
        }
    };
    answer["echo"] = frame["echo"].clone();
    Some(answer.to_string())
}

/// Sends `event` on every open socket; returns how many took it.
pub(super) fn push(shared: &Shared, event: &Value) -> usize {
    let text = event.to_string();
    shared.sockets.lock().map_or(0, |sockets| {
        sockets
            .iter()
            .filter(|socket| socket.send(text.clone()).is_ok())
            .count()
    })
}
