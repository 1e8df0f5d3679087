//! clawdbot-platforms: one folder per chat platform, each with the same files —
//! `config.rs` (its config section), `inbound.rs` (verify and decode what the platform sends),
//! `outbound.rs` (send a `Reply` through the platform's API) and `tests.rs`.
//!
//! Inbound is pure (bytes and headers in, envelopes out): the ingress does the IO around it, so
//! tests need no network. Outbound owns its HTTP client, timeouts and retries.
//!
//! Registration is explicit: [`PlatformsConfig`] has one field per platform, and
//! [`build_inbounds`] / [`build_outbounds`] match on each. Adding a platform means one folder
//! plus one field here; the compiler points at the rest.

pub mod alertmanager;
pub mod dingtalk;
mod issued_keys;
pub mod json_limits;
pub mod notify;
mod one_or_many;
pub mod onebot;
pub mod qq;
pub mod sandbox;
pub mod send_limit;
pub mod token;
pub mod wecom;

use std::collections::HashMap;
use std::sync::Arc;

pub use issued_keys::IssuedKeys;
pub use one_or_many::OneOrMany;

use clawdbot_core::proto::{Envelope, Reply};

/// The platform sections of the config, one field per platform (its top-level key).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformsConfig {
    /// OneBot v11 accounts (NapCat, Lagrange.OneBot, go-cqhttp, LLOneBot).
    #[serde(default)]
    pub onebot: OneOrMany<onebot::OneBotConfig>,
    /// Alertmanager / Grafana alert webhooks (inbound only).
    #[serde(default)]
    pub alertmanager: Option<alertmanager::AlertmanagerConfig>,
    /// The notify API for other systems (inbound only).
    #[serde(default)]
    pub notify: Option<notify::NotifyConfig>,
    /// The sandbox chat; `None` means "not configured": on in `clawdbot up`, off elsewhere.
    #[serde(default)]
    pub sandbox: Option<sandbox::SandboxConfig>,
    /// Official QQ bots (q.qq.com).
    #[serde(default)]
    pub qq: OneOrMany<qq::QqConfig>,
    /// DingTalk robot apps (HTTP callbacks or Stream mode) and their custom group robots.
    #[serde(default)]
    pub dingtalk: OneOrMany<dingtalk::DingTalkConfig>,
    /// WeCom self-built apps and their group robots.
    #[serde(default)]
    pub wechat_enterprise: OneOrMany<wecom::WeComConfig>,
}

impl PlatformsConfig {
    /// The top-level config keys that belong to platforms.
    pub const KEYS: &'static [&'static str] = &[
        onebot::NAME,
        sandbox::NAME,
        alertmanager::NAME,
        notify::NAME,
        wecom::CONFIG_KEY,
        dingtalk::NAME,
        qq::NAME,
    ];

    /// Returns every problem in the platform sections, each naming its key path.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (index, account) in self.onebot.iter().enumerate() {
            let path = self.onebot.path(onebot::NAME, index);
            problems.extend(account.validate(&path));
        }
        problems.extend(duplicate_ids(
            onebot::NAME,
            self.onebot.iter().map(|a| a.id.as_str()),
        ));
        for (index, bot) in self.qq.iter().enumerate() {
            let path = self.qq.path(qq::NAME, index);
            problems.extend(bot.validate(&path));
        }
        problems.extend(duplicate_ids(
            qq::NAME,
            self.qq.iter().map(|b| b.id.as_str()),
        ));
        for (index, app) in self.dingtalk.iter().enumerate() {
            let path = self.dingtalk.path(dingtalk::NAME, index);
            problems.extend(app.validate(&path));
        }
        problems.extend(duplicate_ids(
            dingtalk::NAME,
            self.dingtalk.iter().map(|a| a.id.as_str()),
        ));
        for (index, app) in self.wechat_enterprise.iter().enumerate() {
            let path = self.wechat_enterprise.path(wecom::CONFIG_KEY, index);
            problems.extend(app.validate(&path));
        }
        problems.extend(duplicate_ids(
            wecom::CONFIG_KEY,
            self.wechat_enterprise.iter().map(|a| a.id.as_str()),
        ));
        if let Some(sandbox) = &self.sandbox {
            problems.extend(sandbox.validate(sandbox::NAME));
        }
        if let Some(alerts) = &self.alertmanager {
            problems.extend(alerts.validate(alertmanager::NAME));
        }
        if let Some(notify) = &self.notify {
            problems.extend(notify.validate(notify::NAME));
        }
        problems
    }

    /// Returns true when no platform is configured.
    pub fn is_empty(&self) -> bool {
        self.onebot.is_empty()
            && self.wechat_enterprise.is_empty()
            && self.dingtalk.is_empty()
            && self.qq.is_empty()
            && self.sandbox.is_none()
    }

    /// Returns the sandbox to serve: the configured one if enabled, else the default one when
    /// `default_on` (what `clawdbot up` does when the config does not mention it).
    pub fn sandbox_enabled(&self, default_on: bool) -> Option<sandbox::SandboxConfig> {
        match &self.sandbox {
            Some(sandbox) => sandbox.enabled.then(|| sandbox.clone()),
            None => default_on.then(sandbox::SandboxConfig::default),
        }
    }
}

/// Percent-encodes `text` for a query string: everything but RFC 3986's unreserved characters
/// (what platforms expect of base64 signatures, tickets and `echostr`).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Adds a problem naming `{path}.{key}` if `value` is outside `lo..=hi`.
pub(crate) fn check_range(
    problems: &mut Vec<String>,
    path: &str,
    key: &str,
    value: u64,
    lo: u64,
    hi: u64,
) {
    if !(lo..=hi).contains(&value) {
        problems.push(format!(
            "`{path}.{key}` must be between {lo} and {hi}, got `{value}`"
        ));
    }
}

/// Adds a problem naming `{path}.id` if `id` cannot name an account (see [`valid_id`]).
pub(crate) fn check_id(problems: &mut Vec<String>, path: &str, id: &str) {
    if !valid_id(id) {
        problems.push(format!(
            "`{path}.id` must be letters, digits, `_` or `-`, got `{id}`"
        ));
    }
}

/// Adds the problems every HTTP-calling platform shares: the timeout and the attempts.
pub(crate) fn check_http_settings(
    problems: &mut Vec<String>,
    path: &str,
    timeout_secs: u64,
    max_attempts: u32,
) {
    check_range(problems, path, "timeout_secs", timeout_secs, 1, 60);
    check_range(
        problems,
        path,
        "max_attempts",
        u64::from(max_attempts),
        1,
        10,
    );
}

/// Returns whether `id` can name an account (or a robot): letters, digits, `_` or `-`, so that
/// it is safe in a route, a stream field and a Redis key.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Returns the platform name of a config key (`wechat_enterprise` -> `wecom`); other names are
/// returned as they are.
pub fn platform_of_config_key(key: &str) -> &str {
    match key {
        wecom::CONFIG_KEY => wecom::NAME,
        other => other,
    }
}

fn duplicate_ids<'a>(platform: &str, ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashMap::new();
    let mut problems = Vec::new();
    for id in ids {
        if seen.insert(id, ()).is_some() {
            problems.push(format!(
                "`{platform}`: two accounts have the id `{id}`; ids must be unique"
            ));
        }
    }
    problems
}

/// Returns whether `given` is one of `secrets`. Compares SHA-1 digests, so that how long the
/// comparison takes says nothing about how much of a secret was guessed.
pub(crate) fn secret_matches<'a>(
    given: &str,
    mut secrets: impl Iterator<Item = &'a String>,
) -> bool {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(given.as_bytes());
    secrets.any(|secret| sha1::Sha1::digest(secret.as_bytes()) == digest)
}

/// One HTTP request from a platform, as the ingress received it.
#[derive(Debug)]
pub struct WebhookRequest<'a> {
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    pub query: Option<&'a str>,
    /// The raw body bytes: signatures are checked over these, never over re-serialized JSON.
    pub body: &'a [u8],
}

/// What a verified request turned into.
#[derive(Debug)]
pub enum Inbox {
    /// Messages or events to publish to the inbound stream.
    Envelopes(Vec<Envelope>),
    /// The platform expects this answer (a URL-verification handshake, say) and nothing else.
    Handshake {
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A valid request with nothing to publish (a heartbeat), answered with success.
    Nothing,
}

/// Why an inbound request was refused. Each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("signature header `{header}` is missing")]
    MissingSignature { header: &'static str },
    #[error("signature verification failed")]
    BadSignature,
    /// A signature that cannot be one (not hex, the wrong length).
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// Past a decoder's bound (nesting depth, element or field count), named in the text:
    /// refused before the input can cost more than linear time and memory.
    #[error("body over a limit: {0}")]
    OverLimit(String),
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
    /// The signature's timestamp is outside the accepted window: a replay, or a clock off.
    #[error(
        "signature timestamp is {skew_secs} s off this server's clock (allowed ±{window_secs} s): check NTP on both sides"
    )]
    StaleSignature { skew_secs: i64, window_secs: u64 },
    /// Verified and decrypted, but addressed to someone else (another corp's callback).
    #[error("addressed to `{got}`, not to `{expected}`")]
    WrongRecipient { expected: String, got: String },
}

impl InboundError {
    /// Returns the error kind, used as the `error_type` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            InboundError::MissingSignature { .. } => "missing_signature",
            InboundError::BadSignature => "bad_signature",
            InboundError::MalformedSignature(_) => "malformed_signature",
            InboundError::MalformedBody(_) => "malformed_body",
            InboundError::OverLimit(_) => "over_limit",
            InboundError::UnsupportedEvent(_) => "unsupported_event",
            InboundError::WrongRecipient { .. } => "wrong_recipient",
            InboundError::StaleSignature { .. } => "stale_signature",
        }
    }

    /// Returns the HTTP status the platform gets for this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            InboundError::MissingSignature { .. }
            | InboundError::BadSignature
            | InboundError::MalformedSignature(_)
            | InboundError::WrongRecipient { .. }
            | InboundError::StaleSignature { .. } => http::StatusCode::UNAUTHORIZED,
            InboundError::MalformedBody(_) | InboundError::OverLimit(_) => {
                http::StatusCode::BAD_REQUEST
            }
            InboundError::UnsupportedEvent(_) => http::StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// The inbound half of a platform: pure, no IO.
pub trait Inbound: Send + Sync {
    /// The platform name (its const `NAME`).
    fn platform(&self) -> &'static str;
    /// The configured account id this inbound serves.
    fn bot_id(&self) -> &str;
    /// The platform's segment in callback routes (`/clawdbot/{route}/callback`); the platform
    /// name unless the platform's documented URL says otherwise (WeCom's is `wechat`).
    fn route(&self) -> &'static str {
        self.platform()
    }
    /// The status a request gets once its envelopes are in the stream (or it had none). 204
    /// unless the platform insists on another (WeCom retries anything but 200).
    fn accepted_status(&self) -> http::StatusCode {
        http::StatusCode::NO_CONTENT
    }
    /// Checks that the request really comes from the platform.
    ///
    /// # Errors
    /// A missing or wrong signature, a stale timestamp.
    fn verify(&self, req: &WebhookRequest) -> Result<(), InboundError>;
    /// Turns a verified request into work: envelopes, a handshake answer, or nothing.
    ///
    /// # Errors
    /// A body that does not decode.
    fn parse(&self, req: &WebhookRequest) -> Result<Inbox, InboundError>;
}

/// Where a connection-shaped inbound (DingTalk Stream mode) puts the envelopes it receives:
/// the ingress's publisher (dedupe, then the inbound stream).
#[async_trait::async_trait]
pub trait EnvelopeSink: Send + Sync {
    /// Publishes one envelope; `Ok` once it is in the stream (or was already).
    ///
    /// # Errors
    /// The bus could not take it; the caller leaves the message for redelivery.
    async fn publish(&self, envelope: Envelope) -> Result<(), String>;
}

/// The result of a delivery the platform accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The platform's id for the sent message, when it returns one.
    pub platform_message_id: String,
    /// How many HTTP attempts it took.
    pub attempts: u32,
    /// Degraded content and partial failures, for the delivery result (see `SendResponse`).
    pub notes: Vec<String>,
}

/// Why a delivery failed, and whether trying again later may help.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The platform refused the message (bad target, content rejected): retrying won't help.
    #[error("platform refused the message: {reason}")]
    Refused { reason: String, attempts: u32 },
    /// Transport errors, timeouts or 5xx on every attempt: worth trying again later.
    #[error("platform unavailable after {attempts} attempts: {reason}")]
    Unavailable { reason: String, attempts: u32 },
    /// The reply cannot be sent by this platform (missing target, wrong reply context).
    #[error("invalid reply: {0}")]
    InvalidReply(String),
}

impl OutboundError {
    /// Returns the error kind, used as the `error_type` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundError::Refused { .. } => "platform_refused",
            OutboundError::Unavailable { .. } => "platform_unavailable",
            OutboundError::InvalidReply(_) => "invalid_reply",
        }
    }
}

/// The outbound half of a platform: delivers replies through its API.
#[async_trait::async_trait]
pub trait Outbound: Send + Sync {
    /// Delivers one reply, with the platform's timeouts and retries.
    ///
    /// # Errors
    /// See [`OutboundError`].
    async fn send(&self, reply: &Reply) -> Result<Delivered, OutboundError>;
}

/// What some platforms need from the running process.
#[derive(Clone, Default)]
pub struct PlatformServices {
    /// The sandbox to serve, if any (see [`PlatformsConfig::sandbox_enabled`]).
    pub sandbox: Option<sandbox::SandboxConfig>,
    /// Where sandbox replies go (the bus's broadcast); needed for the sandbox's outbound half.
    pub sandbox_sink: Option<Arc<dyn sandbox::SandboxSink>>,
    /// State shared by the replicas (tokens, media ids, send schedules): the bus. Platforms
    /// with tokens or send limits (WeCom) need it.
    pub shared: Option<Arc<dyn clawdbot_core::shared::SharedState>>,
    /// API keys issued from the store (`clawdbot security issue-key`), refreshed by the ingress.
    pub issued_keys: IssuedKeys,
}

/// Builds the inbound half of every configured account.
pub fn build_inbounds(
    config: &PlatformsConfig,
    services: &PlatformServices,
) -> Vec<Arc<dyn Inbound>> {
    let mut inbounds: Vec<Arc<dyn Inbound>> = Vec::new();
    for account in config.onebot.iter() {
        inbounds.push(Arc::new(onebot::OneBotInbound::new(account.clone())));
    }
    if !config.qq.is_empty() {
        inbounds.push(Arc::new(qq::QqInbound::new(
            config.qq.iter().cloned().collect(),
        )));
    }
    for app in config.dingtalk.iter() {
        // Stream-mode apps arrive over their connection (started by the ingress), not a route.
        if app.mode == dingtalk::Mode::Http {
            inbounds.push(Arc::new(dingtalk::DingTalkInbound::new(app.clone())));
        }
    }
    for app in config.wechat_enterprise.iter() {
        // Validation has checked the key; an app that still fails is skipped, loudly.
        match wecom::WeComInbound::new(app.clone()) {
            Ok(inbound) => inbounds.push(Arc::new(inbound)),
            Err(reason) => tracing::error!(app = %app.id, %reason, "wecom app not served"),
        }
    }
    if let Some(sandbox) = &services.sandbox {
        inbounds.push(Arc::new(sandbox::SandboxInbound::new(sandbox.clone())));
    }
    if let Some(notify) = &config.notify {
        inbounds.push(Arc::new(notify::NotifyInbound::new(
            notify.clone(),
            services.issued_keys.clone(),
        )));
    }
    if let Some(alerts) = &config.alertmanager {
        inbounds.push(Arc::new(alertmanager::AlertmanagerInbound::new(
            alerts.clone(),
        )));
    }
    inbounds
}

/// The outbound halves, by platform and account id.
pub type Outbounds = HashMap<(&'static str, String), Arc<dyn Outbound>>;

/// Builds the outbound half of every configured account.
///
/// # Errors
/// An HTTP client that cannot be built (a TLS backend missing).
pub fn build_outbounds(
    config: &PlatformsConfig,
    services: &PlatformServices,
) -> Result<Outbounds, OutboundError> {
    let mut outbounds: Outbounds = HashMap::new();
    for account in config.onebot.iter() {
        let outbound = onebot::OneBotOutbound::new(account.clone())?;
        outbounds.insert((onebot::NAME, account.id.clone()), Arc::new(outbound));
    }
    for bot in config.qq.iter() {
        let shared = services.shared.clone().ok_or_else(|| {
            OutboundError::InvalidReply("qq needs the shared state (the bus)".into())
        })?;
        let outbound = qq::QqOutbound::new(bot.clone(), shared)?;
        outbounds.insert((qq::NAME, bot.id.clone()), Arc::new(outbound));
    }
    for app in config.dingtalk.iter() {
        let shared = services.shared.clone().ok_or_else(|| {
            OutboundError::InvalidReply("dingtalk needs the shared state (the bus)".into())
        })?;
        let outbound = dingtalk::DingTalkOutbound::new(app.clone(), shared)?;
        outbounds.insert((dingtalk::NAME, app.id.clone()), Arc::new(outbound));
    }
    for app in config.wechat_enterprise.iter() {
        let shared = services.shared.clone().ok_or_else(|| {
            OutboundError::InvalidReply("wecom needs the shared state (the bus)".into())
        })?;
        let outbound = wecom::WeComOutbound::new(app.clone(), shared)?;
        outbounds.insert((wecom::NAME, app.id.clone()), Arc::new(outbound));
    }
    if let (Some(sandbox), Some(sink)) = (&services.sandbox, &services.sandbox_sink) {
        let outbound = sandbox::SandboxOutbound::new(sink.clone());
        outbounds.insert((sandbox::NAME, sandbox.id.clone()), Arc::new(outbound));
    }
    Ok(outbounds)
}
