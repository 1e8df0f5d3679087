//! A WeCom server (qyapi.weixin.qq.com) for tests and the load generator, and the callbacks
//! WeCom would send.
//!
//! API side: `gettoken` (checks corp id and secret, issues tokens with an expiry), `message/send`
//! (40014 unknown token, 42001 expired; `invaliduser` for members it does not know),
//! `media/upload` (multipart part `media`), `webhook/send` and `webhook/upload_media` for
//! group robots (93000 unknown key, 45009 past the per-robot limit). Answers can be programmed
//! (the next N sends answer an errcode) and tokens expired on demand.
//!
//! Callback side: [`WeComCallbacks`] encrypts and signs messages the way WeCom does, with the
//! documented crypto (whose vectors the platform tests reproduce).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::doc_crypto::{url_encode, wecom::CallbackKeys};
use axum::Json;
use axum::extract::{Multipart, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One message the mock accepted.
#[derive(Debug, Clone)]
pub struct WeComSent {
    /// `app` (message/send) or the robot key (webhook/send).
    pub via: String,
    /// `touser` of an app message.
    pub touser: String,
    pub msgtype: String,
    /// The whole JSON body as sent.
    pub body: Value,
    pub received_at: Instant,
}

impl WeComSent {
    /// Returns the text or markdown content.
    pub fn content(&self) -> String {
        self.body[&self.msgtype]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// How the mock behaves; change before `start`.
#[derive(Debug, Clone)]
pub struct MockWeComSettings {
    pub corp_id: String,
    pub secret: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
    /// Members `message/send` knows; `None` knows everyone.
    pub known_users: Option<HashSet<String>>,
    /// Robot keys it accepts.
    pub robot_keys: Vec<String>,
    /// The per-robot limit: this many per window (WeCom: 20 a minute).
    pub robot_limit: usize,
    pub robot_window: Duration,
}

impl Default for MockWeComSettings {
    fn default() -> Self {
        Self {
            corp_id: "wwmockcorp0000001".into(),
            secret: "mock-secret".into(),
            token_lifetime: Duration::from_secs(7200),
            known_users: None,
            robot_keys: vec!["robot-key-ops".into()],
            robot_limit: 20,
            robot_window: Duration::from_secs(60),
        }
    }
}

struct Token {
    value: String,
    expires_at: Instant,
}

#[derive(Default)]
struct Inner {
    tokens: Vec<Token>,
    sent: Vec<WeComSent>,
    uploads: Vec<(String, String, usize)>,
    robot_sends: HashMap<String, VecDeque<Instant>>,
    /// errcodes the next sends answer, in order.
    failures: VecDeque<i64>,
    /// Refusals: (path, errcode).
    refusals: Vec<(String, i64)>,
}

struct Shared {
    settings: MockWeComSettings,
    inner: Mutex<Inner>,
    gettoken_calls: AtomicU64,
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
pub struct MockWeCom {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    faults: super::faults::Faults,
    _server: tokio::task::JoinHandle<()>,
}

impl MockWeCom {
    /// The faults the next API calls meet (answer late, or answer an error instead).
    pub fn faults(&self) -> &super::faults::Faults {
        &self.faults
    }

    /// Starts the mock on 127.0.0.1 (a free port) with `settings`.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(settings: MockWeComSettings) -> Self {
        Self::start_on("127.0.0.1:0", settings).await
    }

    /// Starts the mock on `address`.
    ///
    /// # Panics
    /// The address cannot be bound.
    pub async fn start_on(address: &str, settings: MockWeComSettings) -> Self {
        let shared = Arc::new(Shared {
            settings,
            inner: Mutex::default(),
            gettoken_calls: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            notify: Notify::new(),
        });
        let (listener, address) = super::bind(address, "wecom").await;
        let app = axum::Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/message/send", post(message_send))
            .route("/cgi-bin/media/upload", post(media_upload))
            .route("/cgi-bin/webhook/send", post(webhook_send))
            .route("/cgi-bin/webhook/upload_media", post(webhook_upload))
            .with_state(shared.clone());
        let faults = super::faults::Faults::default();
        let server = super::serve(listener, faults.wrap(app), "wecom");
        Self {
            address,
            shared,
            faults,
            _server: server,
        }
    }

    /// Returns the `api_base` to configure clawdbot with.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns how many times `gettoken` was called.
    pub fn gettoken_calls(&self) -> u64 {
        self.shared.gettoken_calls.load(Ordering::Relaxed)
    }

    /// Expires every token issued so far (the next call with one answers 42001).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for token in &mut self.shared.lock().tokens {
            token.expires_at = now;
        }
    }

    /// Makes the next sends (app or robot) answer these errcodes, in order.
    pub fn fail_next(&self, errcodes: &[i64]) {
        self.shared.lock().failures.extend(errcodes.iter().copied());
    }

    /// Returns every accepted message so far.
    pub fn sent(&self) -> Vec<WeComSent> {
        self.shared.lock().sent.clone()
    }

    /// Returns how many messages were accepted so far.
    pub fn sent_count(&self) -> usize {
        self.shared.lock().sent.len()
    }

    /// Returns the uploads so far: (type, file name, bytes).
    pub fn uploads(&self) -> Vec<(String, String, usize)> {
        self.shared.lock().uploads.clone()
    }

    /// Returns the refused calls so far: (path, errcode).
    pub fn refusals(&self) -> Vec<(String, i64)> {
        self.shared.lock().refusals.clone()
    }

    /// Waits until at least `count` messages were accepted, or `timeout` passed; returns them.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<WeComSent> {
        super::wait_for_count(&self.shared.notify, count, timeout, || self.sent()).await
    }
}

fn errcode(code: i64, message: &str) -> Response {
    Json(json!({"errcode": code, "errmsg": message})).into_response()
}

fn refuse(shared: &Shared, path: &str, code: i64, message: &str) -> Response {
    shared.lock().refusals.push((path.to_string(), code));
    errcode(code, message)
}

async fn gettoken(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.gettoken_calls.fetch_add(1, Ordering::Relaxed);
    let settings = &shared.settings;
    if query.get("corpid") != Some(&settings.corp_id) {
        return refuse(&shared, "gettoken", 40013, "invalid corpid");
    }
    if query.get("corpsecret") != Some(&settings.secret) {
        return refuse(&shared, "gettoken", 40001, "invalid secret");
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let value = format!("mock-token-{id}-{}", uuid::Uuid::new_v4().simple());
    shared.lock().tokens.push(Token {
        value: value.clone(),
        expires_at: Instant::now() + settings.token_lifetime,
    });
    Json(json!({
        "errcode": 0, "errmsg": "ok",
        "access_token": value,
        "expires_in": settings.token_lifetime.as_secs(),
    }))
    .into_response()
}

/// Checks `access_token`: `None` when valid, else the refusal.
fn check_token(shared: &Shared, path: &str, query: &HashMap<String, String>) -> Option<Response> {
    let Some(given) = query.get("access_token") else {
        return Some(refuse(shared, path, 41001, "access_token missing"));
    };
    let expired = {
        let inner = shared.lock();
        inner
            .tokens
            .iter()
            .find(|t| &t.value == given)
            .map(|token| token.expires_at <= Instant::now())
    };
    match expired {
        None => Some(refuse(shared, path, 40014, "invalid access_token")),
        Some(true) => Some(refuse(shared, path, 42001, "access_token expired")),
        Some(false) => None,
    }
}

fn programmed_failure(shared: &Shared, path: &str) -> Option<Response> {
    let code = shared.lock().failures.pop_front()?;
    Some(refuse(shared, path, code, "mock programmed failure"))
}

fn record(shared: &Shared, via: &str, body: &Value) {
    let sent = WeComSent {
        via: via.to_string(),
        touser: body["touser"].as_str().unwrap_or_default().to_string(),
        msgtype: body["msgtype"].as_str().unwrap_or_default().to_string(),
        body: body.clone(),
        received_at: Instant::now(),
    };
    shared.lock().sent.push(sent);
    shared.notify.notify_waiters();
}

async fn message_send(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let path = "message/send";
    if let Some(refusal) = check_token(&shared, path, &query) {
        return refusal;
    }
    let Some(Json(body)) = body else {
        return refuse(&shared, path, 44004, "empty or invalid json");
    };
    if let Some(failure) = programmed_failure(&shared, path) {
        return failure;
    }
    let touser = body["touser"].as_str().unwrap_or_default();
    let msgtype = body["msgtype"].as_str().unwrap_or_default();
    if body[msgtype].is_null() {
        return refuse(&shared, path, 40008, "invalid message type");
    }
    let (valid, invalid): (Vec<&str>, Vec<&str>) = touser.split('|').partition(|user| {
        shared
            .settings
            .known_users
            .as_ref()
            .is_none_or(|known| known.contains(*user))
    });
    if valid.is_empty() {
        return refuse(&shared, path, 81013, "user & party & tag all invalid");
    }
    record(&shared, "app", &body);
    let msgid = format!("msg-{}", shared.next_id.fetch_add(1, Ordering::Relaxed));
    Json(json!({
        "errcode": 0, "errmsg": "ok",
        "invaliduser": invalid.join("|"),
        "msgid": msgid,
    }))
    .into_response()
}

async fn read_upload(mut multipart: Multipart) -> Option<(String, usize)> {
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("media") {
            let name = field.file_name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.ok()?;
            return Some((name, bytes.len()));
        }
    }
    None
}

async fn media_upload(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    multipart: Multipart,
) -> Response {
    let path = "media/upload";
    if let Some(refusal) = check_token(&shared, path, &query) {
        return refusal;
    }
    upload(&shared, path, query.get("type"), multipart).await
}

async fn upload(
    shared: &Shared,
    path: &str,
    kind: Option<&String>,
    multipart: Multipart,
) -> Response {
    let Some(kind) = kind.filter(|k| ["image", "voice", "video", "file"].contains(&k.as_str()))
    else {
        return refuse(shared, path, 40004, "invalid media type");
    };
    let Some((name, size)) = read_upload(multipart).await else {
        return refuse(shared, path, 41005, "media data missing");
    };
    if size <= 5 {
        return refuse(shared, path, 40006, "invalid media size");
    }
    shared.lock().uploads.push((kind.clone(), name, size));
    let id = format!("media-{}", shared.next_id.fetch_add(1, Ordering::Relaxed));
    Json(json!({"errcode": 0, "errmsg": "ok", "type": kind, "media_id": id, "created_at": "1700000000"}))
        .into_response()
}

/// Returns the robot key if the mock knows it, else the refusal.
fn check_robot(
    shared: &Shared,
    path: &str,
    query: &HashMap<String, String>,
) -> Result<String, Box<Response>> {
    let key = query.get("key").cloned().unwrap_or_default();
    if !shared.settings.robot_keys.contains(&key) {
        return Err(Box::new(refuse(shared, path, 93000, "invalid webhook url")));
    }
    Ok(key)
}

async fn webhook_send(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let path = "webhook/send";
    let key = match check_robot(&shared, path, &query) {
        Ok(key) => key,
        Err(refusal) => return *refusal,
    };
    let Some(Json(body)) = body else {
        return refuse(&shared, path, 44004, "empty or invalid json");
    };
    if let Some(failure) = programmed_failure(&shared, path) {
        return failure;
    }
    let over_limit = {
        let mut inner = shared.lock();
        let sends = inner.robot_sends.entry(key.clone()).or_default();
        !super::admit(
            sends,
            shared.settings.robot_limit,
            shared.settings.robot_window,
        )
    };
    if over_limit {
        return refuse(&shared, path, 45009, "api freq out of limit");
    }
    let msgtype = body["msgtype"].as_str().unwrap_or_default();
    if body[msgtype].is_null() {
        return refuse(&shared, path, 40008, "invalid message type");
    }
    record(&shared, &key, &body);
    errcode(0, "ok")
}

async fn webhook_upload(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    multipart: Multipart,
) -> Response {
    let path = "webhook/upload_media";
    if let Err(refusal) = check_robot(&shared, path, &query) {
        return *refusal;
    }
    upload(&shared, path, query.get("type"), multipart).await
}

/// Builds the callbacks WeCom sends to an app's URL: encrypted, signed, wrapped in XML.
#[derive(Clone)]
pub struct WeComCallbacks {
    crypto: CallbackKeys,
    corp_id: String,
    agent_id: i64,
}

/// One callback: the query string and the body to POST (or GET with an empty body).
#[derive(Debug, Clone)]
pub struct Callback {
    pub query: String,
    pub body: String,
}

impl WeComCallbacks {
    /// Returns the builder for an app with this token and EncodingAESKey.
    ///
    /// # Panics
    /// The EncodingAESKey is not one.
    pub fn new(token: &str, encoding_aes_key: &str, corp_id: &str, agent_id: i64) -> Self {
        let crypto = CallbackKeys::new(token, encoding_aes_key)
            .unwrap_or_else(|reason| panic!("encoding_aes_key: {reason}"));
        Self {
            crypto,
            corp_id: corp_id.to_string(),
            agent_id,
        }
    }

    fn signed_query(&self, encrypt: &str) -> String {
        let timestamp = (clawdbot_core::now_ms() / 1000).to_string();
        let nonce = rand_nonce();
        let signature = self.crypto.signature(&timestamp, &nonce, encrypt);
        format!("msg_signature={signature}&timestamp={timestamp}&nonce={nonce}")
    }

    /// The GET URL verification for `echo` (what the admin console sends on save).
    pub fn verification(&self, echo: &str) -> Callback {
        let encrypt = self.crypto.encrypt(echo, &self.corp_id, rand16());
        let query = self.signed_query(&encrypt);
        Callback {
            query: format!("{query}&echostr={}", url_encode(&encrypt)),
            body: String::new(),
        }
    }

    /// A POST carrying `plaintext` (a decrypted message XML).
    pub fn post(&self, plaintext: &str) -> Callback {
        let encrypt = self.crypto.encrypt(plaintext, &self.corp_id, rand16());
        Callback {
            query: self.signed_query(&encrypt),
            body: format!(
                "<xml><ToUserName><![CDATA[{}]]></ToUserName><AgentID><![CDATA[{}]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
                self.corp_id, self.agent_id
            ),
        }
    }

    /// A text message from `user` with `msg_id`.
    pub fn text(&self, user: &str, msg_id: u64, content: &str) -> Callback {
        self.post(&format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{}</AgentID></xml>",
            self.corp_id,
            clawdbot_core::now_ms() / 1000,
            self.agent_id
        ))
    }
}

fn rand16() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

fn rand_nonce() -> String {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000_000).to_string()
}
