//! `${secret:NAME}` in the config: values sealed in the store (`clawdbot security set`), so a
//! platform secret or a remote skill's token need not sit in a file or a pod's environment.
//!
//! The config names the store, and the store holds the secrets; so the config is read once
//! with the secrets left empty to find the store and the names, the secrets are opened with
//! the master key, and then the config is loaded for real with them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use clawdbot_config::{Config, ConfigEnv};
use clawdbot_store::keyring::Keyring;

/// Returns what the config's `${...}` are read from: the process environment, plus the secrets
/// the config at `path` refers to, opened from the store.
///
/// # Errors
/// The config refers to secrets but no master key is set, the store is unreachable, or a
/// referenced secret does not open (each named).
pub fn open(path: Option<&std::path::PathBuf>) -> anyhow::Result<ConfigEnv> {
    let Some(path) = path else {
        return Ok(ConfigEnv::default());
    };
    let (value, names) = match clawdbot_config::load_secret_references(Path::new(path)) {
        Ok(found) => found,
        // Problems of the file itself are reported by the real load, with the rest.
        Err(_) => return Ok(ConfigEnv::default()),
    };
    if names.is_empty() {
        return Ok(ConfigEnv::default());
    }
    let listed = names.iter().cloned().collect::<Vec<_>>().join(", ");
    let keys = Keyring::from_env()
        .with_context(|| format!("the config refers to secrets in the store ({listed})"))?;
    let partial = Config::parse(value).map_err(|error| anyhow::anyhow!(error))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime to read the secrets")?;
    let (values, failed) = runtime.block_on(async {
        let (store, _) = crate::backends::connect_store(&partial).await?;
        crate::vault::Vault::new(store, keys).values().await
    })?;
    if let Some((name, error)) = failed.iter().find(|(name, _)| names.contains(name)) {
        anyhow::bail!("`${{secret:{name}}}`: {error}");
    }
    let referenced: HashMap<String, String> = values
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .collect();
    Ok(ConfigEnv::with_secrets(referenced))
}

/// The config for `clawdbot security`, which manages the very secrets the config may refer to
/// (a first `security set` precedes the secret's first use): read with every `${secret:…}`
/// empty and not validated, since only `storage` is used.
///
/// # Errors
/// The file does not read or parse.
pub fn unresolved(
    path: Option<&std::path::PathBuf>,
) -> Result<Config, clawdbot_config::ConfigError> {
    match path {
        Some(path) => {
            let (value, _) = clawdbot_config::load_secret_references(Path::new(path))?;
            Config::parse(value)
        }
        None => Ok(Config::embedded()),
    }
}
