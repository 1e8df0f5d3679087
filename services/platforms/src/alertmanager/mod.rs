//! Alertmanager (and Grafana) alert webhooks: an inbound-only platform, so that alerts travel
//! the same durable path as chat messages (ingress → bus → worker) and the `alert_forward`
//! skill turns them into messages to chat groups on any platform.
//!
//! Point Alertmanager's `webhook_configs.url` (or a Grafana webhook contact point) at
//! `/clawdbot/alertmanager/callback`; with `token` set, send it as
//! `Authorization: Bearer <token>` (Alertmanager's `http_config.authorization`). Each
//! notification becomes one envelope of kind notice and event type `alert`, deduplicated by the
//! payload's hash, so Alertmanager's retries of a notification are not forwarded twice.
//! Payload format: <https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>.

mod inbound;

use serde::Deserialize;

pub use inbound::AlertmanagerInbound;

/// The platform's name: config key, route segment, metric label.
pub const NAME: &str = "alertmanager";
/// The event type of every alert notification.
pub const EVENT_TYPE: &str = "alert";

/// The `alertmanager` config section.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Bearer token Alertmanager must send; unset means unauthenticated (trust the network).
    #[serde(default)]
    pub token: Option<String>,
}

impl AlertmanagerConfig {
    /// Returns every problem with this section.
    pub fn validate(&self, path: &str) -> Vec<String> {
        match &self.token {
            Some(token) if token.is_empty() => vec![format!(
                "`{path}.token` is empty: remove it to accept unauthenticated alerts"
            )],
            _ => Vec::new(),
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
    read: crate::registry::read::<AlertmanagerConfig>,
    schema: schemars::SchemaGenerator::subschema_for::<AlertmanagerConfig>,
    served_without_section: false,
};

/// Inbound only: what arrives here is sent on to chat platforms by a skill.
impl Section for AlertmanagerConfig {
    fn validate(&self, key: &str) -> Vec<String> {
        AlertmanagerConfig::validate(self, key)
    }
    fn chats(&self) -> bool {
        false
    }
    fn inbounds(&self, _: &PlatformServices) -> Vec<Arc<dyn Inbound>> {
        vec![Arc::new(AlertmanagerInbound::new(self.clone()))]
    }
    fn outbounds(
        &self,
        _: &PlatformServices,
    ) -> Result<crate::registry::AccountOutbounds, OutboundError> {
        Ok(Vec::new())
    }
}
