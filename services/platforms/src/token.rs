//! A platform access token shared by every egress replica: kept in the shared state with its
//! expiry, fetched by one replica at a time (a lease), refreshed by one of them before it
//! expires while the others keep using the current one, and dropped when the platform rejects
//! it. The platform says how to fetch one ([`TokenSource`]); the sharing is the same for all.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawdbot_core::shared::SharedState;

use crate::OutboundError;

/// A freshly fetched token and how long the platform says it lives.
#[derive(Debug, Clone)]
pub struct FetchedToken {
    pub token: String,
    pub expires_in: Duration,
}

/// How a platform fetches a token (WeCom's `gettoken`, DingTalk's `oauth2/accessToken`).
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// Fetches a new token from the platform.
    ///
    /// # Errors
    /// Refused credentials (`Refused`), or the platform unreachable (`Unavailable`).
    async fn fetch(&self) -> Result<FetchedToken, OutboundError>;
}

pub use clawdbot_core::telemetry::TOKEN_REFRESHES_TOTAL;

/// How often a replica waiting for another's fetch looks again.
const POLL: Duration = Duration::from_millis(25);

/// A token as stored: `{expires_at_ms}:{token}` (the whole string is what invalidation
/// compares, so a newer token is never dropped by a stale rejection).
#[derive(Clone, Debug)]
struct Stored {
    raw: String,
    token: String,
    expires_at_ms: u64,
}

impl Stored {
    fn parse(raw: String) -> Option<Self> {
        let (expires, token) = raw.split_once(':')?;
        Some(Self {
            expires_at_ms: expires.parse().ok()?,
            token: token.to_string(),
            raw,
        })
    }
}

/// One app's access token.
pub struct AccessTokens {
    shared: Arc<dyn SharedState>,
    key: String,
    lease_key: String,
    refresh_before: Duration,
    /// How long a waiting replica waits for the lease holder.
    wait: Duration,
    /// This replica's copy, so that a send costs no shared-state read.
    local: Mutex<Option<Stored>>,
}

impl AccessTokens {
    /// Returns the token cache of one app: `app` names it in the shared state
    /// (`wecom:{corp}:{agent}`), `wait` bounds how long a replica waits for another's fetch.
    pub fn new(
        app: &str,
        shared: Arc<dyn SharedState>,
        refresh_before: Duration,
        wait: Duration,
    ) -> Self {
        Self {
            shared,
            key: format!("token:{app}"),
            lease_key: format!("token-lease:{app}"),
            refresh_before,
            wait,
            local: Mutex::new(None),
        }
    }

    fn local(&self) -> Option<Stored> {
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_local(&self, stored: Option<Stored>) {
        *self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stored;
    }

    /// Returns a valid token, fetching one if no replica has.
    ///
    /// # Errors
    /// The platform refused the credentials (`Refused`), or it or the shared state is
    /// unreachable.
    pub async fn get(&self, source: &dyn TokenSource) -> Result<String, OutboundError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let now = clawdbot_core::now_ms().max(0) as u64;
            let fresh_until = now + self.refresh_before.as_millis() as u64;
            if let Some(local) = self.local().filter(|s| s.expires_at_ms > fresh_until) {
                return Ok(local.token);
            }
            let current = self.read_shared().await?;
            match current {
                Some(stored) if stored.expires_at_ms > fresh_until => {
                    self.set_local(Some(stored.clone()));
                    return Ok(stored.token);
                }
                Some(stored) if stored.expires_at_ms > now => {
                    // Expiring soon: one replica refreshes, the others go on with this one.
                    if self.take_lease().await? {
                        return self.fetch_and_store(source, fresh_until).await;
                    }
                    return Ok(stored.token);
                }
                _ => {
                    if self.take_lease().await? {
                        return self.fetch_and_store(source, fresh_until).await;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OutboundError::Unavailable {
                    reason: "timed out waiting for another replica to fetch the access token"
                        .into(),
                    attempts: 0,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Drops `token` (the platform said it is invalid or expired), unless another replica already
    /// replaced it.
    ///
    /// # Errors
    /// The shared state is unreachable.
    pub async fn invalidate(&self, token: &str) -> Result<(), OutboundError> {
        if let Some(local) = self.local().filter(|s| s.token == token) {
            self.shared
                .delete_value_if(&self.key, &local.raw)
                .await
                .map_err(shared_error)?;
        }
        self.set_local(None);
        Ok(())
    }

    async fn read_shared(&self) -> Result<Option<Stored>, OutboundError> {
        let raw = self
            .shared
            .get_value(&self.key)
            .await
            .map_err(shared_error)?;
        Ok(raw.and_then(Stored::parse))
    }

    async fn take_lease(&self) -> Result<bool, OutboundError> {
        self.shared
            .put_value_if_absent(&self.lease_key, "1", self.wait)
            .await
            .map_err(shared_error)
    }

    /// Fetches under the lease just taken — unless another replica stored a fresh token
    /// between our read and our lease (it fetched and released the lease meanwhile), which is
    /// then used instead of fetching twice.
    async fn fetch_and_store(
        &self,
        source: &dyn TokenSource,
        fresh_until: u64,
    ) -> Result<String, OutboundError> {
        let stored_meanwhile = self
            .read_shared()
            .await
            .map(|current| current.filter(|stored| stored.expires_at_ms > fresh_until));
        let result = match stored_meanwhile {
            Ok(Some(stored)) => {
                self.set_local(Some(stored.clone()));
                Ok(stored.token)
            }
            Ok(None) => self.fetch(source).await,
            Err(error) => Err(error),
        };
        // Release the lease whatever happened, so that the next caller tries again at once.
        if let Err(error) = self.shared.delete_value_if(&self.lease_key, "1").await {
            tracing::warn!(error = %error, "cannot release the token lease; it expires");
        }
        result
    }

    async fn fetch(&self, source: &dyn TokenSource) -> Result<String, OutboundError> {
        let fetched = source.fetch().await;
        let outcome = if fetched.is_ok() { "ok" } else { "failed" };
        // `app` is `platform:account` (the key's middle), a small set.
        metrics::counter!(TOKEN_REFRESHES_TOTAL, "app" => self.key.trim_start_matches("token:").to_string(), "outcome" => outcome)
            .increment(1);
        let FetchedToken { token, expires_in } = fetched?;
        let expires_in = expires_in.max(Duration::from_secs(1));
        let expires_at_ms = clawdbot_core::now_ms().max(0) as u64 + expires_in.as_millis() as u64;
        let raw = format!("{expires_at_ms}:{token}");
        self.shared
            .put_value(&self.key, &raw, expires_in)
            .await
            .map_err(shared_error)?;
        tracing::info!(app = %self.key, expires_in_secs = expires_in.as_secs(), "access token fetched");
        self.set_local(Some(Stored {
            raw,
            token: token.clone(),
            expires_at_ms,
        }));
        Ok(token)
    }
}

pub(crate) fn shared_error(error: clawdbot_core::shared::SharedStateError) -> OutboundError {
    OutboundError::Unavailable {
        reason: error.to_string(),
        attempts: 0,
    }
}
