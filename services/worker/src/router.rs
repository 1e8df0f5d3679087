//! Which skills a message reaches.
//!
//! The rule, in order:
//! 1. Message events are routed by text; notices and requests (`notice.group_increase`, ...)
//!    reach only skills whose manifest names that event type; meta events reach nobody.
//! 2. A skill serves only the platforms its manifest lists (all when it lists none).
//! 3. **Commands win.** If the text starts with a command some skill declares (`/echo`), the
//!    message reaches exactly the skills declaring that command, and no keyword or pattern
//!    skill — so `/echo price` never also triggers the FAQ's "price" entry.
//! 4. Otherwise it reaches every skill with a matching keyword (case-insensitive) or pattern.
//! 5. Several matches run in registration order (built-ins first, then configured remote
//!    skills), each answering on its own; each is then subject to its switch and permissions.
//! 6. A text that looks like a command (`/word`) that no skill declares is reported as unknown
//!    (the worker answers that in private chats and stays quiet in groups).

use std::sync::Arc;

use clawdbot_core::proto::{Envelope, EventKind};
use clawdbot_core::skill::Skill;
use regex::Regex;

/// One skill with its triggers prepared.
struct Routed {
    skill: Arc<dyn Skill>,
    keywords: Vec<String>,
    patterns: Vec<Regex>,
}

/// The skills of one pool, in routing order.
#[derive(Clone)]
pub struct Router {
    skills: Arc<Vec<Routed>>,
}

/// Where a message goes.
#[derive(Default)]
pub struct Routing {
    /// The skills it reaches, in order.
    pub skills: Vec<Arc<dyn Skill>>,
    /// A `/command` nobody declares.
    pub unknown_command: Option<String>,
}

impl Router {
    /// Returns a router over `skills`, in that order.
    ///
    /// # Errors
    /// A pattern that is not a valid regular expression, naming its skill.
    pub fn new(skills: Vec<Arc<dyn Skill>>) -> Result<Self, String> {
        let routed = skills
            .into_iter()
            .map(|skill| {
                let triggers = &skill.manifest().triggers;
                let patterns = triggers
                    .patterns
                    .iter()
                    .map(|pattern| {
                        Regex::new(pattern).map_err(|error| {
                            format!("skill `{}`: pattern `{pattern}`: {error}", skill.name())
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let keywords = triggers.keywords.iter().map(|k| k.to_lowercase()).collect();
                Ok(Routed {
                    skill,
                    keywords,
                    patterns,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            skills: Arc::new(routed),
        })
    }

    /// Returns every skill, in routing order.
    pub fn skills(&self) -> impl Iterator<Item = &Arc<dyn Skill>> {
        self.skills.iter().map(|routed| &routed.skill)
    }

    /// Applies the rule above to `msg`.
    pub fn route(&self, msg: &Envelope) -> Routing {
        let serves = |routed: &&Routed| {
            let platforms = &routed.skill.manifest().platforms;
            platforms.is_empty() || platforms.contains(&msg.platform)
        };
        match msg.kind() {
            EventKind::Message => {}
            EventKind::Notice | EventKind::Request => {
                let skills = self
                    .skills
                    .iter()
                    .filter(serves)
                    .filter(|routed| {
                        routed
                            .skill
                            .manifest()
                            .triggers
                            .event_types
                            .contains(&msg.event_type)
                    })
                    .map(|routed| routed.skill.clone())
                    .collect();
                return Routing {
                    skills,
                    unknown_command: None,
                };
            }
            _ => return Routing::default(),
        }
        let text = msg.text.trim_start();
        let command = text
            .starts_with('/')
            .then(|| text.split_whitespace().next().unwrap_or_default());
        if let Some(command) = command {
            let skills: Vec<_> = self
                .skills
                .iter()
                .filter(serves)
                .filter(|routed| {
                    routed
                        .skill
                        .manifest()
                        .triggers
                        .commands
                        .iter()
                        .any(|c| c == command)
                })
                .map(|routed| routed.skill.clone())
                .collect();
            if !skills.is_empty() {
                return Routing {
                    skills,
                    unknown_command: None,
                };
            }
        }
        let lowered = text.to_lowercase();
        let skills: Vec<_> = self
            .skills
            .iter()
            .filter(serves)
            .filter(|routed| {
                routed.keywords.iter().any(|k| lowered.contains(k.as_str()))
                    || routed.patterns.iter().any(|p| p.is_match(text))
            })
            .map(|routed| routed.skill.clone())
            .collect();
        let unknown_command = match command {
            Some(command) if skills.is_empty() && command.len() > 1 => Some(command.to_string()),
            _ => None,
        };
        Routing {
            skills,
            unknown_command,
        }
    }
}

#[cfg(test)]
mod tests {
    use clawdbot_core::proto::Reply;
    use clawdbot_core::skill::{Manifest, SkillContext, SkillError, Triggers};

    use super::*;

    struct Fake(Manifest);

    #[async_trait::async_trait]
    impl Skill for Fake {
        fn manifest(&self) -> &Manifest {
            &self.0
        }
        async fn handle(
            &self,
            _msg: &Envelope,
            _cx: &SkillContext,
        ) -> Result<Vec<Reply>, SkillError> {
            Ok(Vec::new())
        }
    }

    fn skill(name: &str, triggers: Triggers, platforms: &[&str]) -> Arc<dyn Skill> {
        Arc::new(Fake(Manifest {
            name: name.into(),
            triggers,
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }))
    }

    fn router() -> Router {
        Router::new(vec![
            skill(
                "echo",
                Triggers {
                    commands: vec!["/echo".into()],
                    ..Default::default()
                },
                &[],
            ),
            skill(
                "faq",
                Triggers {
                    keywords: vec!["Price".into()],
                    patterns: vec![r"(?i)refund\s+policy".into()],
                    ..Default::default()
                },
                &[],
            ),
            skill(
                "welcome",
                Triggers {
                    event_types: vec!["notice.group_increase.approve".into()],
                    ..Default::default()
                },
                &[],
            ),
            skill(
                "qq_only",
                Triggers {
                    keywords: vec!["price".into()],
                    ..Default::default()
                },
                &["qq"],
            ),
        ])
        .expect("router")
    }

    fn message(text: &str) -> Envelope {
        Envelope {
            kind: EventKind::Message.into(),
            platform: "onebot".into(),
            text: text.into(),
            ..Default::default()
        }
    }

    fn names(routing: &Routing) -> Vec<String> {
        routing
            .skills
            .iter()
            .map(|s| s.name().to_string())
            .collect()
    }

    #[test]
    fn commands_win_over_keywords() {
        assert_eq!(
            names(&router().route(&message("/echo what's the price"))),
            vec!["echo"]
        );
    }

    #[test]
    fn keywords_and_patterns_match_case_insensitively_on_served_platforms() {
        assert_eq!(
            names(&router().route(&message("what is the PRICE?"))),
            vec!["faq"]
        );
        assert_eq!(
            names(&router().route(&message("your Refund  Policy?"))),
            vec!["faq"]
        );
        let mut on_qq = message("price");
        on_qq.platform = "qq".into();
        assert_eq!(
            names(&router().route(&on_qq)),
            vec!["faq", "qq_only"],
            "several matches run in order"
        );
    }

    #[test]
    fn events_reach_only_skills_naming_them() {
        let notice = Envelope {
            kind: EventKind::Notice.into(),
            event_type: "notice.group_increase.approve".into(),
            text: "price".into(),
            ..Default::default()
        };
        assert_eq!(names(&router().route(&notice)), vec!["welcome"]);
        let meta = Envelope {
            kind: EventKind::Meta.into(),
            ..Default::default()
        };
        assert!(router().route(&meta).skills.is_empty());
    }

    #[test]
    fn unknown_commands_are_reported_and_plain_text_is_not() {
        assert_eq!(
            router()
                .route(&message("/weather Paris"))
                .unknown_command
                .as_deref(),
            Some("/weather")
        );
        assert_eq!(router().route(&message("hello")).unknown_command, None);
        assert_eq!(router().route(&message("/")).unknown_command, None);
    }

    #[test]
    fn a_bad_pattern_names_its_skill() {
        let bad = skill(
            "broken",
            Triggers {
                patterns: vec!["(".into()],
                ..Default::default()
            },
            &[],
        );
        let error = Router::new(vec![bad]).err().expect("rejected");
        assert!(error.contains("skill `broken`"), "{error}");
    }
}

/// The router in force, swapped whole when skills are loaded on a running cluster.
#[derive(Clone)]
pub struct RouterHandle {
    current: Arc<std::sync::RwLock<Router>>,
}

impl RouterHandle {
    /// Returns a handle holding `router`.
    pub fn new(router: Router) -> Self {
        Self {
            current: Arc::new(std::sync::RwLock::new(router)),
        }
    }

    /// Returns the router in force now (cheap: the skills are shared).
    pub fn current(&self) -> Router {
        self.current
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Replaces the router.
    pub fn replace(&self, router: Router) {
        match self.current.write() {
            Ok(mut slot) => *slot = router,
            Err(poisoned) => *poisoned.into_inner() = router,
        }
    }
}
