//! Keeps the policy current: reloads the config's `skills` and `permissions` sections when the
//! config file (or directory) changes, and polls the store for cluster-wide skill switches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clawdbot_config::{Config, ConfigEnv, SkillSettings};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry;
use clawdbot_store::SkillRegistry;

use crate::policy::{Policy, PolicyHandle};

/// Returns the problems with a `skills` section: entries naming no skill this worker has and
/// no remote address.
pub fn check_skill_names(
    skills: &BTreeMap<String, SkillSettings>,
    known: &[String],
) -> Vec<String> {
    skills
        .iter()
        .filter(|(name, settings)| settings.remote.is_none() && !known.contains(name))
        .map(|(name, _)| format!("`skills.{name}`: no skill named `{name}` (known: {}); a skill in another process needs `remote`", known.join(", ")))
        .collect()
}

/// The newest modification time of the config file, or of the YAML files of the directory.
fn modified(path: &Path) -> Option<SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            matches!(
                entry.path().extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .filter_map(|entry| entry.metadata().ok()?.modified().ok())
        .max()
}

/// Reloads the rules when the config at `path` changes (checked every `every`). A config
/// that does not load, or names unknown skills, is rejected whole with its problems logged,
/// and the rules in force stay. `env` answers `${VAR}` and the `${secret:NAME}`s opened at start.
pub async fn watch_config(
    path: PathBuf,
    env: ConfigEnv,
    known: Vec<String>,
    handle: PolicyHandle,
    every: Duration,
    shutdown: Shutdown,
) {
    let mut seen = modified(&path);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let loaded = Config::load(&path, &env)
            .map_err(|error| error.problems)
            .and_then(|config| {
                let problems = check_skill_names(&config.core.skills, &known);
                if problems.is_empty() {
                    Ok(config)
                } else {
                    Err(problems)
                }
            });
        match loaded {
            Ok(config) => {
                handle.replace_rules(Policy::new(config.core.skills, &config.core.permissions));
                tracing::info!(path = %path.display(), "permissions reloaded");
            }
            Err(problems) => {
                telemetry::count_error("worker", "config_reload_rejected");
                tracing::error!(
                    path = %path.display(),
                    problems = %problems.join("; "),
                    "config change rejected; keeping the rules in force"
                );
            }
        }
    }
}

/// Polls the store for `clawdbot skill enable|disable` switches every `every`.
pub async fn poll_switches(
    store: Arc<dyn SkillRegistry>,
    handle: PolicyHandle,
    every: Duration,
    shutdown: Shutdown,
) {
    loop {
        match store.skill_states().await {
            Ok(switches) => handle.replace_switches(switches),
            Err(error) => {
                telemetry::count_error("worker", error.kind());
                tracing::warn!(error = %error, "cannot read skill switches; keeping the last ones");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
