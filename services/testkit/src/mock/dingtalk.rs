//! A DingTalk server for tests and the load generator, and the callbacks DingTalk sends.
//!
//! API side: the new API's `oauth2/accessToken` (checks AppKey/AppSecret), the robot OpenAPI
//! (`oToMessages/batchSend`, `groupMessages/send`; 401 for an unknown token), session webhooks
//! (`/robot/sendBySession?session=`), custom robots (`/robot/send?access_token=&timestamp=&sign=`
//! with the documented signature check → 310000, and the per-robot limit → 130101), and the
//! Stream gateway (`gateway/connections/open` + a WebSocket, see [`StreamGateway`]).
//!
//! Callback side: [`DingTalkCallbacks`] builds robot messages and signs them like DingTalk.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;

pub use super::dingtalk_stream::StreamGateway;

/// One message the mock accepted.
#[derive(Debug, Clone)]
pub struct DingTalkSent {
    /// `session:<session>`, `otm` (one-to-one OpenAPI), `group` (group OpenAPI) or
    /// `robot:<access_token>`.
    pub via: String,
    pub body: Value,
    pub received_at: Instant,
}

impl DingTalkSent {
    /// Returns the message text: a robot message's text/markdown, or an OpenAPI msgParam's.
    pub fn content(&self) -> String {
        let body = &self.body;
        if let Some(param) = body["msgParam"].as_str() {
            let param: Value = serde_json::from_str(param).unwrap_or_default();
            return param["content"]
                .as_str()
                .or(param["text"].as_str())
                .unwrap_or_default()
                .to_string();
        }
        body["text"]["content"]
            .as_str()
            .or(body["markdown"]["text"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// One custom robot the mock knows.
#[derive(Debug, Clone)]
pub struct MockRobot {
    pub access_token: String,
    /// The 加签 secret; `None` accepts unsigned sends.
    pub secret: Option<String>,
}

/// How the mock behaves; change before `start`.
#[derive(Debug, Clone)]
pub struct MockDingTalkSettings {
    pub app_key: String,
    pub app_secret: String,
    pub token_lifetime: Duration,
    pub robots: Vec<MockRobot>,
    /// Per-robot limit (DingTalk: 20 a minute).
    pub robot_limit: usize,
    pub robot_window: Duration,
}

impl Default for MockDingTalkSettings {
    fn default() -> Self {
        Self {
            app_key: "dingmockkey".into(),
            app_secret: "mock-app-secret".into(),
            token_lifetime: Duration::from_secs(7200),
            robots: vec![MockRobot {
                access_token: "robot-hr".into(),
                secret: Some("SECmockrobotsecret".into()),
            }],
            robot_limit: 20,
            robot_window: Duration::from_secs(60),
        }
    }
}

#[derive(Default)]
struct Inner {
    tokens: Vec<(String, Instant)>,
    sent: Vec<DingTalkSent>,
    robot_sends: HashMap<String, VecDeque<Instant>>,
    refusals: Vec<(String, String)>,
}

pub(crate) struct Shared {
    pub(crate) settings: MockDingTalkSettings,
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

    fn record(&self, via: String, body: Value) {
        self.lock().sent.push(DingTalkSent {
            via,
            body,
            received_at: Instant::now(),
        });
        self.notify.notify_waiters();
    }

    fn refuse(&self, path: &str, code: &str) {
        self.lock()
            .refusals
            .push((path.to_string(), code.to_string()));
    }
}

/// The running mock. The server stops when this is dropped.
pub struct MockDingTalk {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    /// The Stream gateway served by this mock.
    pub gateway: StreamGateway,
    faults: super::faults::Faults,
    _server: tokio::task::JoinHandle<()>,
}

impl MockDingTalk {
    /// The faults the next API calls meet (answer late, or answer an error instead).
    pub fn faults(&self) -> &super::faults::Faults {
        &self.faults
    }

    /// Starts the mock on 127.0.0.1 (a free port).
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(settings: MockDingTalkSettings) -> Self {
        Self::start_on("127.0.0.1:0", settings).await
    }

    /// Starts the mock on `address`.
    ///
    /// # Panics
    /// The address cannot be bound.
    pub async fn start_on(address: &str, settings: MockDingTalkSettings) -> Self {
        let shared = Arc::new(Shared {
            settings,
            inner: Mutex::default(),
            token_calls: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            notify: Notify::new(),
        });
        let (listener, address) = super::bind(address, "dingtalk").await;
        let gateway = StreamGateway::new(
            address,
            shared.settings.app_key.clone(),
            shared.settings.app_secret.clone(),
        );
        let app = axum::Router::new()
            .route("/v1.0/oauth2/accessToken", post(access_token))
            .route("/v1.0/robot/oToMessages/batchSend", post(batch_send))
            .route("/v1.0/robot/groupMessages/send", post(group_send))
            .route("/robot/sendBySession", post(send_by_session))
            .route("/robot/send", post(robot_send))
            .with_state(shared.clone())
            .merge(gateway.router());
        let faults = super::faults::Faults::default();
        let server = super::serve(listener, faults.wrap(app), "dingtalk");
        Self {
            address,
            shared,
            gateway,
            faults,
            _server: server,
        }
    }

    /// Returns the base URL, for both `api_base` and `oapi_base`.
    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns a session webhook at this mock.
    pub fn session_webhook(&self, session: &str) -> String {
        format!("{}/robot/sendBySession?session={session}", self.base())
    }

    /// Returns how many access tokens were fetched.
    pub fn token_calls(&self) -> u64 {
        self.shared.token_calls.load(Ordering::Relaxed)
    }

    /// Expires every access token issued so far (the next OpenAPI call answers 401).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for (_, expires) in &mut self.shared.lock().tokens {
            *expires = now;
        }
    }

    /// Returns every accepted message so far.
    pub fn sent(&self) -> Vec<DingTalkSent> {
        self.shared.lock().sent.clone()
    }

    /// Returns the refused calls so far: (path, code).
    pub fn refusals(&self) -> Vec<(String, String)> {
        self.shared.lock().refusals.clone()
    }

    /// Waits until at least `count` messages were accepted, or `timeout` passed; returns them.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<DingTalkSent> {
        super::wait_for_count(&self.shared.notify, count, timeout, || self.sent()).await
    }
}

fn new_api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn oapi_error(code: i64, message: &str) -> Response {
    Json(json!({"errcode": code, "errmsg": message})).into_response()
}

async fn access_token(State(shared): State<Arc<Shared>>, body: Option<Json<Value>>) -> Response {
    shared.token_calls.fetch_add(1, Ordering::Relaxed);
    let Some(Json(body)) = body else {
        return new_api_error(StatusCode::BAD_REQUEST, "MissingParameter", "body");
    };
    let settings = &shared.settings;
    if body["appKey"] != settings.app_key.as_str()
        || body["appSecret"] != settings.app_secret.as_str()
    {
        shared.refuse("accessToken", "invalidClientIdOrSecret");
        return new_api_error(
            StatusCode::BAD_REQUEST,
            "invalidClientIdOrSecret",
            "无效的clientId或者clientSecret",
        );
    }
    let token = format!(
        "dt-token-{}-{}",
        shared.next_id.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple()
    );
    shared
        .lock()
        .tokens
        .push((token.clone(), Instant::now() + settings.token_lifetime));
    Json(json!({"accessToken": token, "expireIn": settings.token_lifetime.as_secs()}))
        .into_response()
}

/// Checks `x-acs-dingtalk-access-token`: `None` when valid.
fn check_token(shared: &Shared, path: &str, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get("x-acs-dingtalk-access-token")
        .and_then(|v| v.to_str().ok());
    let valid = given.is_some_and(|given| {
        shared
            .lock()
            .tokens
            .iter()
            .any(|(token, expires)| token == given && *expires > Instant::now())
    });
    if valid {
        return None;
    }
    shared.refuse(path, "InvalidAuthentication");
    Some(new_api_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthentication",
        "token is not exist",
    ))
}

/// Checks that `msgParam` is a JSON string (not an object) with `msgKey` and `robotCode`:
/// `None` when it is, else the refusal.
fn check_msg_param(body: &Value) -> Option<Response> {
    match body["msgParam"].as_str().map(serde_json::from_str::<Value>) {
        Some(Ok(_)) if body["msgKey"].is_string() && body["robotCode"].is_string() => None,
        _ => Some(new_api_error(
            StatusCode::BAD_REQUEST,
            "invalidParameter.msgParam.invalid",
            "msgParam must be a JSON string",
        )),
    }
}

async fn batch_send(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(refusal) = check_token(&shared, "oToMessages/batchSend", &headers) {
        return refusal;
    }
    let Some(Json(body)) = body else {
        return new_api_error(StatusCode::BAD_REQUEST, "MissingParameter", "body");
    };
    if let Some(refusal) = check_msg_param(&body) {
        return refusal;
    }
    shared.record("otm".into(), body);
    Json(json!({"processQueryKey": format!("pqk-{}", shared.next_id.fetch_add(1, Ordering::Relaxed)), "invalidStaffIdList": [], "flowControlledStaffIdList": []})).into_response()
}

async fn group_send(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if let Some(refusal) = check_token(&shared, "groupMessages/send", &headers) {
        return refusal;
    }
    let Some(Json(body)) = body else {
        return new_api_error(StatusCode::BAD_REQUEST, "MissingParameter", "body");
    };
    if let Some(refusal) = check_msg_param(&body) {
        return refusal;
    }
    shared.record("group".into(), body);
    Json(json!({"processQueryKey": format!("pqk-{}", shared.next_id.fetch_add(1, Ordering::Relaxed))})).into_response()
}

async fn send_by_session(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(body)) = body else {
        return oapi_error(400_001, "invalid json");
    };
    let session = query.get("session").cloned().unwrap_or_default();
    if session.starts_with("expired") {
        shared.refuse("sendBySession", "300001");
        return oapi_error(300_001, "session expired");
    }
    shared.record(format!("session:{session}"), body);
    oapi_error(0, "ok")
}

async fn robot_send(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let path = "robot/send";
    let token = query.get("access_token").cloned().unwrap_or_default();
    let Some(robot) = shared
        .settings
        .robots
        .iter()
        .find(|r| r.access_token == token)
        .cloned()
    else {
        shared.refuse(path, "300001");
        return oapi_error(300_001, "token is not exist");
    };
    if let Some(secret) = &robot.secret {
        let (Some(timestamp), Some(signature)) = (query.get("timestamp"), query.get("sign")) else {
            shared.refuse(path, "310000");
            return oapi_error(310_000, "sign not match");
        };
        // Query parsing already URL-decoded the sign once, as DingTalk does.
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (clawdbot_core::now_ms() - t).abs() < 3_600_000);
        if !fresh {
            shared.refuse(path, "310000");
            return oapi_error(310_000, "invalid timestamp");
        }
        if super::doc_crypto::dingtalk::sign(secret, timestamp) != *signature {
            shared.refuse(path, "310000");
            return oapi_error(310_000, "sign not match");
        }
    }
    let Some(Json(body)) = body else {
        return oapi_error(400_001, "invalid json");
    };
    let over_limit = {
        let mut inner = shared.lock();
        let sends = inner.robot_sends.entry(token.clone()).or_default();
        !super::admit(
            sends,
            shared.settings.robot_limit,
            shared.settings.robot_window,
        )
    };
    if over_limit {
        shared.refuse(path, "130101");
        return oapi_error(130_101, "send too fast, exceed 20 times per minute");
    }
    shared.record(format!("robot:{token}"), body);
    oapi_error(0, "ok")
}

/// Builds robot messages the way DingTalk posts them, and their signed headers.
#[derive(Clone)]
pub struct DingTalkCallbacks {
    app_secret: String,
}

impl DingTalkCallbacks {
    pub fn new(app_secret: &str) -> Self {
        Self {
            app_secret: app_secret.to_string(),
        }
    }

    /// The `timestamp` and `sign` headers for a callback sent now.
    pub fn headers(&self) -> [(&'static str, String); 2] {
        self.headers_at(clawdbot_core::now_ms())
    }

    /// The headers for a callback whose clock says `timestamp_ms`.
    pub fn headers_at(&self, timestamp_ms: i64) -> [(&'static str, String); 2] {
        let timestamp = timestamp_ms.to_string();
        [
            (
                "sign",
                super::doc_crypto::dingtalk::sign(&self.app_secret, &timestamp),
            ),
            ("timestamp", timestamp),
        ]
    }

    /// A text message: `group` says a group (`conversation` is its cid) or one-to-one; the
    /// session webhook expires at `session_expires_at_ms`.
    pub fn text(
        &self,
        msg_id: &str,
        group: Option<&str>,
        staff_id: &str,
        text: &str,
        session_webhook: &str,
        session_expires_at_ms: i64,
    ) -> String {
        json!({
            "msgtype": "text", "text": {"content": format!(" {text}")},
            "msgId": msg_id, "createAt": clawdbot_core::now_ms(),
            "conversationType": if group.is_some() { "2" } else { "1" },
            "conversationId": group.unwrap_or("cid-private"),
            "senderId": format!("$:LWCP_v1:${staff_id}"), "senderNick": staff_id,
            "senderStaffId": staff_id, "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": "dingmockkey", "isAdmin": false, "isInAtList": true,
            "sessionWebhook": session_webhook, "sessionWebhookExpiredTime": session_expires_at_ms,
        })
        .to_string()
    }
}
