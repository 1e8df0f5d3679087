//! API keys clawdbot issued itself (`clawdbot security issue-key`), as the ingress knows them.
//!
//! The ingress refreshes this set from the store every few seconds; the inbounds that take API
//! keys (notify) accept a key that is in their config or here. Only SHA-256 digests are held,
//! so the keys themselves never sit in the ingress's memory longer than one refresh.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

type KeyDigest = [u8; 32];

fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// The issued keys by scope (`notify`); cheap to clone, shared by the refresher and inbounds.
#[derive(Debug, Clone, Default)]
pub struct IssuedKeys {
    by_scope: Arc<RwLock<HashMap<String, Vec<KeyDigest>>>>,
}

impl IssuedKeys {
    /// Replaces the keys of every scope at once (a revoked key disappears with the refresh).
    pub fn replace(&self, keys: impl IntoIterator<Item = (String, String)>) {
        let mut by_scope: HashMap<String, Vec<KeyDigest>> = HashMap::new();
        for (scope, key) in keys {
            by_scope.entry(scope).or_default().push(digest(&key));
        }
        *self
            .by_scope
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = by_scope;
    }

    /// Whether `given` is an issued key of `scope`.
    pub fn accepts(&self, scope: &str, given: &str) -> bool {
        let given = digest(given);
        self.by_scope
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(scope)
            .is_some_and(|keys| keys.contains(&given))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_accepted_in_their_scope_until_replaced() {
        let keys = IssuedKeys::default();
        keys.replace([("notify".to_string(), "cbk_one".to_string())]);
        assert!(keys.accepts("notify", "cbk_one"));
        assert!(!keys.accepts("notify", "cbk_two"));
        assert!(!keys.accepts("admin", "cbk_one"));
        keys.replace([("notify".to_string(), "cbk_two".to_string())]);
        assert!(!keys.accepts("notify", "cbk_one"), "revoked by the refresh");
        assert!(keys.accepts("notify", "cbk_two"));
    }
}
