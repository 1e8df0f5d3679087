//! A OneBot v11 implementation's HTTP API (what NapCat serves on its HTTP server), for tests and
//! the load generator.
//!
//! Serves `send_group_msg`, `send_private_msg`, `send_msg` and the forward-message extensions
//! `send_group_forward_msg` / `send_private_forward_msg` as POST with a JSON body, checks
//! `Authorization: Bearer` like the spec says (401 missing, 403 wrong), records every accepted
//! message with its arrival time, and answers `{"status":"ok","retcode":0,"data":{"message_id"}}`.
//! Failures can be programmed: the next N calls answer an HTTP status, or a retcode; an outage
//! answers a status to every call for a while; late answers accept a message and answer after
//! a delay.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One message the mock accepted.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// `send_group_msg`, `send_private_msg` or `send_msg`.
    pub action: String,
    pub group_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The `message` field as sent (a segment array from clawdbot).
    pub message: Value,
    /// How the call came: `http` (the HTTP API) or `ws` (a WebSocket).
    pub via: &'static str,
    pub received_at: Instant,
}

impl SentMessage {
    /// Returns the concatenated text of the message's text segments (a forward message's:
    /// every node's, in order).
    pub fn text(&self) -> String {
        fn text_of(segments: &[Value]) -> String {
            segments
                .iter()
                .map(|s| match s["type"].as_str() {
                    Some("text") => s["data"]["text"].as_str().unwrap_or_default().to_string(),
                    Some("node") => s["data"]["content"]
                        .as_array()
                        .map(|content| text_of(content))
                        .unwrap_or_default(),
                    _ => String::new(),
                })
                .collect()
        }
        match &self.message {
            Value::String(text) => text.clone(),
            Value::Array(segments) => text_of(segments),
            _ => String::new(),
        }
    }
}

/// What the mock reports back to clawdbot's callback for each group message it accepts.
#[derive(Debug, Clone)]
pub enum ReportBack {
    /// The send itself, as `post_type: message_sent` from the bot (`user_id` = `self_id`):
    /// what NapCat (`reportSelfMessage`) and go-cqhttp (`report-self-message`) post.
    OwnSends { self_id: i64 },
    /// Another bot in the group repeating what ours said after `prefix`, as a `message` from
    /// `user_id`: with `prefix: "/echo "` the two bots answer each other for ever.
    Peer {
        self_id: i64,
        user_id: i64,
        prefix: String,
    },
}

/// Where and how accepted messages are reported back.
#[derive(Debug, Clone)]
struct Reporting {
    callback: SocketAddr,
    secret: Option<String>,
    mode: ReportBack,
}

/// A programmed answer for one upcoming call.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// Answer this HTTP status with an empty body.
    Http(u16),
    /// Answer 200 with `{"status":"failed","retcode":N}`.
    Retcode(i64),
}

#[derive(Default)]
pub(super) struct Shared {
    sent: Mutex<Vec<SentMessage>>,
    failures: Mutex<VecDeque<Failure>>,
    /// Every call answers this status until then (a platform outage).
    outage: Mutex<Option<(Instant, u16)>>,
    /// The next N accepted messages are answered only after the delay (a platform that takes a
    /// send and answers after the sender's timeout).
    late: Mutex<(usize, Duration)>,
    /// Calls answered with a programmed failure, and calls refused for auth.
    pub(super) failed_calls: AtomicI64,
    next_message_id: AtomicI64,
    pub(super) notify: Notify,
    pub(super) access_token: Option<String>,
    reporting: Mutex<Option<Reporting>>,
    /// Open WebSockets (either direction), for pushing events.
    pub(super) sockets: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<String>>>,
    pub(super) sockets_opened: std::sync::atomic::AtomicU64,
}

/// The running mock. The server stops when this is dropped.
pub struct MockOneBot {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    faults: super::faults::Faults,
    _server: tokio::task::JoinHandle<()>,
}

impl MockOneBot {
    /// The faults the next API calls meet (answer late, or answer an error instead).
    pub fn faults(&self) -> &super::faults::Faults {
        &self.faults
    }

    /// Starts the mock on 127.0.0.1 (a free port), requiring `access_token` when given.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(access_token: Option<&str>) -> Self {
        Self::start_on("127.0.0.1:0", access_token).await
    }

    /// Starts the mock on `address`.
    ///
    /// # Panics
    /// The address cannot be bound.
    pub async fn start_on(address: &str, access_token: Option<&str>) -> Self {
        let shared = Arc::new(Shared {
            access_token: access_token.map(str::to_string),
            ..Default::default()
        });
        let (listener, address) = super::bind(address, "onebot").await;
        let app = axum::Router::new()
            .route("/", axum::routing::get(super::onebot_ws::forward))
            .route("/{action}", post(call))
            .with_state(shared.clone());
        let faults = super::faults::Faults::default();
        let server = super::serve(listener, faults.wrap(app), "onebot");
        Self {
            address,
            shared,
            faults,
            _server: server,
        }
    }

    /// Returns the `ws_url` of the forward WebSocket server, to configure clawdbot with.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.address)
    }

    /// Connects to clawdbot's reverse WebSocket at `url` as `self_id`, with the mock's token.
    ///
    /// # Errors
    /// The connection or its handshake was refused.
    pub async fn connect_reverse(&self, url: &str, self_id: i64) -> Result<(), String> {
        super::onebot_ws::connect_reverse(
            self.shared.clone(),
            url,
            self_id,
            self.shared.access_token.as_deref(),
        )
        .await
    }

    /// How many WebSockets (either direction) are open now.
    pub fn open_sockets(&self) -> usize {
        self.shared.sockets.lock().map_or(0, |sockets| {
            sockets.iter().filter(|s| !s.is_closed()).count()
        })
    }

    /// Sends `event` (an OneBot event's JSON) on every open WebSocket; returns how many.
    pub fn push_event(&self, event: &Value) -> usize {
        super::onebot_ws::push(&self.shared, event)
    }

    /// Waits until `count` WebSockets were opened in all, or `timeout` passed; returns how many.
    pub async fn wait_sockets_opened(&self, count: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            let opened = self.shared.sockets_opened.load(Ordering::Relaxed);
            if opened >= count || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.sockets_opened.load(Ordering::Relaxed);
            }
        }
    }

    /// Returns the `api_root` to configure clawdbot with.
    pub fn api_root(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Makes the next calls fail as given, in order.
    pub fn fail_next(&self, failures: &[Failure]) {
        if let Ok(mut queue) = self.shared.failures.lock() {
            queue.extend(failures.iter().copied());
        }
    }

    /// Answers every call with `status` for `duration` from now (nothing is accepted).
    pub fn outage(&self, status: u16, duration: Duration) {
        if let Ok(mut outage) = self.shared.outage.lock() {
            *outage = Some((Instant::now() + duration, status));
        }
    }

    /// Accepts the next `count` messages (they count as sent) but answers each only after
    /// `delay`.
    pub fn answer_late(&self, count: usize, delay: Duration) {
        if let Ok(mut late) = self.shared.late.lock() {
            *late = (count, delay);
        }
    }

    /// Reports every accepted group message back to `callback` (clawdbot's
    /// `/clawdbot/onebot/callback`, signed with `secret` when given) as `mode` says.
    pub fn report_back(&self, callback: SocketAddr, secret: Option<&str>, mode: ReportBack) {
        if let Ok(mut reporting) = self.shared.reporting.lock() {
            *reporting = Some(Reporting {
                callback,
                secret: secret.map(str::to_string),
                mode,
            });
        }
    }

    /// Returns every accepted message so far.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared
            .sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default()
    }

    /// Returns how many messages were accepted so far.
    pub fn sent_count(&self) -> usize {
        self.shared
            .sent
            .lock()
            .map(|sent| sent.len())
            .unwrap_or_default()
    }

    /// Returns how many calls were answered with a failure (programmed or auth).
    pub fn failed_calls(&self) -> i64 {
        self.shared.failed_calls.load(Ordering::Relaxed)
    }

    /// Waits until at least `count` messages were accepted, or `timeout` passed; returns them.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<SentMessage> {
        super::wait_for_count(&self.shared.notify, count, timeout, || self.sent()).await
    }
}

async fn call(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(status) = check_token(&shared, &headers, None) {
        return refuse(&shared, status);
    }
    let Some(Json(body)) = body else {
        return refuse(&shared, StatusCode::BAD_REQUEST);
    };
    match api_call(&shared, "http", action, &body).await {
        Ok(answer) => Json(answer).into_response(),
        Err(status) => status.into_response(),
    }
}

/// `Authorization: Bearer` (or `?access_token=`) against the mock's token: 401 missing, 403
/// wrong, as the spec says.
pub(super) fn check_token(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), StatusCode> {
    let Some(token) = &shared.access_token else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("access_token="))));
    match given {
        None => Err(StatusCode::UNAUTHORIZED),
        Some(given) if given != token => Err(StatusCode::FORBIDDEN),
        Some(_) => Ok(()),
    }
}

/// One API call, whichever transport brought it: the answer JSON, or an HTTP status to fail
/// with (programmed failures, unknown actions).
pub(super) async fn api_call(
    shared: &Arc<Shared>,
    via: &'static str,
    action: String,
    body: &Value,
) -> Result<Value, StatusCode> {
    if !matches!(
        action.as_str(),
        "send_group_msg"
            | "send_private_msg"
            | "send_msg"
            | "send_group_forward_msg"
            | "send_private_forward_msg"
    ) {
        shared.failed_calls.fetch_add(1, Ordering::Relaxed);
        return Err(StatusCode::NOT_FOUND);
    }
    let outage = shared
        .outage
        .lock()
        .ok()
        .and_then(|outage| *outage)
        .filter(|(until, _)| Instant::now() < *until)
        .map(|(_, status)| Failure::Http(status));
    let failure = outage.or_else(|| {
        shared
            .failures
            .lock()
            .ok()
            .and_then(|mut queue| queue.pop_front())
    });
    match failure {
        Some(Failure::Http(status)) => {
            shared.failed_calls.fetch_add(1, Ordering::Relaxed);
            return Err(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
        Some(Failure::Retcode(retcode)) => {
            shared.failed_calls.fetch_add(1, Ordering::Relaxed);
            return Ok(
                json!({"status": "failed", "retcode": retcode, "data": null, "message": "mock refusal", "wording": "mock refusal"}),
            );
        }
        None => {}
    }
    let reporting = shared.reporting.lock().ok().and_then(|r| r.clone());
    let sent = SentMessage {
        action,
        group_id: body["group_id"].as_i64(),
        user_id: body["user_id"].as_i64(),
        // A forward message carries `messages` (node segments) instead of `message`.
        message: if body["messages"].is_array() {
            body["messages"].clone()
        } else {
            body["message"].clone()
        },
        via,
        received_at: Instant::now(),
    };
    let message_id = shared.next_message_id.fetch_add(1, Ordering::Relaxed) + 1;
    if let (Some(reporting), Some(group_id)) = (reporting, sent.group_id) {
        let event = reported_event(&reporting.mode, group_id, message_id, &sent);
        tokio::spawn(report(reporting, event));
    }
    if let Ok(mut all) = shared.sent.lock() {
        all.push(sent);
    }
    shared.notify.notify_waiters();
    let delay = shared.late.lock().ok().and_then(|mut late| {
        (late.0 > 0).then(|| {
            late.0 -= 1;
            late.1
        })
    });
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    Ok(json!({"status": "ok", "retcode": 0, "data": {"message_id": message_id}}))
}

/// The event an implementation posts for `sent`, built from the OneBot v11 spec's message
/// event fields (not from clawdbot's decoder).
fn reported_event(mode: &ReportBack, group_id: i64, message_id: i64, sent: &SentMessage) -> Value {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (post_type, self_id, user_id, message) = match mode {
        ReportBack::OwnSends { self_id } => {
            ("message_sent", *self_id, *self_id, sent.message.clone())
        }
        ReportBack::Peer {
            self_id,
            user_id,
            prefix,
        } => (
            "message",
            *self_id,
            *user_id,
            json!([{"type": "text", "data": {"text": format!("{prefix}{}", sent.text())}}]),
        ),
    };
    json!({
        "time": time, "self_id": self_id, "post_type": post_type, "message_type": "group",
        "sub_type": "normal", "message_id": 1_000_000 + message_id, "group_id": group_id,
        "user_id": user_id, "message": message, "raw_message": sent.text(), "font": 0,
        "sender": {"user_id": user_id, "nickname": "peer", "card": "", "role": "member"},
    })
}

/// Posts `event` to the callback as an implementation's HTTP POST reporting does: plain
/// HTTP/1.1, `X-Self-ID`, and `X-Signature: sha1=<hex HMAC-SHA1 of the body>` with a secret.
async fn report(reporting: Reporting, event: Value) {
    use hmac::{KeyInit, Mac};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = event.to_string();
    let mut head = format!(
        "POST /clawdbot/onebot/callback HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Self-ID: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reporting.callback,
        event["self_id"],
        body.len()
    );
    if let Some(secret) = &reporting.secret
        && let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
    {
        mac.update(body.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        head.push_str(&format!("X-Signature: sha1={signature}\r\n"));
    }
    head.push_str("\r\n");
    let Ok(mut stream) = tokio::net::TcpStream::connect(reporting.callback).await else {
        eprintln!(
            "mock onebot: cannot reach the callback {}",
            reporting.callback
        );
        return;
    };
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(Duration::from_secs(5), written).await {
        Ok(Ok(answer)) if answer.starts_with(b"HTTP/1.1 2") => {}
        other => eprintln!("mock onebot: report refused or lost: {other:?}"),
    }
}

fn refuse(shared: &Shared, status: StatusCode) -> Response {
    shared.failed_calls.fetch_add(1, Ordering::Relaxed);
    status.into_response()
}
