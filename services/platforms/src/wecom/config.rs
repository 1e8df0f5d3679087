//! The `wechat_enterprise` config section: one self-built app, or a list with an `id` each.
//! The keys are the ones WeCom's admin console shows (corp_id, secret, agent_id, token,
//! encoding_aes_key), so that an existing config works verbatim.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::crypto;

/// One WeCom self-built app (自建应用), and the group robots that post as it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeComConfig {
    /// The app's id in routes (`/clawdbot/wechat/{id}/callback`), stream entries and history.
    #[serde(default = "default_id")]
    pub id: String,
    /// The enterprise's CorpID (`ww...`); decrypted callbacks must be addressed to it.
    pub corp_id: String,
    /// The app's Secret, for `gettoken`.
    pub secret: String,
    /// The app's AgentId (a number; a numeric string is accepted for `${VAR}`).
    #[serde(deserialize_with = "crate::onebot::number_or_numeric_string")]
    pub agent_id: i64,
    /// The callback Token from the app's 接收消息 settings.
    pub token: String,
    /// The callback EncodingAESKey (43 characters).
    pub encoding_aes_key: String,
    /// Where WeCom's API is; an on-premise proxy or a test server may stand in.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Timeout of one API call.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per delivery for transport errors, 5xx and `-1` (system busy).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Back-off before the first retry; doubled for each further one.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Send markdown as markdown. WeCom renders it only in its own client (not in the WeChat
    /// plugin); set false where members read in WeChat, and markdown is sent as text.
    #[serde(default = "default_true")]
    pub markdown: bool,
    /// Refresh the access token this long before it expires (one replica does).
    #[serde(default = "default_token_refresh_secs")]
    pub token_refresh_before_secs: u64,
    /// WeCom silently drops app messages past this many per member per window.
    #[serde(default)]
    pub member_limit: SendLimit,
    /// Group robots by name: `group: <name>` in a target sends through that robot.
    #[serde(default)]
    pub robots: BTreeMap<String, RobotConfig>,
    /// Each robot's limit (WeCom: 20 a minute); sends past it queue, cluster-wide.
    #[serde(default = "robot_limit")]
    pub robot_limit: SendLimit,
}

/// A send limit: `count` per `window_secs`, with sends past it queued up to `max_wait_secs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendLimit {
    pub count: u32,
    #[serde(default = "default_window_secs")]
    pub window_secs: f64,
    /// The longest a send waits for its slot; past it the queue is full and the delivery fails
    /// as "unavailable" (retried later by the worker, never dropped). Keep it under the egress
    /// lease (`egress.lease_secs`).
    #[serde(default = "default_max_wait_secs")]
    pub max_wait_secs: f64,
    /// Added to the window when spacing sends: a send reaches WeCom a little after its slot
    /// (network, retries), so slots exactly one window apart could land inside one window of
    /// WeCom's clock and be refused.
    #[serde(default = "default_margin_secs")]
    pub margin_secs: f64,
}

impl Default for SendLimit {
    fn default() -> Self {
        Self {
            count: 30,
            window_secs: default_window_secs(),
            max_wait_secs: default_max_wait_secs(),
            margin_secs: default_margin_secs(),
        }
    }
}

/// One group robot (群机器人).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// The webhook key (the `key=` of its URL); keep it in `${ENV}`.
    pub key: String,
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
    "https://qyapi.weixin.qq.com".to_string()
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
fn default_true() -> bool {
    true
}
fn default_token_refresh_secs() -> u64 {
    300
}
fn default_window_secs() -> f64 {
    60.0
}
fn default_max_wait_secs() -> f64 {
    45.0
}
fn default_margin_secs() -> f64 {
    0.5
}

impl WeComConfig {
    /// Returns every problem with this app, each naming its key path under `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !crate::valid_id(&self.id) {
            problems.push(format!(
                "`{path}.id` must be letters, digits, `_` or `-`, got `{}`",
                self.id
            ));
        }
        for (key, value) in [
            ("corp_id", &self.corp_id),
            ("secret", &self.secret),
            ("token", &self.token),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("`{path}.{key}` is empty"));
            }
        }
        if self.agent_id <= 0 {
            problems.push(format!(
                "`{path}.agent_id` must be the app's AgentId, got `{}`",
                self.agent_id
            ));
        }
        if let Err(reason) = crypto::aes_key(&self.encoding_aes_key) {
            problems.push(format!(
                "`{path}.encoding_aes_key` {reason} (copy it from the app's 接收消息 settings)"
            ));
        }
        if !(self.api_base.starts_with("http://") || self.api_base.starts_with("https://")) {
            problems.push(format!(
                "`{path}.api_base` must be an http:// or https:// URL, got `{}`",
                self.api_base
            ));
        }
        if !(1..=60).contains(&self.timeout_secs) {
            problems.push(format!(
                "`{path}.timeout_secs` must be between 1 and 60, got `{}`",
                self.timeout_secs
            ));
        }
        if !(1..=10).contains(&self.max_attempts) {
            problems.push(format!(
                "`{path}.max_attempts` must be between 1 and 10, got `{}`",
                self.max_attempts
            ));
        }
        for (name, limit) in [
            ("member_limit", &self.member_limit),
            ("robot_limit", &self.robot_limit),
        ] {
            problems.extend(limit.validate(&format!("{path}.{name}")));
        }
        for (name, robot) in &self.robots {
            if !crate::valid_id(name) {
                problems.push(format!(
                    "`{path}.robots.{name}`: robot names must be letters, digits, `_` or `-`"
                ));
            }
            if robot.key.trim().is_empty() {
                problems.push(format!("`{path}.robots.{name}.key` is empty"));
            }
        }
        problems
    }
}

impl SendLimit {
    fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.count == 0 {
            problems.push(format!("`{path}.count` must be at least 1"));
        }
        if !(self.window_secs > 0.0 && self.window_secs <= 86_400.0) {
            problems.push(format!(
                "`{path}.window_secs` must be between 0 and 86400, got `{}`",
                self.window_secs
            ));
        }
        if !(self.max_wait_secs >= 0.0 && self.max_wait_secs <= 3600.0) {
            problems.push(format!(
                "`{path}.max_wait_secs` must be between 0 and 3600, got `{}`",
                self.max_wait_secs
            ));
        }
        if !(self.margin_secs >= 0.0 && self.margin_secs <= 60.0) {
            problems.push(format!(
                "`{path}.margin_secs` must be between 0 and 60, got `{}`",
                self.margin_secs
            ));
        }
        problems
    }

    /// The spacing of the schedule: the platform's window plus the margin.
    pub(crate) fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.window_secs + self.margin_secs)
    }

    pub(crate) fn max_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.max_wait_secs)
    }
}
