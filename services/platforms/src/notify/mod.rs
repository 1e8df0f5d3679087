//! The notify API: other systems (HR's attendance job, a CI pipeline) send notices to users
//! or groups on any platform with `POST /api/v1/notify` and an API key. An inbound-only
//! platform: the request becomes an envelope on the bus (durable, deduplicated by the caller's
//! `id`), and the `notify` skill renders its template and addresses each target through egress,
//! with egress's per-target rate limits and retries.
//!
//! ```json
//! {"id": "att-2026-11-25-alice", "template": "attendance", "params": {"name": "Alice"},
//!  "targets": [{"platform": "onebot", "group": "123456"}, {"platform": "sandbox", "user": "alice"}]}
//! ```
//! (`text` instead of `template` sends a literal message.) The key goes in
//! `Authorization: Bearer <key>` or `X-API-Key`.

mod inbound;

use serde::Deserialize;

pub use inbound::NotifyInbound;

/// The platform's name: config key, route segment, metric label.
pub const NAME: &str = "notify";
/// The event type of every notify request.
pub const EVENT_TYPE: &str = "notify";

/// The `notify` config section.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Keys callers authenticate with, besides those issued with `clawdbot security issue-key
    /// notify` (kept sealed in the store). Empty: only issued keys are accepted.
    #[serde(default)]
    pub api_keys: Vec<String>,
}

impl NotifyConfig {
    /// Returns every problem with this section.
    pub fn validate(&self, path: &str) -> Vec<String> {
        if self.api_keys.iter().any(|k| k.len() < 16) {
            vec![format!(
                "`{path}.api_keys`: each key needs 16 characters or more"
            )]
        } else {
            Vec::new()
        }
    }
}

use std::sync::Arc;

use crate::{Inbound, OutboundError, PlatformServices, Section};

/// The registration (see [`crate::registry`]).
pub const PLATFORM: crate::Platform = crate::Platform {
    name: NAME,
    config_key: NAME,
    route: NAME,
    read: crate::registry::read::<NotifyConfig>,
    schema: schemars::SchemaGenerator::subschema_for::<NotifyConfig>,
    served_without_section: true,
};

/// Inbound only: what arrives here is sent on to chat platforms by a skill.
impl Section for NotifyConfig {
    fn validate(&self, key: &str) -> Vec<String> {
        NotifyConfig::validate(self, key)
    }
    fn chats(&self) -> bool {
        false
    }
    fn inbounds(&self, services: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        vec![Arc::new(NotifyInbound::new(
            self.clone(),
            services.issued_keys.clone(),
        ))]
    }
    fn outbounds(
        &self,
        _: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        Ok(Vec::new())
    }
}
