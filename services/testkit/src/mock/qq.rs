//! QQ's open platform for tests and the load generator, and the events QQ sends.
//!
//! API side: `getAppAccessToken` (checks appId/clientSecret; `expires_in` as a *string*, like
//! QQ), the message endpoints (group, C2C, channel, DM: 401 for an unknown token, refused
//! without `msg_id`/`event_id` since proactive messages stopped, `msg_seq` unique per message,
//! at most 5 replies per message) and the files endpoints. Events side: [`QqEvents`] signs
//! payloads with the bot's Ed25519 key like QQ.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::doc_crypto::qq as sign;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One message the mock accepted.
#[derive(Debug, Clone)]
pub struct QqSent {
    /// `groups/<id>`, `users/<id>`, `channels/<id>` or `dms/<id>`.
    pub target: String,
    pub body: Value,
    pub received_at: Instant,
}

impl QqSent {
    pub fn content(&self) -> String {
        self.body["content"]
            .as_str()
            .or(self.body["markdown"]["content"].as_str())
            .unwrap_or_default()
            .to_string()
    }
    pub fn msg_seq(&self) -> u64 {
        self.body["msg_seq"].as_u64().unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    tokens: HashSet<String>,
    sent: Vec<QqSent>,
    /// (msg_id, msg_seq) pairs used.
    seqs: HashSet<(String, u64)>,
    replies: HashMap<String, u64>,
    refusals: Vec<(String, i64)>,
    uploads: u64,
    /// Interactions acknowledged: (interaction id, code).
    interaction_acks: Vec<(String, i64)>,
}

struct Shared {
    app_id: String,
    secret: String,
    inner: Mutex<Inner>,
    token_calls: AtomicU64,
    next_id: AtomicU64,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running mock. The server stops when this is dropped.
pub struct MockQq {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    faults: super::faults::Faults,
    _server: tokio::task::JoinHandle<()>,
}

fn error(shared: &Shared, status: StatusCode, code: i64, message: &str) -> Response {
    shared.lock().refusals.push((message.to_string(), code));
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

impl MockQq {
    /// The faults the next API calls meet (answer late, or answer an error instead).
    pub fn faults(&self) -> &super::faults::Faults {
        &self.faults
    }

    /// Starts the mock for the bot `app_id` with `secret`.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(app_id: &str, secret: &str) -> Self {
        Self::start_on("127.0.0.1:0", app_id, secret).await
    }

    /// Starts the mock on `address`.
    ///
    /// # Panics
    /// The address cannot be bound.
    pub async fn start_on(address: &str, app_id: &str, secret: &str) -> Self {
        let shared = Arc::new(Shared {
            app_id: app_id.to_string(),
            secret: secret.to_string(),
            inner: Mutex::default(),
            token_calls: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            notify: Notify::new(),
        });
        let (listener, address) = super::bind(address, "qq").await;
        let app = axum::Router::new()
            .route("/app/getAppAccessToken", post(access_token))
            .route("/v2/{kind}/{target}/messages", post(message))
            .route("/{kind}/{target}/messages", post(message))
            .route("/v2/{kind}/{target}/files", post(files))
            .route("/interactions/{id}", axum::routing::put(interaction))
            .with_state(shared.clone());
        let faults = super::faults::Faults::default();
        let server = super::serve(listener, faults.wrap(app), "qq");
        Self {
            address,
            shared,
            faults,
            _server: server,
        }
    }

    /// The `api_base` to configure.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The `token_url` to configure.
    pub fn token_url(&self) -> String {
        format!("http://{}/app/getAppAccessToken", self.address)
    }

    pub fn token_calls(&self) -> u64 {
        self.shared.token_calls.load(Ordering::Relaxed)
    }

    pub fn sent(&self) -> Vec<QqSent> {
        self.shared.lock().sent.clone()
    }

    /// Returns the button clicks acknowledged so far: (interaction id, code).
    pub fn interaction_acks(&self) -> Vec<(String, i64)> {
        self.shared.lock().interaction_acks.clone()
    }

    pub fn sent_count(&self) -> usize {
        self.shared.lock().sent.len()
    }

    /// Refused calls: (message, code).
    pub fn refusals(&self) -> Vec<(String, i64)> {
        self.shared.lock().refusals.clone()
    }

    pub fn uploads(&self) -> u64 {
        self.shared.lock().uploads
    }

    /// Waits until at least `count` messages were accepted, or `timeout` passed.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<QqSent> {
        super::wait_for_count(&self.shared.notify, count, timeout, || self.sent()).await
    }
}

async fn access_token(State(shared): State<Arc<Shared>>, body: Option<Json<Value>>) -> Response {
    shared.token_calls.fetch_add(1, Ordering::Relaxed);
    let Some(Json(body)) = body else {
        return error(&shared, StatusCode::BAD_REQUEST, 100_016, "invalid body");
    };
    if body["appId"] != shared.app_id.as_str() || body["clientSecret"] != shared.secret.as_str() {
        return error(
            &shared,
            StatusCode::BAD_REQUEST,
            100_016,
            "invalid appid or secret",
        );
    }
    let token = format!("qq-token-{}", uuid::Uuid::new_v4().simple());
    shared.lock().tokens.insert(token.clone());
    // QQ sends expires_in as a string.
    Json(json!({"access_token": token, "expires_in": "7200"})).into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("QQBot "));
    given.is_some_and(|token| shared.lock().tokens.contains(token))
}

fn accept(shared: &Shared, target: String, body: Value) -> Response {
    let msg = body["msg_id"]
        .as_str()
        .or(body["event_id"].as_str())
        .unwrap_or_default()
        .to_string();
    if msg.is_empty() {
        return error(
            shared,
            StatusCode::BAD_REQUEST,
            40_034_025,
            "proactive messages are not allowed",
        );
    }
    let seq = body["msg_seq"].as_u64().unwrap_or(1);
    {
        let mut inner = shared.lock();
        if !inner.seqs.insert((msg.clone(), seq)) {
            drop(inner);
            return error(
                shared,
                StatusCode::BAD_REQUEST,
                40_054_005,
                "msg_seq already used for this message",
            );
        }
        let replies = inner.replies.entry(msg).or_default();
        *replies += 1;
        if *replies > 5 {
            drop(inner);
            return error(
                shared,
                StatusCode::BAD_REQUEST,
                22_009,
                "reply limit for this message exceeded",
            );
        }
        inner.sent.push(QqSent {
            target,
            body,
            received_at: Instant::now(),
        });
    }
    shared.notify.notify_waiters();
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    Json(json!({"id": format!("qqmsg-{id}"), "timestamp": "2026-11-25T12:00:00+08:00"}))
        .into_response()
}

/// `PUT /interactions/{id}` with `{"code": N}`: a button click's result (the bot API's
/// "回应回调" — 0 success, 1–5 failure kinds); answered with an empty 204.
async fn interaction(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(&shared, StatusCode::UNAUTHORIZED, 11_244, "token invalid");
    }
    let Some(code) = body.and_then(|Json(body)| body["code"].as_i64()) else {
        return error(&shared, StatusCode::BAD_REQUEST, 40_034_001, "code missing");
    };
    shared.lock().interaction_acks.push((id, code));
    shared.notify.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}

/// The message endpoints: `/v2/groups|users/{id}/messages` and `/channels|dms/{id}/messages`.
async fn message(
    State(shared): State<Arc<Shared>>,
    Path((kind, target)): Path<(String, String)>,
    matched: axum::extract::MatchedPath,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(&shared, StatusCode::UNAUTHORIZED, 11_244, "token invalid");
    }
    let Some(Json(body)) = body else {
        return error(&shared, StatusCode::BAD_REQUEST, 40_034_001, "invalid body");
    };
    // Groups and users are v2 endpoints; guild channels and DMs are not.
    let v2 = matched.as_str().starts_with("/v2/");
    let known = match kind.as_str() {
        "groups" | "users" => v2,
        "channels" | "dms" => !v2,
        _ => false,
    };
    if !known {
        return error(&shared, StatusCode::NOT_FOUND, 404, "no such endpoint");
    }
    if body["msg_type"] == 7
        && body["media"]["file_info"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return error(
            &shared,
            StatusCode::BAD_REQUEST,
            40_034_002,
            "media without file_info",
        );
    }
    accept(&shared, format!("{kind}/{target}"), body)
}

async fn files(
    State(shared): State<Arc<Shared>>,
    Path((kind, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(&shared, StatusCode::UNAUTHORIZED, 11_244, "token invalid");
    }
    let Some(Json(body)) = body else {
        return error(&shared, StatusCode::BAD_REQUEST, 40_034_001, "invalid body");
    };
    if !body["url"].as_str().is_some_and(|u| u.starts_with("http"))
        || !(1..=4).contains(&body["file_type"].as_u64().unwrap_or(0))
    {
        return error(
            &shared,
            StatusCode::BAD_REQUEST,
            40_034_003,
            "file_type and url required",
        );
    }
    shared.lock().uploads += 1;
    Json(json!({"file_uuid": uuid::Uuid::new_v4().to_string(), "file_info": format!("fileinfo-{kind}-{target}"), "ttl": 0})).into_response()
}

/// Builds and signs the events QQ posts to a bot's callback.
#[derive(Clone)]
pub struct QqEvents {
    key: ed25519_dalek::SigningKey,
    app_id: String,
}

impl QqEvents {
    pub fn new(app_id: &str, secret: &str) -> Self {
        Self {
            key: sign::key_from_secret(secret),
            app_id: app_id.to_string(),
        }
    }

    /// The signature QQ expects in the answer to an op 13 URL validation (Ed25519 is
    /// deterministic, so an answer can be compared with it byte for byte).
    pub fn validation_signature(&self, event_ts: &str, plain_token: &str) -> String {
        sign::sign(&self.key, event_ts, plain_token.as_bytes())
    }

    /// The headers of a POST of `body` signed now.
    pub fn headers(&self, body: &str) -> Vec<(&'static str, String)> {
        self.headers_at(body, clawdbot_core::now_ms() / 1000)
    }

    /// The headers of a POST of `body` signed at `timestamp` (seconds).
    pub fn headers_at(&self, body: &str, timestamp: i64) -> Vec<(&'static str, String)> {
        let ts = timestamp.to_string();
        vec![
            ("x-bot-appid", self.app_id.clone()),
            ("user-agent", "QQBot-Callback".to_string()),
            ("x-signature-timestamp", ts.clone()),
            (
                "x-signature-ed25519",
                sign::sign(&self.key, &ts, body.as_bytes()),
            ),
        ]
    }

    /// A group @ message event from member `MEMBER1`, sent `age` ago.
    pub fn group_at(
        &self,
        event_id: &str,
        msg_id: &str,
        group: &str,
        content: &str,
        age: Duration,
    ) -> String {
        self.group_at_from("MEMBER1", event_id, msg_id, group, content, age)
    }

    /// A group @ message event from `member` (its `member_openid`), sent `age` ago.
    pub fn group_at_from(
        &self,
        member: &str,
        event_id: &str,
        msg_id: &str,
        group: &str,
        content: &str,
        age: Duration,
    ) -> String {
        let at = time::OffsetDateTime::now_utc() - age;
        let timestamp = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        json!({"op": 0, "id": event_id, "t": "GROUP_AT_MESSAGE_CREATE", "d": {
            "id": msg_id, "content": format!(" {content}"), "timestamp": timestamp,
            "group_openid": group, "author": {"member_openid": member},
        }})
        .to_string()
    }
}
