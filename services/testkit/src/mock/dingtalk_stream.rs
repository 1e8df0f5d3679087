//! DingTalk's Stream gateway: `gateway/connections/open` hands out a single-use ticket and the
//! WebSocket address; the socket carries JSON frames whose `data` is a JSON *string*. The mock
//! pings every connection, pushes robot messages as CALLBACK frames to the newest connection,
//! records acks, and redelivers what was not acked when a new connection arrives (as DingTalk
//! does). It can go silent (socket open, nothing sent) or drop every connection.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// The bot-message topic.
pub const BOT_TOPIC: &str = "/v1.0/im/bot/messages/get";

struct Connection {
    frames: mpsc::UnboundedSender<Message>,
    /// Stops sending anything (pings included) while the socket stays open.
    silent: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    tickets: HashSet<String>,
    connections: BTreeMap<u64, Connection>,
    /// Pushed frames not acked yet, by messageId (redelivered to new connections).
    unacked: BTreeMap<String, String>,
    /// Acks received: (messageId, code).
    acks: Vec<(String, i64)>,
    /// `disconnect` notices sent and not acked yet, by messageId.
    disconnects: HashSet<String>,
}

struct GatewayState {
    address: SocketAddr,
    client_id: String,
    client_secret: String,
    inner: Mutex<Inner>,
    opened: AtomicU64,
    next_id: AtomicU64,
    ping_every: Mutex<Duration>,
    notify: Notify,
}

/// The mock Stream gateway (part of [`super::dingtalk::MockDingTalk`]).
#[derive(Clone)]
pub struct StreamGateway {
    state: Arc<GatewayState>,
}

impl StreamGateway {
    pub(crate) fn new(address: SocketAddr, client_id: String, client_secret: String) -> Self {
        Self {
            state: Arc::new(GatewayState {
                address,
                client_id,
                client_secret,
                inner: Mutex::default(),
                opened: AtomicU64::new(0),
                next_id: AtomicU64::new(0),
                ping_every: Mutex::new(Duration::from_millis(300)),
                notify: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
    }

    pub(crate) fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/v1.0/gateway/connections/open", post(open))
            .route("/gateway/connect", get(connect))
            .with_state(self.state.clone())
    }

    /// How many sockets were opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.state.opened.load(Ordering::Relaxed)
    }

    /// How many sockets are open now.
    pub fn active_connections(&self) -> usize {
        self.lock().connections.len()
    }

    /// Acks received so far: (messageId, code).
    pub fn acks(&self) -> Vec<(String, i64)> {
        self.lock().acks.clone()
    }

    /// Sets how often connections are pinged.
    pub fn set_ping_interval(&self, every: Duration) {
        *self
            .state
            .ping_every
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = every;
    }

    /// Pushes a robot message (its JSON) as a CALLBACK frame; returns the frame's messageId.
    /// It goes to the newest connection now, or to the next one if none is open; until acked it
    /// is redelivered to every new connection.
    pub fn push_message(&self, message: &Value) -> String {
        self.push_data(message.to_string())
    }

    /// Pushes a CALLBACK frame whose `data` is `data` as is (for malformed-frame tests).
    pub fn push_data(&self, data: String) -> String {
        let id = format!("msg-{}", self.state.next_id.fetch_add(1, Ordering::Relaxed));
        let frame = json!({
            "specVersion": "1.0", "type": "CALLBACK",
            "headers": {"appId": "mock", "contentType": "application/json", "messageId": id,
                         "time": clawdbot_core::now_ms().to_string(), "topic": BOT_TOPIC},
            "data": data,
        })
        .to_string();
        let mut inner = self.lock();
        inner.unacked.insert(id.clone(), frame.clone());
        if let Some((_, connection)) = inner
            .connections
            .iter()
            .rev()
            .find(|(_, c)| !c.silent.load(Ordering::Relaxed))
        {
            let _sent = connection.frames.send(Message::Text(frame.into()));
        }
        id
    }

    /// Makes every open connection go silent: no frames, no pings, socket kept open (the
    /// failure a reader must detect by the silence).
    pub fn go_silent(&self) {
        for connection in self.lock().connections.values() {
            connection.silent.store(true, Ordering::Relaxed);
        }
    }

    /// Tells every connection to disconnect (a SYSTEM `disconnect` frame), and closes it
    /// `grace` later (the gateway leaves the client time to ack and reconnect); returns the
    /// notice's messageId, whose ack shows in [`StreamGateway::acks`].
    pub fn disconnect_all(&self, grace: Duration) -> String {
        let message_id = uuid::Uuid::new_v4().to_string();
        let frame = system_frame_with_id("disconnect", "{}", &message_id);
        let connections = {
            let mut inner = self.lock();
            inner.disconnects.insert(message_id.clone());
            std::mem::take(&mut inner.connections)
        };
        for connection in connections.values() {
            let _sent = connection.frames.send(Message::Text(frame.clone().into()));
        }
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            for connection in connections.into_values() {
                let _closed = connection.frames.send(Message::Close(None));
            }
        });
        message_id
    }

    /// Waits until `count` sockets were opened in all, or `timeout` passed.
    pub async fn wait_opened(&self, count: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.notify.notified();
            if self.connections_opened() >= count {
                return self.connections_opened();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.connections_opened();
            }
        }
    }
}

fn lock(state: &GatewayState) -> MutexGuard<'_, Inner> {
    state
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn system_frame(topic: &str, data: &str) -> String {
    system_frame_with_id(topic, data, &uuid::Uuid::new_v4().to_string())
}

fn system_frame_with_id(topic: &str, data: &str, message_id: &str) -> String {
    json!({
        "specVersion": "1.0", "type": "SYSTEM",
        "headers": {"contentType": "application/json", "messageId": message_id,
                     "time": clawdbot_core::now_ms().to_string(), "topic": topic},
        "data": data,
    })
    .to_string()
}

async fn open(State(state): State<Arc<GatewayState>>, body: Option<Json<Value>>) -> Response {
    let Some(Json(body)) = body else {
        return (StatusCode::BAD_REQUEST, "body").into_response();
    };
    if body["clientId"] != state.client_id.as_str()
        || body["clientSecret"] != state.client_secret.as_str()
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "invalidClientIdOrSecret", "message": "bad credentials"})),
        )
            .into_response();
    }
    let subscribed = body["subscriptions"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["topic"] == BOT_TOPIC));
    if !subscribed {
        return (StatusCode::BAD_REQUEST, "no subscription to the bot topic").into_response();
    }
    let ticket = uuid::Uuid::new_v4().to_string();
    lock(&state).tickets.insert(ticket.clone());
    Json(json!({"endpoint": format!("ws://{}/gateway/connect", state.address), "ticket": ticket}))
        .into_response()
}

async fn connect(
    State(state): State<Arc<GatewayState>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    // Tickets are single use.
    if !lock(&state).tickets.remove(&ticket) {
        return (StatusCode::UNAUTHORIZED, "unknown or used ticket").into_response();
    }
    upgrade.on_upgrade(move |socket| serve(state, socket))
}

async fn serve(state: Arc<GatewayState>, mut socket: WebSocket) {
    let id = state.opened.fetch_add(1, Ordering::Relaxed) + 1;
    let (frames, mut outgoing) = mpsc::unbounded_channel::<Message>();
    let silent = Arc::new(AtomicBool::new(false));
    {
        let mut inner = lock(&state);
        // Redeliver what earlier connections did not ack.
        for frame in inner.unacked.values() {
            let _sent = frames.send(Message::Text(frame.clone().into()));
        }
        inner.connections.insert(
            id,
            Connection {
                frames: frames.clone(),
                silent: silent.clone(),
            },
        );
    }
    state.notify.notify_waiters();
    let ping_every = *state
        .ping_every
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut ping = tokio::time::interval(ping_every);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if !silent.load(Ordering::Relaxed) {
                    let frame = system_frame("ping", r#"{"opaque":"p"}"#);
                    if socket.send(Message::Text(frame.into())).await.is_err() { break; }
                }
            }
            frame = outgoing.recv() => match frame {
                Some(Message::Close(_)) | None => { let _closed = socket.send(Message::Close(None)).await; break; }
                Some(frame) if !silent.load(Ordering::Relaxed) => {
                    if socket.send(frame).await.is_err() { break; }
                }
                Some(_) => {}
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let ack: Value = serde_json::from_str(&text).unwrap_or_default();
                    let message_id = ack["headers"]["messageId"].as_str().unwrap_or_default().to_string();
                    let code = ack["code"].as_i64().unwrap_or_default();
                    let mut inner = lock(&state);
                    if inner.unacked.remove(&message_id).is_some()
                        || inner.disconnects.remove(&message_id)
                        || code != 200
                    {
                        inner.acks.push((message_id, code));
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    lock(&state).connections.remove(&id);
}
