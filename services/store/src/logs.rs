//! Log records kept in the store, so that `clawdbot log` answers for the whole cluster.

use time::OffsetDateTime;

/// One recorded log event (or, with `count` > 1, a summary of like events).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub at: OffsetDateTime,
    /// `ERROR`, `WARN` or `INFO`.
    pub level: String,
    /// The process's role (`ingress`, `worker`, `egress`, `up`).
    pub role: String,
    pub instance: String,
    pub platform: String,
    pub skill: String,
    pub error_type: String,
    pub message: String,
    /// The event's other fields, `key=value` separated by spaces.
    pub fields: String,
    pub count: i64,
}

/// Which records `log show` wants.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// Levels to include (upper case).
    pub levels: Vec<String>,
    /// Text the message or the fields contain (case-insensitive).
    pub grep: Option<String>,
    pub platform: Option<String>,
    pub skill: Option<String>,
    /// Only records at or after this time (every query is bounded).
    pub since: OffsetDateTime,
    /// At most this many, newest first.
    pub limit: i64,
}

/// What `log analyze` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogGroup {
    Skill,
    Platform,
    Error,
}

impl LogGroup {
    /// The column grouped on.
    pub fn column(self) -> &'static str {
        match self {
            LogGroup::Skill => "skill",
            LogGroup::Platform => "platform",
            LogGroup::Error => "error_type",
        }
    }
}

/// One row of `log analyze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    pub key: String,
    pub errors: i64,
    pub warnings: i64,
    /// All events, summary rows counted with their `count`.
    pub total: i64,
}

/// `grep` as a LIKE pattern: `%text%` with `%`, `_` and `\` escaped.
pub fn like_pattern(grep: &str) -> String {
    let escaped: String = grep
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            other => vec![other],
        })
        .collect();
    format!("%{escaped}%")
}
