//! The `wechat_enterprise` config section: one self-built app, or a list with an `id` each.
//! The keys are the ones WeCom's admin console shows (corp_id, secret, agent_id, token,
//! encoding_aes_key), so that an existing config works verbatim.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::crypto;
pub use crate::send_limit::SendLimit;

/// One WeCom self-built app (自建应用), and the group robots that post as it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
    /// Callbacks signed further than this from the server's clock are refused (replays of a
    /// captured callback). WeCom retries within seconds, so minutes are plenty.
    #[serde(default = "default_timestamp_window_secs")]
    pub timestamp_window_secs: u64,
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

/// One group robot (群机器人).
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
fn default_timestamp_window_secs() -> u64 {
    // As QQ's: WeCom retries a callback three times within about 15 s.
    300
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

impl WeComConfig {
    /// Returns every problem with this app, each naming its key path under `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        crate::check_id(&mut problems, path, &self.id);
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
        if !(60..=86_400).contains(&self.timestamp_window_secs) {
            problems.push(format!(
                "`{path}.timestamp_window_secs` must be between 60 and 86400, got `{}`",
                self.timestamp_window_secs
            ));
        }
        if !(self.api_base.starts_with("http://") || self.api_base.starts_with("https://")) {
            problems.push(format!(
                "`{path}.api_base` must be an http:// or https:// URL, got `{}`",
                self.api_base
            ));
        }
        crate::check_http_settings(&mut problems, path, self.timeout_secs, self.max_attempts);
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
