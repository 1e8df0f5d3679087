//! Where `${VAR}` references are read from: the process environment, or a map in tests (no
//! `set_var` anywhere: it is process-global and races with parallel tests).

use std::collections::HashMap;
use std::sync::Arc;

/// `${secret:NAME}` refers to a value sealed in the store (`clawdbot security set NAME`), not
/// to an environment variable.
pub const SECRET_PREFIX: &str = "secret:";

/// A source of environment variables.
pub trait Env {
    /// Returns the value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// The process environment, with `${secret:NAME}` answered from the store's secrets (opened
/// at start by the binary, which alone has the store and the master key).
#[derive(Clone, Default)]
pub struct ConfigEnv {
    secrets: Arc<HashMap<String, String>>,
}

impl ConfigEnv {
    /// The process environment and these opened secrets, by name.
    pub fn with_secrets(secrets: HashMap<String, String>) -> Self {
        Self {
            secrets: Arc::new(secrets),
        }
    }
}

impl std::fmt::Debug for ConfigEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only, never values.
        let mut names: Vec<&String> = self.secrets.keys().collect();
        names.sort();
        f.debug_struct("ConfigEnv")
            .field("secrets", &names)
            .finish()
    }
}

impl Env for ConfigEnv {
    fn get(&self, name: &str) -> Option<String> {
        match name.strip_prefix(SECRET_PREFIX) {
            Some(secret) => self.secrets.get(secret).cloned(),
            None => std::env::var(name).ok(),
        }
    }
}

/// Answers every `${secret:NAME}` with an empty string and notes the name: how the binary
/// learns which secrets to open before the config can be loaded for real.
#[derive(Default)]
pub(crate) struct SecretRecorder {
    pub(crate) names: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Env for SecretRecorder {
    fn get(&self, name: &str) -> Option<String> {
        match name.strip_prefix(SECRET_PREFIX) {
            Some(secret) => {
                self.names
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(secret.to_string());
                Some(String::new())
            }
            None => std::env::var(name).ok(),
        }
    }
}
