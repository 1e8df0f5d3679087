//! Where `${VAR}` references are read from: the process environment, or a map in tests (no
//! `set_var` anywhere: it is process-global and races with parallel tests).

use std::collections::HashMap;

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
