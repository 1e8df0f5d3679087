//! The `sandbox` config section.

use serde::Deserialize;

/// The sandbox chat.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// On by default in `clawdbot up`; cluster roles serve it only when the section says so.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The account id (routes, history), `default` unless set.
    #[serde(default = "default_id")]
    pub id: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            id: default_id(),
        }
    }
}

fn default_enabled() -> bool {
    true
}

fn default_id() -> String {
    "default".to_string()
}

impl SandboxConfig {
    /// Returns every problem with this section.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let id_ok = crate::valid_id(&self.id);
        if id_ok {
            Vec::new()
        } else {
            vec![format!(
                "`{path}.id` must be letters, digits, `_` or `-`, got `{}`",
                self.id
            )]
        }
    }
}
