//! The `onebot` config section: one account, or a list with an `id` each.

use serde::Deserialize;

/// One OneBot account (one QQ bot behind one OneBot implementation).
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneBotConfig {
    /// The account's id in routes (`/clawdbot/onebot/{id}/callback`), stream entries and
    /// history. `default` when the section is a single account.
    #[serde(default = "default_id")]
    pub id: String,
    /// The bot's QQ number; events for another self_id are refused. A numeric string is
    /// accepted too, so that `self_id: ${BOT_QQ}` works.
    #[serde(deserialize_with = "number_or_numeric_string")]
    pub self_id: i64,
    /// HMAC key for `X-Signature`; when unset, events are not signed (trust the network).
    #[serde(default)]
    pub secret: Option<String>,
    /// Bearer token: sent to the implementation's HTTP API and forward WebSocket, and required
    /// of a reverse WebSocket connecting to us (`Authorization: Bearer` or `?access_token=`).
    #[serde(default)]
    pub access_token: Option<String>,
    /// How events arrive and API calls leave: `http` (events POSTed to the callback, calls to
    /// `api_root`), `ws-reverse` (the implementation connects to `/clawdbot/onebot/ws`; events
    /// and calls on that socket) or `ws-forward` (clawdbot connects to `ws_url`).
    #[serde(default)]
    pub transport: Transport,
    /// Base URL of the implementation's HTTP API (`http://127.0.0.1:5700`); `http` only.
    #[serde(default)]
    pub api_root: String,
    /// The implementation's WebSocket server (`ws://127.0.0.1:3001`); `ws-forward` only.
    #[serde(default)]
    pub ws_url: Option<String>,
    /// `ws-forward`: how long an ingress's hold on the socket lasts (renewed every third);
    /// after a holder dies another ingress connects within it.
    #[serde(default = "default_ws_lease_secs")]
    pub ws_lease_secs: u64,
    /// A reply with more text than this many characters goes out as a forward message (合并
    /// 转发, `send_group_forward_msg`), cut into nodes of at most this many; 0 (default) never.
    #[serde(default)]
    pub forward_over_chars: usize,
    /// The name the forward message's nodes show.
    #[serde(default = "default_forward_name")]
    pub forward_name: String,
    /// Timeout of one API call.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per delivery for transport errors and 5xx (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Back-off before the first retry; doubled for each further one.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// API calls in flight at once for this account; more wait their turn. Also the number of
    /// kept-alive connections, so that a burst reuses connections instead of opening new ones.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// How long a send keeps listening for its answer past `timeout_secs` (OneBot has no
    /// idempotency key, so a send that may have arrived is not repeated while it can still
    /// answer); the call gives its in-flight slot back meanwhile. 0 = not at all.
    #[serde(default = "default_late_answer_secs")]
    pub late_answer_secs: u64,
    /// A send still unanswered after that: `resend` (default: loses nothing, may show twice)
    /// or `give_up` (never twice, lost if the implementation never got it).
    #[serde(default)]
    pub unknown_outcome: crate::late_answer::UnknownOutcome,
}

/// How one account talks to its implementation (OneBot v11's communication methods).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// HTTP POST events to the callback, HTTP API calls.
    #[default]
    Http,
    /// The implementation connects to clawdbot's WebSocket (reverse WebSocket).
    WsReverse,
    /// clawdbot connects to the implementation's WebSocket server (forward WebSocket).
    WsForward,
}

fn default_forward_name() -> String {
    "clawdbot".to_string()
}

fn default_ws_lease_secs() -> u64 {
    10
}

pub(crate) fn number_or_numeric_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<i64, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| D::Error::custom(format!("`{number}` is not an integer"))),
        serde_json::Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("`{text}` is not an integer"))),
        other => Err(D::Error::custom(format!(
            "expected a QQ number, got `{other}`"
        ))),
    }
}

fn default_id() -> String {
    "default".to_string()
}
fn default_timeout_secs() -> u64 {
    5
}
fn default_max_attempts() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    100
}
fn default_max_in_flight() -> usize {
    32
}
fn default_late_answer_secs() -> u64 {
    30
}

impl OneBotConfig {
    /// Returns every problem with this account, each naming its key path under `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        crate::check_id(&mut problems, path, &self.id);
        if self.self_id <= 0 {
            problems.push(format!(
                "`{path}.self_id` must be the bot's QQ number, got `{}`",
                self.self_id
            ));
        }
        if self.secret.as_deref() == Some("") {
            problems.push(format!(
                "`{path}.secret` is empty: remove it to accept unsigned events"
            ));
        }
        match self.transport {
            Transport::Http => {
                if !(self.api_root.starts_with("http://") || self.api_root.starts_with("https://"))
                {
                    problems.push(format!(
                        "`{path}.api_root` must be an http:// or https:// URL, got `{}` (or set `{path}.transport` to ws-reverse or ws-forward)",
                        self.api_root
                    ));
                }
            }
            Transport::WsForward => {
                let url = self.ws_url.as_deref().unwrap_or_default();
                if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                    problems.push(format!(
                        "`{path}.ws_url` must be the implementation's ws:// or wss:// address (transport ws-forward), got `{url}`"
                    ));
                }
                crate::check_range(
                    &mut problems,
                    path,
                    "ws_lease_secs",
                    self.ws_lease_secs,
                    3,
                    300,
                );
            }
            Transport::WsReverse => {}
        }
        crate::check_http_settings(&mut problems, path, self.timeout_secs, self.max_attempts);
        crate::check_range(
            &mut problems,
            path,
            "late_answer_secs",
            self.late_answer_secs,
            0,
            300,
        );
        if !(1..=1024).contains(&self.max_in_flight) {
            problems.push(format!(
                "`{path}.max_in_flight` must be between 1 and 1024, got `{}`",
                self.max_in_flight
            ));
        }
        problems
    }
}
