//! The two endpoint dialects.

use clawdbot_core::skill::PastMessage;
use serde_json::{Value, json};

use super::{AiOptions, Kind};

/// Asks the model `question` with `memory` before it; returns the answer text.
pub(super) async fn ask(
    client: &reqwest::Client,
    kind: Kind,
    endpoint: &str,
    options: &AiOptions,
    memory: &[PastMessage],
    question: &str,
) -> Result<String, String> {
    let body = match kind {
        Kind::Openai => openai_body(options, memory, question),
        Kind::Tfserving => json!({"instances": [{"text": question}]}),
    };
    let mut request = client.post(endpoint).json(&body);
    if let Some(key) = &options.api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|error| format!("request failed: {error}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let value: Value = response
        .json()
        .await
        .map_err(|error| format!("unreadable answer: {error}"))?;
    let text = match kind {
        Kind::Openai => value["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string),
        Kind::Tfserving => match &value["predictions"][0] {
            Value::String(text) => Some(text.clone()),
            Value::Object(object) => object
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_string),
            Value::Null => None,
            other => Some(other.to_string()),
        },
    };
    text.filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("no answer in `{value}`"))
}

/// The chat completions request: system prompt, the remembered turns, the question.
fn openai_body(options: &AiOptions, memory: &[PastMessage], question: &str) -> Value {
    let mut messages = Vec::with_capacity(memory.len() + 2);
    if let Some(system) = &options.system_prompt {
        messages.push(json!({"role": "system", "content": system}));
    }
    for past in memory {
        let role = if past.from_bot { "assistant" } else { "user" };
        messages.push(json!({"role": role, "content": past.text}));
    }
    messages.push(json!({"role": "user", "content": question}));
    json!({"model": options.model, "messages": messages})
}
