//! clawdbot-config: the one config every role reads.
//!
//! Three stages, each its own function:
//! 1. [`load`]: read a YAML file, or every `*.yaml`/`*.yml` of a directory merged in name order
//!    (the `config/wechat.yaml`, `config/permissions.yaml` layout users keep), and replace
//!    `${ENV_VAR}` references (`${VAR:-default}` gives a default);
//! 2. [`Config::parse`]: typed parsing with unknown keys refused;
//! 3. [`Config::validate`]: pure checks that report *every* problem at once, each naming the key
//!    path, the bad value and what would be valid.
//!
//! Connecting to Redis and Postgres is the roles' business (health checks at start), not this
//! crate's: validation never does IO.

mod env;
mod load;
pub mod reference;
mod sections;
mod skills;
mod validate_sections;

pub use env::{ConfigEnv, Env, ProcessEnv, SECRET_PREFIX};
pub use load::{load_secret_references, load_value};
pub use sections::*;
pub use skills::{
    IdList, OnRateLimit, PermissionsConfig, RateLimit, SkillSettings, remote_skills, skill_options,
};

use clawdbot_platforms::PlatformsConfig;

/// A config that could not be used: every problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    pub(crate) fn one(problem: impl Into<String>) -> Self {
        Self {
            problems: vec![problem.into()],
        }
    }
}

/// The whole config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The platform sections (`onebot`, ...).
    pub platforms: PlatformsConfig,
    /// Everything else.
    pub core: CoreConfig,
}

impl Config {
    /// Returns the config of `clawdbot up` with no file: everything in one process on this
    /// machine (in-process bus, SQLite history, the sandbox chat), listening on loopback only
    /// (every listener's default), since the sandbox trusts whoever reaches it.
    pub fn embedded() -> Self {
        let mut config = Self::default();
        config.core.telemetry.log_format = LogFormat::Text;
        config.core.apply_derived_settings();
        config
    }

    /// Loads, parses and validates the config at `path` (a file or a directory).
    ///
    /// # Errors
    /// Every problem found, each naming its file or key path.
    pub fn load(path: &std::path::Path, env: &dyn Env) -> Result<Self, ConfigError> {
        let value = load_value(path, env)?;
        let mut config = Self::parse(value)?;
        config.validate()?;
        config.core.apply_derived_settings();
        Ok(config)
    }

    /// Parses a merged, substituted config tree.
    ///
    /// # Errors
    /// Unknown keys and values of the wrong type, each with its key path.
    pub fn parse(value: serde_json::Value) -> Result<Self, ConfigError> {
        let serde_json::Value::Object(map) = value else {
            if value.is_null() {
                return Ok(Self::default());
            }
            return Err(ConfigError::one(format!(
                "the config must be a map of sections, got `{value}`"
            )));
        };
        let mut platform_map = serde_json::Map::new();
        let mut core_map = serde_json::Map::new();
        let mut problems = Vec::new();
        for (key, section) in map {
            if PlatformsConfig::keys().any(|platform| platform == key) {
                platform_map.insert(key, section);
            } else if CoreConfig::KEYS.contains(&key.as_str()) {
                core_map.insert(key, section);
            } else {
                let mut known: Vec<&str> = PlatformsConfig::keys()
                    .chain(CoreConfig::KEYS.iter().copied())
                    .collect();
                known.sort_unstable();
                problems.push(format!(
                    "unknown section `{key}`, expected one of: {}",
                    known.join(", ")
                ));
            }
        }
        let platforms = PlatformsConfig::read(platform_map)
            .map_err(|p| problems.extend(p))
            .ok();
        let core = typed::<CoreConfig>(core_map)
            .map_err(|p| problems.extend(p))
            .ok();
        match (platforms, core) {
            (Some(platforms), Some(core)) if problems.is_empty() => Ok(Self { platforms, core }),
            _ => Err(ConfigError { problems }),
        }
    }

    /// Checks every section and returns all problems at once.
    ///
    /// # Errors
    /// One line per problem, naming the key path, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = self.platforms.validate();
        problems.extend(self.core.validate());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// Reads the non-platform sections, naming every unknown key (see `read_all`).
fn typed<T: serde::de::DeserializeOwned>(
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<T, Vec<String>> {
    clawdbot_platforms::read_all::read_all(serde_json::Value::Object(map)).map_err(|problems| {
        problems
            .into_iter()
            .map(|problem| match problem.path.as_str() {
                "" => problem.message,
                path => format!("`{path}`: {}", problem.message),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests;
