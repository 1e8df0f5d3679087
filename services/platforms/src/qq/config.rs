//! The `qq` config section: one official QQ bot (q.qq.com), or a list with an `id` each (the
//! callback routes them by `X-Bot-Appid`).

use serde::Deserialize;

/// One QQ bot.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QqConfig {
    /// The bot's id in routes (`/clawdbot/qq/{id}/callback`), stream entries and history.
    #[serde(default = "default_id")]
    pub id: String,
    /// AppID (a number; kept as text, as QQ sends it in `X-Bot-Appid`).
    #[serde(deserialize_with = "text_or_number")]
    pub app_id: String,
    /// AppSecret (the bot secret): derives the Ed25519 key and fetches tokens.
    pub secret: String,
    /// Use QQ's sandbox API.
    #[serde(default)]
    pub sandbox: bool,
    /// The OpenAPI address; defaults by `sandbox`.
    #[serde(default)]
    pub api_base: Option<String>,
    /// Where access tokens come from.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// Event timestamps further than this from the server's clock are refused (replays).
    #[serde(default = "default_timestamp_window_secs")]
    pub timestamp_window_secs: u64,
    /// QQ's reply rules, held by egress before any API call.
    #[serde(default)]
    pub replies: ReplyRules,
    /// Timeout of one API call.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per delivery for transport errors and 5xx (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Back-off before the first retry; doubled for each further one.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
}

/// QQ's passive-reply rules (since 2025-04-21 bots can only reply).
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRules {
    /// A group message can be answered this long after it was sent.
    #[serde(default = "default_group_window")]
    pub group_window_secs: u64,
    /// A one-to-one message can be answered this long after it was sent.
    #[serde(default = "default_c2c_window")]
    pub c2c_window_secs: u64,
    /// Guild channel and DM messages.
    #[serde(default = "default_group_window")]
    pub channel_window_secs: u64,
    /// Replies per message (each with its own `msg_seq`).
    #[serde(default = "default_max_replies")]
    pub max_replies: u64,
}

impl Default for ReplyRules {
    fn default() -> Self {
        Self {
            group_window_secs: default_group_window(),
            c2c_window_secs: default_c2c_window(),
            channel_window_secs: default_group_window(),
            max_replies: default_max_replies(),
        }
    }
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::String(text) => Ok(text),
        other => Err(D::Error::custom(format!(
            "expected the AppID, got `{other}`"
        ))),
    }
}
fn default_id() -> String {
    "default".to_string()
}
fn default_token_url() -> String {
    "https://bots.qq.com/app/getAppAccessToken".to_string()
}
fn default_timestamp_window_secs() -> u64 {
    300
}
fn default_group_window() -> u64 {
    300
}
fn default_c2c_window() -> u64 {
    3600
}
fn default_max_replies() -> u64 {
    5
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

impl QqConfig {
    /// The OpenAPI address: the configured one, else QQ's (sandbox or not).
    pub fn api_base(&self) -> String {
        match &self.api_base {
            Some(base) => base.trim_end_matches('/').to_string(),
            None if self.sandbox => "https://sandbox.api.sgroup.qq.com".to_string(),
            None => "https://api.sgroup.qq.com".to_string(),
        }
    }

    /// Returns every problem with this bot, each naming its key path under `path`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        crate::check_id(&mut problems, path, &self.id);
        if self.app_id.trim().is_empty() || !self.app_id.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(format!(
                "`{path}.app_id` must be the bot's AppID (digits), got `{}`",
                self.app_id
            ));
        }
        if self.secret.trim().is_empty() {
            problems.push(format!("`{path}.secret` is empty"));
        }
        for (key, url) in [
            ("token_url", Some(&self.token_url)),
            ("api_base", self.api_base.as_ref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                problems.push(format!(
                    "`{path}.{key}` must be an http:// or https:// URL, got `{url}`"
                ));
            }
        }
        if !(10..=86_400).contains(&self.timestamp_window_secs) {
            problems.push(format!(
                "`{path}.timestamp_window_secs` must be between 10 and 86400, got `{}`",
                self.timestamp_window_secs
            ));
        }
        if !(1..=20).contains(&self.replies.max_replies) {
            problems.push(format!(
                "`{path}.replies.max_replies` must be between 1 and 20, got `{}`",
                self.replies.max_replies
            ));
        }
        crate::check_http_settings(&mut problems, path, self.timeout_secs, self.max_attempts);
        problems
    }
}
