//! Who may use which skill: the switches and permissions from the config's `skills` and
//! `permissions` sections (reloaded on change), and the cluster-wide switches from
//! `clawdbot skill enable|disable` (polled from the store).
//!
//! The rules for one skill, in order (the first that applies decides):
//! 1. switched off → not available (and not listed by `help`);
//! 2. the sender is in `deny_users` → denied (deny beats every allow);
//! 3. `admin_only` (from the config or the manifest) and the sender is no admin → denied. An
//!    admin is who the platform flags as one (group owner/admin) or who is listed in
//!    `permissions.admins` under the platform (`onebot`) or the account (`onebot/ops`);
//! 4. `allow_groups` or `allow_users` set → allowed only in a listed group or for a listed user;
//! 5. otherwise allowed. Then the rate limit, if any, is counted (across all workers).
//!
//! Before all of them: in a group where a mention is required (`skills.NAME.require_mention`,
//! or the group in `permissions.require_mention_in`), a message that does not mention the bot
//! is not for the bot at all, and is passed over in silence (no denial, no audit record).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use clawdbot_config::{OnRateLimit, PermissionsConfig, RateLimit, SkillSettings};
use clawdbot_core::proto::{ConversationKind, Envelope};
use clawdbot_core::skill::Manifest;

/// Why a sender may not use a skill. The label is the `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    DeniedUser,
    AdminOnly,
    NotAllowedHere,
    RateLimited,
}

impl Denial {
    pub fn label(self) -> &'static str {
        match self {
            Denial::DeniedUser => "deny_users",
            Denial::AdminOnly => "admin_only",
            Denial::NotAllowedHere => "not_allowed",
            Denial::RateLimited => "rate_limited",
        }
    }
}

/// One immutable set of rules; replaced whole on reload.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    skills: BTreeMap<String, SkillSettings>,
    admins: BTreeMap<String, HashSet<String>>,
    /// Groups where only messages mentioning the bot are answered; `*` is every group.
    require_mention_in: HashSet<String>,
    /// Cluster-wide switches from the store; they beat the config.
    switches: BTreeMap<String, bool>,
}

impl Policy {
    /// Returns the rules of `skills` and `permissions`.
    pub fn new(skills: BTreeMap<String, SkillSettings>, permissions: &PermissionsConfig) -> Self {
        let admins = permissions
            .admins
            .iter()
            .map(|(scope, ids)| (scope.clone(), ids.0.iter().cloned().collect()))
            .collect();
        Self {
            skills,
            admins,
            require_mention_in: permissions.require_mention_in.0.iter().cloned().collect(),
            switches: BTreeMap::new(),
        }
    }

    /// Returns a copy with the store's switches.
    pub fn with_switches(&self, switches: BTreeMap<String, bool>) -> Self {
        Self {
            switches,
            ..self.clone()
        }
    }

    /// Returns whether the skill runs at all.
    pub fn enabled(&self, manifest: &Manifest) -> bool {
        self.switches
            .get(&manifest.name)
            .copied()
            .or_else(|| self.skills.get(&manifest.name).and_then(|s| s.enabled))
            .unwrap_or(manifest.enabled_by_default)
    }

    /// Returns whether `msg` is addressed to the bot as far as `manifest`'s skill is concerned:
    /// anything but a group message is; a group message is unless a mention is required there
    /// and the message does not mention the bot.
    pub fn addressed(&self, manifest: &Manifest, msg: &Envelope) -> bool {
        let Some(conversation) = &msg.conversation else {
            return true;
        };
        if msg.mentions_bot || conversation.kind() != ConversationKind::Group {
            return true;
        }
        let by_skill = self
            .skills
            .get(&manifest.name)
            .is_some_and(|s| s.require_mention);
        let by_group = self.require_mention_in.contains("*")
            || self.require_mention_in.contains(&conversation.id);
        !(by_skill || by_group)
    }

    /// Applies rules 2–4 to the sender of `msg`.
    ///
    /// # Errors
    /// The rule that denies.
    pub fn check(&self, manifest: &Manifest, msg: &Envelope) -> Result<(), Denial> {
        // Permissions govern people. System events (an alert, a notify API call) have no
        // sender: ingress authenticated them, and only the switch applies.
        if msg.sender.is_none() {
            return Ok(());
        }
        let settings = self.skills.get(&manifest.name);
        let sender = msg
            .sender
            .as_ref()
            .map(|s| s.user_id.as_str())
            .unwrap_or_default();
        if settings.is_some_and(|s| s.deny_users.iter().any(|u| u == sender)) {
            return Err(Denial::DeniedUser);
        }
        if (manifest.admin_only || settings.is_some_and(|s| s.admin_only)) && !self.is_admin(msg) {
            return Err(Denial::AdminOnly);
        }
        let Some(settings) = settings else {
            return Ok(());
        };
        if settings.allow_groups.is_empty() && settings.allow_users.is_empty() {
            return Ok(());
        }
        let conversation = msg.conversation.clone().unwrap_or_default();
        let in_allowed_group = conversation.kind() == ConversationKind::Group
            && settings.allow_groups.contains(&conversation.id);
        let allowed_user = settings.allow_users.iter().any(|u| u == sender);
        if in_allowed_group || allowed_user {
            Ok(())
        } else {
            Err(Denial::NotAllowedHere)
        }
    }

    /// Returns the skill's rate limit and what to do when it is hit.
    pub fn rate_limit(&self, skill: &str) -> Option<(RateLimit, OnRateLimit)> {
        let settings = self.skills.get(skill)?;
        settings
            .rate_limit
            .map(|limit| (limit, settings.on_rate_limit))
    }

    /// Returns the settings of a skill, if configured.
    pub fn settings(&self, skill: &str) -> Option<&SkillSettings> {
        self.skills.get(skill)
    }

    fn is_admin(&self, msg: &Envelope) -> bool {
        let Some(sender) = &msg.sender else {
            return false;
        };
        let listed = |scope: &str| {
            self.admins
                .get(scope)
                .is_some_and(|ids| ids.contains(&sender.user_id))
        };
        sender.is_admin
            || listed(&msg.platform)
            || listed(&format!("{}/{}", msg.platform, msg.bot_id))
    }
}

/// The current policy, shared by the worker's tasks and swapped whole by the reloaders.
#[derive(Clone, Default)]
pub struct PolicyHandle {
    current: Arc<RwLock<Arc<Policy>>>,
}

impl PolicyHandle {
    /// Returns a handle holding `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(policy))),
        }
    }

    /// Returns the policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.current
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Replaces the rules from the config, keeping the store's switches.
    pub fn replace_rules(&self, rules: Policy) {
        let switches = self.current().switches.clone();
        self.store(rules.with_switches(switches));
    }

    /// Replaces the store's switches, keeping the rules.
    pub fn replace_switches(&self, switches: BTreeMap<String, bool>) {
        let current = self.current();
        if current.switches != switches {
            self.store(current.with_switches(switches));
        }
    }

    fn store(&self, policy: Policy) {
        match self.current.write() {
            Ok(mut slot) => *slot = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use clawdbot_core::proto::{Conversation, Sender};

    use super::*;

    fn policy(yaml_like: serde_json::Value, admins: serde_json::Value) -> Policy {
        let skills: BTreeMap<String, SkillSettings> =
            serde_json::from_value(yaml_like).expect("skills");
        let permissions: PermissionsConfig = serde_json::from_value(admins).expect("permissions");
        Policy::new(skills, &permissions)
    }

    fn manifest(name: &str) -> Manifest {
        Manifest {
            name: name.into(),
            enabled_by_default: true,
            ..Default::default()
        }
    }

    fn msg(user: &str, group: Option<&str>, platform_admin: bool) -> Envelope {
        let conversation = match group {
            Some(id) => Conversation {
                kind: ConversationKind::Group.into(),
                id: id.into(),
            },
            None => Conversation {
                kind: ConversationKind::Private.into(),
                id: user.into(),
            },
        };
        Envelope {
            platform: "onebot".into(),
            bot_id: "ops".into(),
            conversation: Some(conversation),
            sender: Some(Sender {
                user_id: user.into(),
                is_admin: platform_admin,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_rule_allows_and_denies_as_written() {
        let policy = policy(
            serde_json::json!({
                "echo": {"allow_groups": [123456, 654321], "deny_users": [888888]},
                "alert_forward": {"allow_groups": [987654], "admin_only": true},
                "vip": {"allow_users": ["42"]},
            }),
            serde_json::json!({"admins": {"onebot/ops": [7]}}),
        );
        let echo = manifest("echo");
        assert_eq!(
            policy.check(&echo, &msg("1", Some("123456"), false)),
            Ok(()),
            "allowed group"
        );
        assert_eq!(
            policy.check(&echo, &msg("1", Some("999"), false)),
            Err(Denial::NotAllowedHere),
            "other group"
        );
        assert_eq!(
            policy.check(&echo, &msg("1", None, false)),
            Err(Denial::NotAllowedHere),
            "private chat"
        );
        assert_eq!(
            policy.check(&echo, &msg("888888", Some("123456"), true)),
            Err(Denial::DeniedUser),
            "deny beats allow"
        );

        let alert = manifest("alert_forward");
        assert_eq!(
            policy.check(&alert, &msg("1", Some("987654"), false)),
            Err(Denial::AdminOnly)
        );
        assert_eq!(
            policy.check(&alert, &msg("1", Some("987654"), true)),
            Ok(()),
            "platform admin flag"
        );
        assert_eq!(
            policy.check(&alert, &msg("7", Some("987654"), false)),
            Ok(()),
            "listed admin of the account"
        );
        assert_eq!(
            policy.check(&alert, &msg("7", Some("1"), false)),
            Err(Denial::NotAllowedHere),
            "admin, wrong group"
        );

        let vip = manifest("vip");
        assert_eq!(policy.check(&vip, &msg("42", None, false)), Ok(()));
        assert_eq!(
            policy.check(&vip, &msg("43", None, false)),
            Err(Denial::NotAllowedHere)
        );
        assert_eq!(
            policy.check(&manifest("unconfigured"), &msg("43", None, false)),
            Ok(())
        );
    }

    #[test]
    fn manifests_can_require_admins_and_switches_layer() {
        let policy = policy(
            serde_json::json!({"faq": {"enabled": false}}),
            serde_json::json!({}),
        );
        let shell = Manifest {
            name: "system.shell".into(),
            admin_only: true,
            enabled_by_default: false,
            ..Default::default()
        };
        assert_eq!(
            policy.check(&shell, &msg("1", None, false)),
            Err(Denial::AdminOnly)
        );
        assert!(!policy.enabled(&shell), "disabled by default");
        assert!(!policy.enabled(&manifest("faq")), "config switch");
        assert!(policy.enabled(&manifest("echo")));
        let switched =
            policy.with_switches([("faq".to_string(), true), ("echo".to_string(), false)].into());
        assert!(
            switched.enabled(&manifest("faq")),
            "the cluster switch beats the config"
        );
        assert!(!switched.enabled(&manifest("echo")));
    }

    #[test]
    fn a_required_mention_passes_over_unaddressed_group_messages_only() {
        let by_skill = policy(
            serde_json::json!({"faq": {"require_mention": true}}),
            serde_json::json!({}),
        );
        let by_group = policy(
            serde_json::json!({}),
            serde_json::json!({"require_mention_in": [123]}),
        );
        let everywhere = policy(
            serde_json::json!({}),
            serde_json::json!({"require_mention_in": ["*"]}),
        );
        let in_group = msg("1", Some("123"), false);
        let mut mentioned = in_group.clone();
        mentioned.mentions_bot = true;
        let private = msg("1", None, false);
        let other_group = msg("1", Some("999"), false);
        let (faq, echo) = (manifest("faq"), manifest("echo"));
        assert!(!by_skill.addressed(&faq, &in_group));
        assert!(
            by_skill.addressed(&echo, &in_group),
            "only the skill that asks"
        );
        assert!(!by_group.addressed(&echo, &in_group));
        assert!(
            by_group.addressed(&echo, &other_group),
            "only the listed group"
        );
        assert!(!everywhere.addressed(&echo, &other_group));
        for policy in [&by_skill, &by_group, &everywhere] {
            assert!(
                policy.addressed(&faq, &mentioned),
                "a mention addresses the bot"
            );
            assert!(
                policy.addressed(&faq, &private),
                "a private chat is addressed"
            );
        }
    }
}
