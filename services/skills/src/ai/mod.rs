//! `ai`: answers `/ai <question>` from a model endpoint, with a short memory of the
//! conversation taken from history.
//!
//! Two endpoint kinds:
//! - `openai`: an OpenAI-compatible chat completions API (`POST …/v1/chat/completions`, Bearer
//!   key) — OpenAI, vLLM, Ollama, LocalAI, most gateways;
//! - `tfserving`: TensorFlow Serving's REST predict (`POST …/v1/models/NAME:predict` with
//!   `{"instances":[{"text": …}]}`; the answer is `predictions[0]`, a string or an object whose
//!   `text` is used).
//!
//! ```yaml
//! skills:
//!   ai:
//!     kind: openai
//!     endpoint: "http://llm.internal/v1/chat/completions"
//!     model: "qwen2.5-7b-instruct"
//!     api_key: "${LLM_KEY}"
//!     system_prompt: "You are the support assistant of Example Co."
//!     memory_messages: 6          # earlier messages of the conversation sent along
//!     timeout_ms: 15000
//! ```

mod request;

use clawdbot_core::proto::{Envelope, Reply, Segment};
use clawdbot_core::skill::{
    Manifest, Skill, SkillContext, SkillError, Triggers, command_arguments,
};
use serde::Deserialize;

use crate::options::{Options, check_endpoint, http_client, parse};

/// The skill's name.
pub const NAME: &str = "ai";
const COMMAND: &str = "/ai";

/// Which API the endpoint speaks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Openai,
    Tfserving,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AiOptions {
    #[serde(default)]
    kind: Kind,
    endpoint: Option<String>,
    #[serde(default)]
    model: String,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    system_prompt: Option<String>,
    #[serde(default = "default_memory")]
    memory_messages: usize,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_memory() -> usize {
    6
}
fn default_timeout_ms() -> u64 {
    15_000
}

/// The model-backed skill.
pub struct AiSkill {
    manifest: Manifest,
    options: AiOptions,
    client: reqwest::Client,
}

impl AiSkill {
    /// Builds the skill from its options; without an endpoint it is off by default.
    ///
    /// # Errors
    /// Malformed options, naming the key path.
    pub fn new(options: &Options) -> Result<Self, String> {
        let parsed: AiOptions = parse(NAME, options)?;
        check_endpoint(NAME, parsed.endpoint.as_deref())?;
        if parsed.kind == Kind::Openai && parsed.endpoint.is_some() && parsed.model.is_empty() {
            return Err(format!(
                "`skills.{NAME}.model` is needed for an openai endpoint"
            ));
        }
        if parsed.memory_messages > 50 {
            return Err(format!(
                "`skills.{NAME}.memory_messages` must be at most 50, got `{}`",
                parsed.memory_messages
            ));
        }
        let client = http_client(NAME, parsed.timeout_ms)?;
        let manifest = Manifest {
            name: NAME.to_string(),
            description: "/ai <question>: asks the assistant".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            triggers: Triggers {
                commands: vec![COMMAND.to_string()],
                ..Default::default()
            },
            platforms: Vec::new(),
            enabled_by_default: parsed.endpoint.is_some(),
            admin_only: false,
        };
        Ok(Self {
            manifest,
            options: parsed,
            client,
        })
    }
}

#[async_trait::async_trait]
impl Skill for AiSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let Some(endpoint) = &self.options.endpoint else {
            return Ok(Vec::new());
        };
        let question = command_arguments(&msg.text, COMMAND)
            .unwrap_or(&msg.text)
            .trim()
            .to_string();
        if question.is_empty() {
            return Ok(vec![msg.reply(
                NAME,
                0,
                vec![Segment::text("usage: /ai <question>")],
            )]);
        }
        let memory = match (&cx.history, self.options.memory_messages) {
            (Some(history), wanted) if wanted > 0 => history
                .recent(msg, wanted + 1)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(skill = NAME, error = %error, "no conversation memory this time");
                    Vec::new()
                })
                .into_iter()
                .filter(|past| past.id != msg.id)
                .collect(),
            _ => Vec::new(),
        };
        let answer = request::ask(
            &self.client,
            self.options.kind,
            endpoint,
            &self.options,
            &memory,
            &question,
        )
        .await;
        let text = match answer {
            Ok(text) => text,
            Err(reason) => {
                clawdbot_core::telemetry::count_error("skill", "ai_upstream");
                tracing::warn!(skill = NAME, endpoint = %endpoint, error = %reason, "model endpoint failed");
                "The assistant is not available right now; please try again later.".to_string()
            }
        };
        Ok(vec![msg.reply(NAME, 0, vec![Segment::text(text)])])
    }
}
