//! `http`: forwards a message as JSON to an internal service and replies with what it returns —
//! how teams wire existing systems in without writing a skill.
//!
//! ```yaml
//! skills:
//!   http:
//!     endpoint: "http://tickets.internal/bot"
//!     commands: ["/ticket"]          # and/or keywords: [...]
//!     timeout_ms: 3000
//!     headers: { Authorization: "Bearer ${TICKETS_TOKEN}" }
//! ```
//!
//! Request: `POST endpoint` with `X-Request-ID: <envelope id>` and
//! `{"id","platform","bot_id","message_id","conversation":{"kind","id"},"sender":{"user_id",
//! "display_name","is_admin"},"text"}`. Answer: `{"reply": "text"}`, or `{"replies": [{"type":
//! "text"|"markdown"|"image", "content"|"url": ...}]}`, or a plain-text body; empty means no reply.
//! A service that fails or does not answer in time gets the user a short apology, not silence.

use std::collections::BTreeMap;

use clawdbot_core::proto::{
    ConversationKind, Envelope, Markdown, Reply, Segment, segment::Kind as SegmentKind,
};
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::options::{Options, check_endpoint, http_client, parse};

/// The skill's name.
pub const NAME: &str = "http";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpOptions {
    endpoint: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    3000
}

/// The HTTP forwarding skill.
pub struct HttpSkill {
    manifest: Manifest,
    endpoint: String,
    headers: BTreeMap<String, String>,
    client: reqwest::Client,
}

impl HttpSkill {
    /// Builds the skill from its options; without an endpoint it is off by default.
    ///
    /// # Errors
    /// Malformed options, naming the key path.
    pub fn new(options: &Options) -> Result<Self, String> {
        let parsed: HttpOptions = parse(NAME, options)?;
        check_endpoint(NAME, parsed.endpoint.as_deref())?;
        if !(1..=60_000).contains(&parsed.timeout_ms) {
            return Err(format!(
                "`skills.{NAME}.timeout_ms` must be between 1 and 60000, got `{}`",
                parsed.timeout_ms
            ));
        }
        let client = http_client(NAME, parsed.timeout_ms)?;
        let manifest = Manifest {
            name: NAME.to_string(),
            description: match parsed.commands.first() {
                Some(command) => format!("{command} …: asks the connected service"),
                None => "forwards matching messages to a connected service".to_string(),
            },
            version: env!("CARGO_PKG_VERSION").to_string(),
            triggers: Triggers {
                commands: parsed.commands,
                keywords: parsed.keywords,
                ..Default::default()
            },
            platforms: Vec::new(),
            enabled_by_default: parsed.endpoint.is_some(),
            admin_only: false,
        };
        Ok(Self {
            manifest,
            endpoint: parsed.endpoint.unwrap_or_default(),
            headers: parsed.headers,
            client,
        })
    }

    async fn call(&self, msg: &Envelope) -> Result<Vec<Segment>, String> {
        let conversation = msg.conversation.clone().unwrap_or_default();
        let kind = match conversation.kind() {
            ConversationKind::Group => "group",
            ConversationKind::Channel => "channel",
            _ => "private",
        };
        let sender = msg.sender.clone().unwrap_or_default();
        let body = json!({
            "id": msg.id, "platform": msg.platform, "bot_id": msg.bot_id, "message_id": msg.message_id,
            "conversation": {"kind": kind, "id": conversation.id},
            "sender": {"user_id": sender.user_id, "display_name": sender.display_name, "is_admin": sender.is_admin},
            "text": msg.text,
        });
        let mut request = self
            .client
            .post(&self.endpoint)
            .header("X-Request-ID", &msg.id)
            .json(&body);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        let text = response
            .text()
            .await
            .map_err(|error| format!("unreadable answer: {error}"))?;
        Ok(segments_of(&text))
    }
}

/// Reads the service's answer (see the module docs).
fn segments_of(body: &str) -> Vec<Segment> {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return if body.trim().is_empty() {
            Vec::new()
        } else {
            vec![Segment::text(body.trim())]
        };
    };
    if let Some(reply) = value.get("reply").and_then(Value::as_str) {
        return vec![Segment::text(reply)];
    }
    let Some(replies) = value.get("replies").and_then(Value::as_array) else {
        return Vec::new();
    };
    replies
        .iter()
        .filter_map(|item| {
            let content = item
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match item.get("type").and_then(Value::as_str).unwrap_or("text") {
                "markdown" => Some(Segment {
                    kind: Some(SegmentKind::Markdown(Markdown {
                        markdown: content.to_string(),
                    })),
                }),
                "image" => item.get("url").and_then(Value::as_str).map(Segment::image),
                _ => (!content.is_empty()).then(|| Segment::text(content)),
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl Skill for HttpSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        if self.endpoint.is_empty() {
            return Ok(Vec::new());
        }
        let segments = match self.call(msg).await {
            Ok(segments) if segments.is_empty() => return Ok(Vec::new()),
            Ok(segments) => segments,
            Err(reason) => {
                clawdbot_core::telemetry::count_error("skill", "http_upstream");
                tracing::warn!(skill = NAME, endpoint = %self.endpoint, error = %reason, "connected service failed");
                vec![Segment::text(
                    "The connected service is not answering right now; please try again later.",
                )]
            }
        };
        Ok(vec![msg.reply(NAME, 0, segments)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_in_every_documented_shape() {
        assert_eq!(segments_of(r#"{"reply":"hi"}"#), vec![Segment::text("hi")]);
        assert_eq!(
            segments_of("plain words\n"),
            vec![Segment::text("plain words")]
        );
        assert!(segments_of("").is_empty());
        let many = segments_of(
            r#"{"replies":[{"type":"text","content":"a"},{"type":"image","url":"http://i/x.png"}]}"#,
        );
        assert_eq!(
            many,
            vec![Segment::text("a"), Segment::image("http://i/x.png")]
        );
    }

    #[test]
    fn options_are_checked() {
        let options = |v: Value| match v {
            Value::Object(map) => map,
            _ => Options::new(),
        };
        let error = HttpSkill::new(&options(json!({"endpoint": "ftp://x"})))
            .err()
            .expect("rejected");
        assert!(error.contains("`skills.http.endpoint`"), "{error}");
        assert!(
            !HttpSkill::new(&Options::new())
                .expect("no endpoint is fine")
                .manifest()
                .enabled_by_default
        );
    }
}
