//! What other systems send to be told in chats, typed once: the notify API's request (`POST
//! /api/v1/notify`) and the Alertmanager / Grafana webhook notification. The inbound checks a
//! body against these before accepting it (a caller learns of a mistake at once, as a 400),
//! and the `notify` and `alert_forward` skills read the same types. [`Target`] is where both
//! send.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proto::{Conversation, ConversationKind, Envelope, Reply, Segment};
use crate::reply_id;

/// A notice for one or more destinations: a template with parameters, or a text.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    /// The caller's id: a retry of the same request is delivered once.
    #[serde(default)]
    pub id: Option<String>,
    /// A template of `skills.notify.templates`, with `params` filled in.
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The text itself, instead of a template.
    #[serde(default)]
    pub text: Option<String>,
    /// Send as markdown where the platform renders it.
    #[serde(default)]
    pub markdown: bool,
    pub targets: Vec<Target>,
}

impl NotifyRequest {
    /// Reads and checks a request body.
    ///
    /// # Errors
    /// Not a request (the JSON error), both or neither of `template` and `text`, no target, or
    /// a target without a platform or with both or neither of `group` and `user`.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let request: Self = serde_json::from_slice(body)
            .map_err(|error| format!("not a notify request: {error}"))?;
        if request.template.is_some() == request.text.is_some() {
            return Err("give exactly one of `template` or `text`".into());
        }
        if request.targets.is_empty() {
            return Err("`targets` is empty".into());
        }
        for (index, target) in request.targets.iter().enumerate() {
            if target.group.is_some() == target.user.is_some() || target.platform.is_empty() {
                return Err(format!(
                    "`targets[{index}]` needs a `platform` and exactly one of `group` or `user`"
                ));
            }
        }
        Ok(request)
    }
}

/// One destination of a proactive message: a platform account and a group or a user — not
/// the conversation a message came from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub platform: String,
    /// The account; `default` when the platform has one.
    #[serde(default = "default_bot")]
    pub bot_id: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

fn default_bot() -> String {
    "default".to_string()
}

impl Target {
    /// Returns the problem with this target, if any: it names exactly one of group or user.
    pub fn problem(&self, path: &str) -> Option<String> {
        (self.group.is_some() == self.user.is_some())
            .then(|| format!("`{path}` needs exactly one of `group` or `user`"))
    }

    /// Returns the `index`-th message `skill` sends here for `msg`, with its idempotency key.
    pub fn reply(
        &self,
        msg: &Envelope,
        skill: &str,
        index: usize,
        segments: Vec<Segment>,
    ) -> Reply {
        let (kind, id) = match (&self.group, &self.user) {
            (Some(group), _) => (ConversationKind::Group, group.clone()),
            (None, user) => (ConversationKind::Private, user.clone().unwrap_or_default()),
        };
        Reply {
            id: reply_id(&msg.id, skill, index),
            platform: self.platform.clone(),
            bot_id: self.bot_id.clone(),
            conversation: Some(Conversation {
                kind: kind.into(),
                id,
            }),
            segments,
            in_reply_to: msg.id.clone(),
            reply_context: None,
            skill: skill.to_string(),
            trace: msg.trace.clone(),
        }
    }
}

/// An Alertmanager webhook notification (Grafana sends the same fields); fields not read here
/// travel on in the raw payload.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertNotification {
    /// `firing` or `resolved`.
    pub status: String,
    #[serde(default)]
    pub alerts: Vec<Alert>,
    #[serde(default, rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
}

/// One alert of a notification.
#[derive(Debug, Clone, Deserialize)]
pub struct Alert {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    pub starts_at: String,
}

impl AlertNotification {
    /// Reads and checks a webhook body.
    ///
    /// # Errors
    /// Not a notification (the JSON error), or a status other than `firing` / `resolved`.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let notification: Self = serde_json::from_slice(body)
            .map_err(|error| format!("not an Alertmanager notification: {error}"))?;
        if !matches!(notification.status.as_str(), "firing" | "resolved") {
            return Err(format!(
                "status `{}`, expected `firing` or `resolved`",
                notification.status
            ));
        }
        Ok(notification)
    }
}
