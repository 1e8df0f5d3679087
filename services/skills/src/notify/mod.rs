//! `notify`: renders the notices other systems send through the notify API (`POST
//! /api/v1/notify`) and addresses one message to each target, on any platform.
//!
//! ```yaml
//! skills:
//!   notify:
//!     templates:
//!       attendance: "Hi {name}, please clock in for {date}."
//! ```
//! A request naming an unknown template or missing a parameter cannot be delivered however
//! often it is tried: it goes to the dead-letter stream with the reason.

use std::collections::BTreeMap;

use clawdbot_core::proto::{Envelope, Markdown, Reply, Segment, segment::Kind as SegmentKind};
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};
use serde::Deserialize;

use crate::options::{Options, parse};
use clawdbot_core::notice::NotifyRequest as Request;

/// The skill's name.
pub const NAME: &str = "notify";
const EVENT_TYPE: &str = "notify";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyOptions {
    #[serde(default)]
    templates: BTreeMap<String, String>,
}

/// The notify skill.
pub struct NotifySkill {
    manifest: Manifest,
    templates: BTreeMap<String, String>,
}

impl NotifySkill {
    /// Builds the skill from its options. On by default: a request only arrives through an
    /// authenticated API that must be configured first.
    ///
    /// # Errors
    /// Malformed options, naming the key path.
    pub fn new(options: &Options) -> Result<Self, String> {
        let parsed: NotifyOptions = parse(NAME, options)?;
        let manifest = Manifest {
            name: NAME.to_string(),
            description: "sends notices from other systems (notify API)".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            triggers: Triggers {
                event_types: vec![EVENT_TYPE.to_string()],
                ..Default::default()
            },
            platforms: Vec::new(),
            enabled_by_default: true,
            admin_only: false,
        };
        Ok(Self {
            manifest,
            templates: parsed.templates,
        })
    }

    fn render(&self, request: &Request) -> Result<String, String> {
        if let Some(text) = &request.text {
            return Ok(text.clone());
        }
        let name = request.template.as_deref().unwrap_or_default();
        let template = self
            .templates
            .get(name)
            .ok_or_else(|| format!("no template `{name}` in `skills.{NAME}.templates`"))?;
        render_template(template, &request.params)
            .map_err(|param| format!("template `{name}` needs parameter `{param}`"))
    }
}

/// Replaces `{param}` with the parameter's value; `Err` names a missing one.
fn render_template(
    template: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let key = &rest[start + 1..start + len];
        match params.get(key) {
            Some(serde_json::Value::String(value)) => out.push_str(value),
            Some(other) => out.push_str(&other.to_string()),
            None => return Err(key.to_string()),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[async_trait::async_trait]
impl Skill for NotifySkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let payload = msg.segments.iter().find_map(|s| match &s.kind {
            Some(SegmentKind::Raw(raw)) if raw.r#type == EVENT_TYPE => Some(raw.data_json.as_str()),
            _ => None,
        });
        let request: Request = payload
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| {
                SkillError::Permanent("notify envelope without a readable request".into())
            })?;
        let text = self.render(&request).map_err(SkillError::Permanent)?;
        let segment = if request.markdown {
            Segment {
                kind: Some(SegmentKind::Markdown(Markdown { markdown: text })),
            }
        } else {
            Segment::text(text)
        };
        Ok(request
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| target.reply(msg, NAME, index, vec![segment.clone()]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_their_parameters_and_name_a_missing_one() {
        let params = serde_json::json!({"name": "Alice", "day": 25});
        let serde_json::Value::Object(params) = params else {
            panic!("object")
        };
        assert_eq!(
            render_template("Hi {name}, day {day}.", &params),
            Ok("Hi Alice, day 25.".to_string())
        );
        assert_eq!(render_template("Hi {who}", &params), Err("who".to_string()));
        assert_eq!(
            render_template("no params {", &params),
            Ok("no params {".to_string())
        );
    }
}
