//! Runs the skills a message reaches, within their switches, permissions and rate limits.

use std::sync::Arc;

use clawdbot_bus::Bus;
use clawdbot_config::OnRateLimit;
use clawdbot_core::proto::{ConversationKind, Envelope, Reply, Segment};
use clawdbot_core::skill::{Skill, SkillContext, SkillError};
use clawdbot_core::telemetry::{
    self, SKILL_CALLS_TOTAL, SKILL_DENIALS_TOTAL, SKILLS_LATENCY_SECONDS,
};
use tracing::Instrument;

use crate::loop_guard::{LoopGuard, Verdict};
use crate::policy::{Denial, Policy, PolicyHandle};
use crate::router::{Router, RouterHandle};

const COMPONENT: &str = "worker";
/// The name replies of the router itself carry (unknown commands, rate-limit notices).
const ROUTER: &str = "router";

/// Why a message could not be handled now.
#[derive(Debug)]
pub enum DispatchError {
    /// Try again later (a skill's transient failure).
    Retry(String),
    /// Never going to work.
    DeadLetter(String),
}

/// Decides and runs the skills for each message of one pool.
#[derive(Clone)]
pub struct Dispatcher {
    router: RouterHandle,
    policy: PolicyHandle,
    bus: Arc<dyn Bus>,
    pool: String,
    history: Option<Arc<dyn clawdbot_core::skill::ConversationHistory>>,
    auditor: crate::audit::Auditor,
    loop_guard: Option<LoopGuard>,
}

impl Dispatcher {
    /// Returns a dispatcher for `router`'s skills under `policy`, counting rate limits on `bus`.
    pub fn new(router: RouterHandle, policy: PolicyHandle, bus: Arc<dyn Bus>, pool: &str) -> Self {
        Self {
            router,
            policy,
            bus,
            pool: pool.to_string(),
            history: None,
            auditor: crate::audit::Auditor::disabled(),
            loop_guard: None,
        }
    }

    /// Cuts reply loops between bots (see [`LoopGuard`]).
    pub fn with_loop_guard(mut self, guard: Option<LoopGuard>) -> Self {
        self.loop_guard = guard;
        self
    }

    /// Records denials and admin-only skill calls in the audit trail.
    pub fn with_auditor(mut self, auditor: crate::audit::Auditor) -> Self {
        self.auditor = auditor;
        self
    }

    /// Gives skills read access to history.
    pub fn with_history(
        mut self,
        history: Arc<dyn clawdbot_core::skill::ConversationHistory>,
    ) -> Self {
        self.history = Some(history);
        self
    }

    /// Returns the skills the sender of `msg` may use, as (name, description), for `help`.
    fn usable(&self, router: &Router, policy: &Policy, msg: &Envelope) -> Vec<(String, String)> {
        router
            .skills()
            .map(|skill| skill.manifest())
            .filter(|m| {
                policy.enabled(m) && policy.addressed(m, msg) && policy.check(m, msg).is_ok()
            })
            // Only what a person can trigger by writing something.
            .filter(|m| {
                !(m.triggers.commands.is_empty()
                    && m.triggers.keywords.is_empty()
                    && m.triggers.patterns.is_empty())
            })
            .filter(|m| m.platforms.is_empty() || m.platforms.contains(&msg.platform))
            .map(|m| (m.name.clone(), m.description.clone()))
            .collect()
    }

    /// Runs the skills `msg` reaches and returns their replies.
    ///
    /// # Errors
    /// A skill failed: retry later, or dead-letter.
    pub async fn dispatch(&self, msg: &Envelope) -> Result<Vec<Reply>, DispatchError> {
        // Routed once: the guard counts only messages some skill takes.
        let router = self.router.current();
        let routing = router.route(msg);
        let routed = !routing.skills.is_empty();
        let Some(guard) = self.loop_guard.as_ref().filter(|_| routed) else {
            return self.answer(msg, &router, routing).await;
        };
        // The guard's lookups run beside the skills: a loop is rare, a round trip on every
        // message's path is not. A cut message's skills still ran; their replies are dropped.
        let (verdict, replies) = tokio::join!(guard.admit(msg), self.answer(msg, &router, routing));
        match verdict {
            Verdict::Cut => Ok(Vec::new()),
            Verdict::Answer => replies,
        }
    }

    /// Runs the skills `routing` chose for `msg`, within their rules.
    async fn answer(
        &self,
        msg: &Envelope,
        router: &Router,
        routing: crate::router::Routing,
    ) -> Result<Vec<Reply>, DispatchError> {
        let policy = self.policy.current();
        let mut replies = Vec::new();
        if let Some(command) = &routing.unknown_command {
            // Private chats get told; groups are left alone (other bots may own the command).
            if msg
                .conversation
                .as_ref()
                .is_some_and(|c| c.kind() == ConversationKind::Private)
            {
                let text = format!("unknown command {command}; /help lists what you can use");
                replies.push(msg.reply(ROUTER, 0, vec![Segment::text(text)]));
            }
            return Ok(replies);
        }
        for skill in routing.skills {
            let manifest = skill.manifest();
            if !policy.enabled(manifest) || !policy.addressed(manifest, msg) {
                continue;
            }
            if let Err(denial) = policy.check(manifest, msg) {
                audit_denial(msg, &manifest.name, denial);
                self.auditor.record(
                    actor(msg),
                    "skill.use",
                    &manifest.name,
                    "denied",
                    denial.label(),
                );
                continue;
            }
            if manifest.admin_only
                || policy
                    .settings(&manifest.name)
                    .is_some_and(|s| s.admin_only)
            {
                self.auditor
                    .record(actor(msg), "skill.use", &manifest.name, "allowed", "admin");
            }
            if let Some((limit, on_limit)) = policy.rate_limit(&manifest.name)
                && !self.within_rate_limit(msg, &manifest.name, limit).await
            {
                audit_denial(msg, &manifest.name, Denial::RateLimited);
                self.auditor.record(
                    actor(msg),
                    "skill.use",
                    &manifest.name,
                    "denied",
                    Denial::RateLimited.label(),
                );
                if on_limit == OnRateLimit::Notice {
                    let text = format!(
                        "{} is limited to {} uses per {} s; try again later",
                        manifest.name,
                        limit.count,
                        limit.window.as_secs()
                    );
                    replies.push(msg.reply(
                        &format!("{ROUTER}.{}", manifest.name),
                        0,
                        vec![Segment::text(text)],
                    ));
                }
                continue;
            }
            let cx = SkillContext {
                pool: self.pool.clone(),
                // Only `help` reads it; working it out costs a permission check per skill.
                usable: if manifest.name == clawdbot_skills::help::NAME {
                    self.usable(router, &policy, msg)
                } else {
                    Vec::new()
                },
                history: self.history.clone(),
            };
            replies.extend(run_skill(&skill, msg, &cx).await?);
        }
        Ok(replies)
    }

    /// Counts one use; a bus failure lets the use through (the limit protects, it must not
    /// stop the bot) and is logged.
    async fn within_rate_limit(
        &self,
        msg: &Envelope,
        skill: &str,
        limit: clawdbot_config::RateLimit,
    ) -> bool {
        let sender = msg
            .sender
            .as_ref()
            .map(|s| s.user_id.as_str())
            .unwrap_or_default();
        let key = format!("{skill}:{}:{}:{sender}", msg.platform, msg.bot_id);
        match self.bus.rate_limit(&key, limit.count, limit.window).await {
            Ok(within) => within,
            Err(error) => {
                telemetry::count_error(COMPONENT, error.kind());
                tracing::warn!(skill, error = %error, "rate limit unavailable; allowing");
                true
            }
        }
    }
}

async fn run_skill(
    skill: &Arc<dyn Skill>,
    msg: &Envelope,
    cx: &SkillContext,
) -> Result<Vec<Reply>, DispatchError> {
    let name = skill.name().to_string();
    let span = tracing::info_span!("skill", skill = %name);
    let started = std::time::Instant::now();
    let result = skill.handle(msg, cx).instrument(span.clone()).await;
    metrics::histogram!(SKILLS_LATENCY_SECONDS, "skill" => name.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(SKILL_CALLS_TOTAL, "skill" => name.clone()).increment(1);
    match result {
        Ok(replies) => {
            tracing::info!(target: telemetry::SKILL_CALL_TARGET, skill = %name, platform = %msg.platform, outcome = "ok", "skill call");
            let trace = span.in_scope(telemetry::current_trace_context);
            Ok(replies
                .into_iter()
                .map(|mut reply| {
                    reply.trace = Some(trace.clone());
                    reply
                })
                .collect())
        }
        Err(error) => {
            telemetry::count_error("skill", error.kind());
            tracing::warn!(target: telemetry::SKILL_CALL_TARGET, skill = %name, platform = %msg.platform, outcome = "failed", error_type = error.kind(), reason = %error, "skill call failed");
            Err(match error {
                SkillError::Retryable(reason) => {
                    DispatchError::Retry(format!("skill `{name}`: {reason}"))
                }
                SkillError::Permanent(reason) => {
                    DispatchError::DeadLetter(format!("skill `{name}`: {reason}"))
                }
            })
        }
    }
}

/// Names who sent `msg`: `platform:user id`.
fn actor(msg: &Envelope) -> String {
    format!(
        "{}:{}",
        msg.platform,
        msg.sender
            .as_ref()
            .map(|s| s.user_id.as_str())
            .unwrap_or_default()
    )
}

/// Records a denial: an audit log line (target `audit`) and the denials counter.
fn audit_denial(msg: &Envelope, skill: &str, denial: Denial) {
    let sender = msg
        .sender
        .as_ref()
        .map(|s| s.user_id.as_str())
        .unwrap_or_default();
    let conversation = msg
        .conversation
        .as_ref()
        .map(|c| c.id.as_str())
        .unwrap_or_default();
    tracing::info!(
        target: "audit",
        skill,
        platform = %msg.platform,
        bot_id = %msg.bot_id,
        user_id = sender,
        conversation,
        reason = denial.label(),
        "skill use denied"
    );
    metrics::counter!(SKILL_DENIALS_TOTAL, "skill" => skill.to_string(), "reason" => denial.label()).increment(1);
}

/// A skill's read access to history, over the store.
pub struct StoreHistory(pub Arc<dyn clawdbot_store::Store>);

#[async_trait::async_trait]
impl clawdbot_core::skill::ConversationHistory for StoreHistory {
    async fn recent(
        &self,
        msg: &Envelope,
        limit: usize,
    ) -> Result<Vec<clawdbot_core::skill::PastMessage>, String> {
        let conversation = msg
            .conversation
            .as_ref()
            .map(|c| c.id.as_str())
            .unwrap_or_default();
        let rows = self
            .0
            .conversation(&msg.platform, &msg.bot_id, conversation, limit as i64)
            .await
            .map_err(|error| error.to_string())?;
        Ok(rows
            .into_iter()
            .map(|row| clawdbot_core::skill::PastMessage {
                from_bot: row.direction == clawdbot_store::Direction::Out,
                id: row.id,
                skill: row.skill,
                text: row.text,
            })
            .collect())
    }
}
