//! The credentials the cluster keeps itself, sealed in the store: issued API keys and values
//! the config refers to as `${secret:NAME}`. Everything here seals or opens through the
//! [`Keyring`]; nothing is written in clear.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clawdbot_store::keyring::{Keyring, KeyringError};
use clawdbot_store::{SecretRecord, Store, secret_kind};
use time::OffsetDateTime;

/// How often the ingress re-reads the issued API keys (a new or revoked key takes effect
/// within this long).
pub const ISSUED_KEYS_REFRESH: Duration = Duration::from_secs(2);

/// Issued API keys start with this, so that a leaked one is recognisable in a scan.
const API_KEY_PREFIX: &str = "cbk_";

/// Sealed secrets in one store, opened with one keyring.
pub struct Vault {
    store: Arc<dyn Store>,
    keys: Keyring,
}

/// What a master-key rotation did.
#[derive(Debug, Default)]
pub struct Resealed {
    /// Secrets moved to the current key.
    pub resealed: Vec<String>,
    /// Secrets already under it.
    pub current: usize,
    /// Secrets that could not be opened, with why (left as they are).
    pub failed: Vec<(String, KeyringError)>,
}

/// One API key issued by a rotation.
#[derive(Debug)]
pub struct IssuedKey {
    pub name: String,
    pub key: String,
    /// The key it replaces stays valid until then (`None`: the old key stopped at once).
    pub old_valid_until: Option<OffsetDateTime>,
}

fn new_api_key() -> String {
    let bytes: [u8; 24] = rand::random();
    format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Vault {
    pub fn new(store: Arc<dyn Store>, keys: Keyring) -> Self {
        Self { store, keys }
    }

    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    fn record(&self, name: &str, kind: &str, scope: &str, value: &[u8]) -> SecretRecord {
        SecretRecord {
            name: name.to_string(),
            kind: kind.to_string(),
            scope: scope.to_string(),
            key_id: self.keys.current().id().to_string(),
            sealed: self.keys.seal(name, value),
            created_at: OffsetDateTime::now_utc(),
            expires_at: None,
        }
    }

    /// Stores a value the config can refer to as `${secret:NAME}`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn put_value(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let record = self.record(name, secret_kind::VALUE, "", value.as_bytes());
        self.store.put_secret(&record).await?;
        Ok(())
    }

    /// Issues a new API key for `scope` under `name` (replacing one of that name at once);
    /// returns the key, which is shown once and kept only sealed.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn issue_api_key(&self, scope: &str, name: &str) -> anyhow::Result<String> {
        let key = new_api_key();
        let record = self.record(name, secret_kind::API_KEY, scope, key.as_bytes());
        self.store.put_secret(&record).await?;
        Ok(key)
    }

    /// Returns every secret still in force (expired ones are purged first).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn records(&self) -> anyhow::Result<Vec<SecretRecord>> {
        self.store
            .purge_expired_secrets(OffsetDateTime::now_utc())
            .await?;
        Ok(self.store.secrets().await?)
    }

    /// Opens one record.
    ///
    /// # Errors
    /// Its key is not in the ring, or it was altered.
    pub fn open(&self, record: &SecretRecord) -> Result<String, KeyringError> {
        let bytes = self
            .keys
            .open(&record.name, &record.key_id, &record.sealed)?;
        String::from_utf8(bytes).map_err(|_| KeyringError::Malformed {
            name: record.name.clone(),
            reason: "not UTF-8",
        })
    }

    /// Returns the values of kind `value` by name, and the secrets that would not open.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn values(
        &self,
    ) -> anyhow::Result<(HashMap<String, String>, Vec<(String, KeyringError)>)> {
        let mut values = HashMap::new();
        let mut failed = Vec::new();
        for record in self.records().await? {
            if record.kind != secret_kind::VALUE {
                continue;
            }
            match self.open(&record) {
                Ok(value) => {
                    values.insert(record.name, value);
                }
                Err(error) => failed.push((record.name, error)),
            }
        }
        Ok((values, failed))
    }

    /// Returns the issued API keys in force as (scope, key); keys that would not open are
    /// logged by name and left out.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn api_keys(&self) -> anyhow::Result<Vec<(String, String)>> {
        let now = OffsetDateTime::now_utc();
        let mut keys = Vec::new();
        for record in self.store.secrets().await? {
            if record.kind != secret_kind::API_KEY || record.expires_at.is_some_and(|at| at <= now)
            {
                continue;
            }
            match self.open(&record) {
                Ok(key) => keys.push((record.scope, key)),
                Err(error) => tracing::error!(
                    secret = %record.name,
                    error_type = "secret_unreadable",
                    reason = %error,
                    "issued API key not accepted"
                ),
            }
        }
        Ok(keys)
    }

    /// Re-seals every secret not under the current master key. A secret changed meanwhile by
    /// someone else is read again, so a concurrent write is never lost; one that does not open
    /// is reported and left untouched.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn reseal_all(&self) -> anyhow::Result<Resealed> {
        let current = self.keys.current().id().to_string();
        let mut report = Resealed::default();
        for mut record in self.records().await? {
            // Two tries: the second re-reads a secret that changed under us.
            for attempt in 0..2 {
                if record.key_id == current {
                    report.current += 1;
                    break;
                }
                let plain = match self.keys.open(&record.name, &record.key_id, &record.sealed) {
                    Ok(plain) => plain,
                    Err(error) => {
                        report.failed.push((record.name.clone(), error));
                        break;
                    }
                };
                let sealed = self.keys.seal(&record.name, &plain);
                if self
                    .store
                    .reseal_secret(&record.name, &record.sealed, &current, &sealed)
                    .await?
                {
                    report.resealed.push(record.name.clone());
                    break;
                }
                let latest = self
                    .store
                    .secrets()
                    .await?
                    .into_iter()
                    .find(|r| r.name == record.name);
                match latest {
                    Some(latest) if attempt == 0 => record = latest,
                    // Deleted meanwhile, or changed twice: nothing of ours to keep.
                    _ => break,
                }
            }
        }
        Ok(report)
    }

    /// Issues a successor for every API key in force (rotated-out ones excepted). The old key
    /// stays valid for `grace` under `NAME@<unix time>`, so callers can switch without a
    /// failed request; a zero grace revokes it at once.
    ///
    /// # Errors
    /// The store is unreachable, or a key does not open (nothing is rotated past it).
    pub async fn rotate_api_keys(&self, grace: Duration) -> anyhow::Result<Vec<IssuedKey>> {
        let now = OffsetDateTime::now_utc();
        let mut issued = Vec::new();
        let records = self.records().await?;
        let mut taken: std::collections::HashSet<String> =
            records.iter().map(|r| r.name.clone()).collect();
        for record in records {
            if record.kind != secret_kind::API_KEY || record.expires_at.is_some() {
                continue;
            }
            let old_valid_until = if grace.is_zero() {
                None
            } else {
                let old = self.open(&record)?;
                let until = now + grace;
                // `NAME@<unix time>`, made unique: a second rotation within the same second
                // must not overwrite the first one's graced key.
                let base = format!("{}@{}", record.name, now.unix_timestamp());
                let name = (1..)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            format!("{base}.{n}")
                        }
                    })
                    .find(|name| !taken.contains(name))
                    .unwrap_or(base);
                taken.insert(name.clone());
                let mut kept =
                    self.record(&name, secret_kind::API_KEY, &record.scope, old.as_bytes());
                kept.created_at = record.created_at;
                kept.expires_at = Some(until);
                self.store.put_secret(&kept).await?;
                Some(until)
            };
            let key = self.issue_api_key(&record.scope, &record.name).await?;
            issued.push(IssuedKey {
                name: record.name,
                key,
                old_valid_until,
            });
        }
        Ok(issued)
    }

    /// Deletes a secret; returns whether it existed.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn delete(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.store.delete_secret(name).await?)
    }
}

/// Keeps `issued` equal to the API keys in the store until shutdown.
pub fn refresh_issued_keys(
    vault: Vault,
    issued: clawdbot_platforms::IssuedKeys,
    shutdown: &clawdbot_core::shutdown::Shutdown,
) {
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        loop {
            match vault.api_keys().await {
                Ok(keys) => issued.replace(keys),
                // The keys of the last good read stay in force.
                Err(error) => tracing::warn!(
                    error_type = "secret_refresh",
                    reason = format!("{error:#}"),
                    "cannot read issued API keys"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(ISSUED_KEYS_REFRESH) => {}
                () = stop.cancelled() => return,
            }
        }
    });
}
