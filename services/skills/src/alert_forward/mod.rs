//! `alert_forward`: turns Alertmanager / Grafana notifications (received by the
//! `alertmanager` platform) into messages to chat groups or users on any platform, routed by
//! labels — firing and resolved, one message per notification (Alertmanager already groups).
//!
//! ```yaml
//! skills:
//!   alert_forward:
//!     routes:
//!       - match: { team: ops }                  # labels the notification's common labels must have
//!         targets:
//!           - { platform: onebot, group: "987654" }
//!           - { platform: sandbox, group: "ops" }
//!       - match: {}                             # everything else
//!         targets: [{ platform: onebot, user: "10002" }]
//! ```
//! The first route whose labels all match decides. Platforms that render markdown get it;
//! the others get the same text without markup.

mod render;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use clawdbot_core::proto::{Envelope, Markdown, Reply, Segment, segment::Kind as SegmentKind};
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};
use serde::Deserialize;

use crate::options::{Options, parse};
use crate::target::Target;

/// The skill's name.
pub const NAME: &str = "alert_forward";
/// The event type the `alertmanager` platform gives notifications.
const EVENT_TYPE: &str = "alert";
/// Platforms whose messages render markdown (the rest get plain text).
const MARKDOWN_PLATFORMS: &[&str] = &["sandbox", "wecom", "dingtalk"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertOptions {
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    #[serde(default, rename = "match")]
    labels: BTreeMap<String, String>,
    targets: Vec<Target>,
}

static DESCRIPTION: LazyLock<String> =
    LazyLock::new(|| "forwards Prometheus/Grafana alerts to chat groups".to_string());

/// The alert forwarding skill.
pub struct AlertForwardSkill {
    manifest: Manifest,
    routes: Vec<Route>,
}

impl AlertForwardSkill {
    /// Builds the skill from its options; with no routes it is off by default.
    ///
    /// # Errors
    /// Malformed options, naming the key path.
    pub fn new(options: &Options) -> Result<Self, String> {
        let parsed: AlertOptions = parse(NAME, options)?;
        for (r, route) in parsed.routes.iter().enumerate() {
            for (t, target) in route.targets.iter().enumerate() {
                if let Some(problem) =
                    target.problem(&format!("skills.{NAME}.routes[{r}].targets[{t}]"))
                {
                    return Err(problem);
                }
            }
        }
        let manifest = Manifest {
            name: NAME.to_string(),
            description: DESCRIPTION.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            triggers: Triggers {
                event_types: vec![EVENT_TYPE.to_string()],
                ..Default::default()
            },
            platforms: Vec::new(),
            enabled_by_default: !parsed.routes.is_empty(),
            admin_only: false,
        };
        Ok(Self {
            manifest,
            routes: parsed.routes,
        })
    }
}

#[async_trait::async_trait]
impl Skill for AlertForwardSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let payload = msg.segments.iter().find_map(|s| match &s.kind {
            Some(SegmentKind::Raw(raw)) if raw.r#type == EVENT_TYPE => Some(raw.data_json.as_str()),
            _ => None,
        });
        let notification: render::Notification = payload
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| {
                SkillError::Permanent("alert envelope without a readable notification".into())
            })?;
        let Some(route) = self.routes.iter().find(|route| {
            route
                .labels
                .iter()
                .all(|(k, v)| notification.common_labels.get(k) == Some(v))
        }) else {
            tracing::info!(
                skill = NAME,
                "no route matches the alert's labels; not forwarded"
            );
            return Ok(Vec::new());
        };
        let markdown = render::markdown(&notification);
        let plain = render::plain(&notification);
        Ok(route
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let segment = if MARKDOWN_PLATFORMS.contains(&target.platform.as_str()) {
                    Segment {
                        kind: Some(SegmentKind::Markdown(Markdown {
                            markdown: markdown.clone(),
                        })),
                    }
                } else {
                    Segment::text(plain.clone())
                };
                target.reply(msg, NAME, index, vec![segment])
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
