//! A component as one more skill: the router, permissions and rate limits treat it like a
//! built-in or remote one.

use std::sync::Arc;

use clawdbot_core::proto::{Envelope, Reply, Segment};
use clawdbot_core::shared::SharedState;
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};

use crate::bindings::SkillPre;
use crate::capabilities::Capabilities;
use crate::convert;
use crate::host::{CallState, HostServices};
use crate::runtime::{Runtime, WasmError};

/// A loaded component skill.
pub struct WasmSkill {
    manifest: Manifest,
    sha256: String,
    runtime: Arc<Runtime>,
    pre: SkillPre<CallState>,
    services: Arc<HostServices>,
}

impl WasmSkill {
    /// Compiles (or takes from the worker's cache) the component `bytes` and asks it for its
    /// manifest, which must name `expected_name` (the name it was packaged and signed under).
    ///
    /// # Errors
    /// Not a skill component, its manifest traps, or it names another skill.
    pub async fn load(
        runtime: Arc<Runtime>,
        expected_name: &str,
        bytes: &[u8],
        capabilities: Capabilities,
        kv: Option<Arc<dyn SharedState>>,
    ) -> Result<Self, WasmError> {
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        let pre = runtime.prepare(&sha256, bytes).await?;
        let http = clawdbot_core::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WasmError::Engine(format!("HTTP client: {e}")))?;
        let services = Arc::new(HostServices {
            skill: expected_name.to_string(),
            capabilities,
            kv,
            http,
            host_timeout: runtime.settings().timeout,
        });
        let memory = runtime.settings().memory_bytes;
        let described = runtime
            .manifest(&pre, CallState::new(services.clone(), memory, None, None))
            .await?;
        if described.name != expected_name {
            return Err(WasmError::NotASkill(format!(
                "the component calls itself `{}`, but was loaded as `{expected_name}`",
                described.name
            )));
        }
        let manifest = Manifest {
            name: described.name,
            description: described.description,
            version: described.version,
            triggers: Triggers {
                commands: described.commands,
                keywords: described.keywords,
                patterns: described.patterns,
                event_types: described.event_types,
            },
            platforms: Vec::new(),
            enabled_by_default: true,
            admin_only: false,
        };
        Ok(Self {
            manifest,
            sha256,
            runtime,
            pre,
            services,
        })
    }

    /// The component's SHA-256 (hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Runs one call without the apology: what benchmarks and tests measure.
    ///
    /// # Errors
    /// The call trapped, ran out of time or memory, or the skill returned an error.
    pub async fn call(&self, msg: &Envelope, cx: &SkillContext) -> Result<Vec<Reply>, WasmError> {
        // The envelope is kept for the host's `history` only when the skill may call it.
        let history = self.services.capabilities.history;
        let state = CallState::new(
            self.services.clone(),
            self.runtime.settings().memory_bytes,
            cx.history.clone().filter(|_| history),
            history.then(|| msg.clone()),
        );
        let message = convert::message(msg);
        match self.runtime.handle(&self.pre, state, &message).await? {
            Ok(replies) => Ok(convert::replies(msg, &self.manifest.name, replies)),
            Err(reason) => Err(WasmError::Trap(format!("the skill reported: {reason}"))),
        }
    }
}

#[async_trait::async_trait]
impl Skill for WasmSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A failed call is answered, not retried: running the same code on the same message
    /// again would fail the same way, and the user should hear something.
    async fn handle(&self, msg: &Envelope, cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        match self.call(msg, cx).await {
            Ok(replies) => Ok(replies),
            Err(error) => {
                let name = &self.manifest.name;
                clawdbot_core::telemetry::count_error("skill", error.kind());
                tracing::warn!(skill = %name, error_type = error.kind(), reason = %error, "WebAssembly skill failed; answering with an error reply");
                let text = format!("{name} could not answer this message ({error}).");
                Ok(vec![msg.reply(name, 0, vec![Segment::text(text)])])
            }
        }
    }
}
