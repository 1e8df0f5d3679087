//! The `dingtalk` config section: one enterprise-internal robot app (HTTP callbacks or Stream
//! mode) and its custom group robots; one app, or a list with an `id` each.

use serde::Deserialize;

use crate::send_limit::SendLimit;

/// How the robot's messages arrive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// DingTalk POSTs to `/clawdbot/dingtalk/callback` (needs a public URL).
    Http,
    /// clawdbot connects out over WebSocket (no public URL); one ingress replica holds it.
    #[default]
    Stream,
}

/// One DingTalk robot app.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DingTalkConfig {
    /// The app's id in routes (`/clawdbot/dingtalk/{id}/callback`), stream entries and history.
    #[serde(default = "default_id")]
    pub id: String,
    /// AppKey (a.k.a. Client ID).
    pub app_key: String,
    /// AppSecret (Client Secret): signs the HTTP callbacks; fetches tokens.
    pub app_secret: String,
    /// The robot's code (usually the AppKey), for the robot OpenAPI.
    #[serde(default)]
    pub robot_code: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// The new API (`https://api.dingtalk.com`): tokens, robot sends, Stream connections.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// The old API (`https://oapi.dingtalk.com`): custom robot webhooks.
    #[serde(default = "default_oapi_base")]
    pub oapi_base: String,
    /// Callback timestamps further than this from the server's clock are refused.
    #[serde(default = "default_timestamp_window_secs")]
    pub timestamp_window_secs: u64,
    /// Timeout of one API call.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per delivery for transport errors and 5xx.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Back-off before the first retry; doubled for each further one.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// A session webhook is not used in its last seconds (the reply would race its expiry).
    #[serde(default = "default_session_margin_secs")]
    pub session_webhook_margin_secs: u64,
    /// Custom group robots (自定义机器人), by id: `group: <id>` in a target sends through one.
    #[serde(default)]
    pub group_robots: Vec<GroupRobotConfig>,
    /// Each custom robot's limit (DingTalk: 20 a minute, then 10 minutes of throttling).
    #[serde(default = "robot_limit")]
    pub robot_limit: SendLimit,
    /// Stream mode settings.
    #[serde(default)]
    pub stream: StreamSettings,
}

/// One custom group robot.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRobotConfig {
    pub id: String,
    /// The `access_token` of its webhook URL.
    pub access_token: String,
    /// The `SEC...` signing secret, when the robot's security setting is 加签.
    #[serde(default)]
    pub secret: Option<String>,
    /// The whole webhook address, if not `{oapi_base}/robot/send`.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// Stream mode: the WebSocket to DingTalk's gateway.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// No frame (message or ping) for this long means the socket is dead: reconnect.
    #[serde(default = "default_silence_secs")]
    pub silence_secs: f64,
    /// Reconnect back-off: from `backoff_min_ms`, doubling to `backoff_max_ms`, with jitter.
    #[serde(default = "default_backoff_min_ms")]
    pub backoff_min_ms: u64,
    /// The longest reconnect back-off.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// How long the holder's lease lives without renewal; another replica takes over after it.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: f64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            silence_secs: default_silence_secs(),
            backoff_min_ms: default_backoff_min_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            lease_secs: default_lease_secs(),
        }
    }
}

fn robot_limit() -> SendLimit {
    SendLimit {
        count: 20,
        ..SendLimit::default()
    }
}
fn default_id() -> String {
    "default".to_string()
}
fn default_api_base() -> String {
    "https://api.dingtalk.com".to_string()
}
fn default_oapi_base() -> String {
    "https://oapi.dingtalk.com".to_string()
}
fn default_timestamp_window_secs() -> u64 {
    3600
}
fn default_timeout_secs() -> u64 {
    5
}
fn default_max_attempts() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    200
}
fn default_session_margin_secs() -> u64 {
    30
}
fn default_silence_secs() -> f64 {
    // DingTalk pings about every 60 s (the SDKs' keepalive); three missed ones is dead.
    180.0
}
fn default_backoff_min_ms() -> u64 {
    1000
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_lease_secs() -> f64 {
    10.0
}

fn url_ok(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl DingTalkConfig {
    /// The robot code for the OpenAPI: the configured one, else the AppKey.
    pub fn robot_code(&self) -> &str {
        self.robot_code.as_deref().unwrap_or(&self.app_key)
    }

    /// Returns every problem with this app, each naming its key path under `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        crate::check_id(&mut problems, path, &self.id);
        for (key, value) in [("app_key", &self.app_key), ("app_secret", &self.app_secret)] {
            if value.trim().is_empty() {
                problems.push(format!("`{path}.{key}` is empty"));
            }
        }
        for (key, value) in [("api_base", &self.api_base), ("oapi_base", &self.oapi_base)] {
            if !url_ok(value) {
                problems.push(format!(
                    "`{path}.{key}` must be an http:// or https:// URL, got `{value}`"
                ));
            }
        }
        if !(60..=86_400).contains(&self.timestamp_window_secs) {
            problems.push(format!(
                "`{path}.timestamp_window_secs` must be between 60 and 86400, got `{}`",
                self.timestamp_window_secs
            ));
        }
        crate::check_http_settings(&mut problems, path, self.timeout_secs, self.max_attempts);
        problems.extend(self.robot_limit.validate(&format!("{path}.robot_limit")));
        let mut seen = std::collections::HashSet::new();
        for (index, robot) in self.group_robots.iter().enumerate() {
            let at = format!("{path}.group_robots[{index}]");
            if !crate::valid_id(&robot.id) {
                problems.push(format!(
                    "`{at}.id` must be letters, digits, `_` or `-`, got `{}`",
                    robot.id
                ));
            }
            if !seen.insert(robot.id.as_str()) {
                problems.push(format!("`{at}.id`: `{}` is used twice", robot.id));
            }
            if robot.access_token.trim().is_empty() {
                problems.push(format!("`{at}.access_token` is empty"));
            }
            if robot.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
                problems.push(format!(
                    "`{at}.secret` is empty: remove it for a robot without 加签"
                ));
            }
            if let Some(webhook) = &robot.webhook
                && !url_ok(webhook)
            {
                problems.push(format!(
                    "`{at}.webhook` must be an http:// or https:// URL, got `{webhook}`"
                ));
            }
        }
        let stream = &self.stream;
        if !(stream.silence_secs >= 1.0 && stream.silence_secs <= 3600.0) {
            problems.push(format!(
                "`{path}.stream.silence_secs` must be between 1 and 3600, got `{}`",
                stream.silence_secs
            ));
        }
        if !(stream.lease_secs >= 1.0 && stream.lease_secs <= 300.0) {
            problems.push(format!(
                "`{path}.stream.lease_secs` must be between 1 and 300, got `{}`",
                stream.lease_secs
            ));
        }
        if stream.backoff_min_ms == 0 || stream.backoff_min_ms > stream.backoff_max_ms {
            problems.push(format!(
                "`{path}.stream.backoff_min_ms` must be at least 1 and at most `backoff_max_ms`, got `{}`",
                stream.backoff_min_ms
            ));
        }
        problems
    }
}
