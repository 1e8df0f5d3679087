//! clawdbot-platforms: one folder per chat platform, each with the same files —
//! `config.rs` (its config section), `inbound.rs` (verify and decode what the platform sends),
//! `outbound.rs` (send a `Reply` through the platform's API) and `tests.rs`.
//!
//! Inbound is pure (bytes and headers in, envelopes out): the ingress does the IO around it, so
//! tests need no network. Outbound owns its HTTP client, timeouts and retries.
//!
//! Registration is explicit and in one place: each folder exports a [`Platform`] (its names and
//! how its config section becomes a [`Section`]: inbounds, outbounds, connections), and
//! [`PLATFORMS`] lists them. Adding a platform means one folder plus two lines (its `mod`
//! here, its entry there); the compiler asks for every required part of [`Section`] the folder
//! has not written.

pub mod alertmanager;
mod connection;
pub mod dingtalk;
#[cfg(test)]
pub(crate) mod external_fixtures;
mod issued_keys;
pub mod json_limits;
pub mod late_answer;
pub mod notify;
mod one_or_many;
pub mod onebot;
pub mod qq;
pub mod read_all;
pub mod registry;
pub mod relay;
pub mod reply_context;
pub mod sandbox;
pub mod send_limit;
pub mod socket;
pub mod token;
pub mod wecom;

use std::collections::HashMap;
use std::sync::Arc;

pub use connection::{Connection, Stop};
pub use issued_keys::IssuedKeys;
pub use one_or_many::OneOrMany;
pub use registry::{PLATFORMS, Platform, Section};

use clawdbot_core::proto::{Envelope, Reply};

/// The platform sections of the config: one [`Section`] per configured platform, read through
/// its registration in [`PLATFORMS`].
#[derive(Debug, Clone, Default)]
pub struct PlatformsConfig {
    /// In [`PLATFORMS`] order.
    sections: Vec<(&'static Platform, Arc<dyn Section>)>,
}

impl PlatformsConfig {
    /// The top-level config keys that belong to platforms.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        PLATFORMS.iter().map(|platform| platform.config_key)
    }

    /// Reads the platform sections of a config (top-level key → its value). A key no platform
    /// registered is the caller's to report; a null section is one not configured.
    ///
    /// # Errors
    /// Every section that cannot be read, each naming its key path.
    pub fn read(
        mut values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Vec<String>> {
        let mut sections = Vec::new();
        let mut problems = Vec::new();
        for platform in PLATFORMS {
            let value = match values.remove(platform.config_key) {
                None | Some(serde_json::Value::Null) if platform.served_without_section => {
                    Some(serde_json::json!({}))
                }
                None | Some(serde_json::Value::Null) => None,
                Some(value) => Some(value),
            };
            match value {
                None => {}
                Some(value) => match (platform.read)(value) {
                    Ok(section) => sections.push((platform, section)),
                    Err(errors) => problems.extend(
                        errors
                            .iter()
                            .map(|error| error.describe(platform.config_key)),
                    ),
                },
            }
        }
        if problems.is_empty() {
            Ok(Self { sections })
        } else {
            Err(problems)
        }
    }

    /// A config of one section (tests, tools).
    ///
    /// # Panics
    /// `name` is no registered platform (a mistake in the calling code, not in a config).
    pub fn single<S: Section>(name: &str, section: S) -> Self {
        let platform =
            registry::find(name).unwrap_or_else(|| panic!("`{name}` is not a registered platform"));
        Self {
            sections: vec![(platform, Arc::new(section))],
        }
    }

    /// The configured sections with their registrations.
    pub fn sections(&self) -> impl Iterator<Item = (&'static Platform, &dyn Section)> {
        self.sections
            .iter()
            .map(|(platform, section)| (*platform, section.as_ref()))
    }

    /// The section of the platform `name` as its typed config, if configured.
    pub fn section<T: 'static>(&self, name: &str) -> Option<&T> {
        self.sections
            .iter()
            .find(|(platform, _)| platform.name == name || platform.config_key == name)
            .and_then(|(_, section)| section.as_any().downcast_ref::<T>())
    }

    /// The accounts of a platform whose section is a [`OneOrMany`] of `T`.
    pub fn accounts<T: 'static>(&self, name: &str) -> Vec<&T> {
        self.section::<OneOrMany<T>>(name)
            .map(|section| section.iter().collect())
            .unwrap_or_default()
    }

    /// Returns every problem in the platform sections, each naming its key path.
    pub fn validate(&self) -> Vec<String> {
        self.sections()
            .flat_map(|(platform, section)| section.validate(platform.config_key))
            .collect()
    }

    /// Returns true when no account people chat with is configured.
    pub fn is_empty(&self) -> bool {
        !self.sections().any(|(_, section)| section.chats())
    }

    /// Returns the sandbox to serve: the configured one if enabled, else the default one when
    /// `default_on` (what `clawdbot up` does when the config does not mention it).
    pub fn sandbox_enabled(&self, default_on: bool) -> Option<sandbox::SandboxConfig> {
        match self.section::<sandbox::SandboxConfig>(sandbox::NAME) {
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

/// Returns the platform name of a config key or route (`wechat_enterprise`, `wechat` ->
/// `wecom`); other names are returned as they are.
pub fn platform_of_config_key(key: &str) -> &str {
    registry::find(key).map_or(key, |platform| platform.name)
}

pub(crate) fn duplicate_ids<'a>(platform: &str, ids: impl Iterator<Item = &'a str>) -> Vec<String> {
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

/// A platform call the ingress runs after publishing an event (see [`Inbound::acknowledge`]).
pub type Acknowledgement = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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
    /// A valid event deliberately not routed (`reason` is the metric label and log field):
    /// the bot's own message reported back to it, which answered would start a loop.
    Skipped { reason: &'static str },
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
    /// Work the platform expects once an event is safely in the stream, run by the ingress in
    /// the background (QQ: acknowledging a button click); none by default.
    fn acknowledge(&self, _envelope: &Envelope) -> Option<Acknowledgement> {
        None
    }
    /// The socket this account's platform side may open to the ingress instead of calling the
    /// webhook (OneBot reverse WebSocket); none by default.
    fn socket(&self) -> Option<&dyn socket::SocketEndpoint> {
        None
    }
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
    /// Calls between processes for replies that leave through a socket one process holds
    /// (OneBot over WebSocket).
    pub relay: Option<Arc<dyn relay::Relay>>,
}

/// Builds the inbound half of every configured account.
pub fn build_inbounds(
    config: &PlatformsConfig,
    services: &PlatformServices,
) -> Vec<Arc<dyn Inbound>> {
    let mut inbounds: Vec<Arc<dyn Inbound>> = config
        .sections()
        .flat_map(|(_, section)| section.inbounds(services))
        .collect();
    // The sandbox is served from the services, not its section: `clawdbot up` serves it when
    // the config does not mention it (see `PlatformsConfig::sandbox_enabled`).
    inbounds.extend(sandbox::inbound(services));
    inbounds
}

/// The outbound halves, by platform and account id.
pub type Outbounds = HashMap<(&'static str, String), Arc<dyn Outbound>>;

/// Builds the outbound half of every configured account.
///
/// # Errors
/// An HTTP client that cannot be built (a TLS backend missing), or a platform that needs the
/// shared state without one.
pub fn build_outbounds(
    config: &PlatformsConfig,
    services: &PlatformServices,
) -> Result<Outbounds, OutboundError> {
    let mut outbounds: Outbounds = HashMap::new();
    for (platform, section) in config.sections() {
        for (id, outbound) in section.outbounds(services)? {
            outbounds.insert((platform.name, id), outbound);
        }
    }
    if let Some((id, outbound)) = sandbox::outbound(services) {
        outbounds.insert((sandbox::NAME, id), outbound);
    }
    Ok(outbounds)
}

/// Builds the long-lived connections of every configured account.
pub fn build_connections(
    config: &PlatformsConfig,
    services: &PlatformServices,
) -> Vec<Arc<dyn Connection>> {
    config
        .sections()
        .flat_map(|(_, section)| section.connections(services))
        .collect()
}
