//! The `skills` and `permissions` sections: who may trigger what, how often, and each skill's
//! options. Users keep these in `config/permissions.yaml`; the worker reloads them on change.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `skills.<name>`: one skill's switch, permissions and options.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
pub struct SkillSettings {
    /// Overrides the skill's default; `clawdbot skill enable|disable` overrides this in turn.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Groups where the skill may be used (empty: any). Numbers or strings.
    #[serde(default, deserialize_with = "ids")]
    pub allow_groups: Vec<String>,
    /// Users who may use it anywhere (empty: anyone the other rules let through).
    #[serde(default, deserialize_with = "ids")]
    pub allow_users: Vec<String>,
    /// Users who may never use it; beats every allow.
    #[serde(default, deserialize_with = "ids")]
    pub deny_users: Vec<String>,
    /// Only admins (the platform's group owners/admins, or `permissions.admins`).
    #[serde(default)]
    pub admin_only: bool,
    /// In groups, only when the message mentions the bot (`@bot /echo hi`); private chats are
    /// always addressed to it.
    #[serde(default)]
    pub require_mention: bool,
    /// `N/Ts`: at most N uses per user per T seconds, across all workers.
    #[serde(default)]
    #[schemars(with = "Option<String>", example = "10/60s")]
    pub rate_limit: Option<RateLimit>,
    /// What a user over the limit gets: a short notice (default) or nothing.
    #[serde(default)]
    pub on_rate_limit: OnRateLimit,
    /// A skill in another process, serving the `Skill` gRPC service at this address.
    #[serde(default)]
    pub remote: Option<String>,
    /// The skill's own options (FAQ entries, endpoints, ...), checked by the skill.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl SkillSettings {
    /// Returns the problems with this entry (the skill checks its own options).
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(limit) = &self.rate_limit
            && (limit.count == 0 || limit.window.is_zero())
        {
            problems.push(format!(
                "`{path}.rate_limit` must allow at least 1 use in a window of at least 1s"
            ));
        }
        if let Some(remote) = &self.remote
            && !(remote.starts_with("http://") || remote.starts_with("https://"))
        {
            problems.push(format!(
                "`{path}.remote` must be an http:// or https:// address, got `{remote}`"
            ));
        }
        problems
    }
}

/// Written back as it is read: `N/Ts`.
impl serde::Serialize for RateLimit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}/{}s", self.count, self.window.as_secs()))
    }
}

/// A rate limit, written `N/Ts` (`10/60s`; `m` and `h` work too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window: Duration,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("`{text}` is not a rate limit like `10/60s`, `5/1m` or `100/1h`");
        let (count, window) = text.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        let window = window.trim();
        let (number, unit) = window.split_at(
            window
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(window.len()),
        );
        let number: u64 = if number.is_empty() {
            1
        } else {
            number.parse().map_err(|_| invalid())?
        };
        let seconds = match unit {
            "s" => number,
            "m" => number * 60,
            "h" => number * 3600,
            _ => return Err(invalid()),
        };
        Ok(Self {
            count,
            window: Duration::from_secs(seconds),
        })
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a user over a rate limit gets.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum OnRateLimit {
    /// A short reply saying so.
    #[default]
    Notice,
    /// Nothing.
    Silent,
}

/// `permissions`: settings for all skills.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PermissionsConfig {
    /// Admins by platform (`onebot`) or account (`onebot/ops`): user ids.
    #[serde(default)]
    pub admins: BTreeMap<String, IdList>,
    /// Groups (conversation ids, or `"*"` for every group) where no skill answers a message
    /// that does not mention the bot: busy groups where the bot speaks only when addressed.
    #[serde(default)]
    pub require_mention_in: IdList,
}

/// A list of ids written as numbers or strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct IdList(pub Vec<String>);

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ids(deserializer).map(IdList)
    }
}

/// Accepts `[123, "abc"]`, all as strings.
fn ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(deserializer)?;
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(text) => Ok(text),
            serde_json::Value::Number(number) => Ok(number.to_string()),
            other => Err(serde::de::Error::custom(format!(
                "an id must be a number or a string, got `{other}`"
            ))),
        })
        .collect()
}

/// Every skill's own options by skill name: what `clawdbot_skills::builtin` builds from (the
/// skills crate takes plain maps, not the config crate).
pub fn skill_options(
    skills: &BTreeMap<String, SkillSettings>,
) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
    skills
        .iter()
        .map(|(name, settings)| (name.clone(), settings.options.clone()))
        .collect()
}

/// The skills served remotely, by name: their address and options (for
/// `clawdbot_skills::connect_remote`).
pub fn remote_skills(
    skills: &BTreeMap<String, SkillSettings>,
) -> BTreeMap<String, (String, serde_json::Map<String, serde_json::Value>)> {
    skills
        .iter()
        .filter_map(|(name, settings)| {
            let address = settings.remote.clone()?;
            Some((name.clone(), (address, settings.options.clone())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse_as_users_write_them() {
        assert_eq!(
            "10/60s".parse(),
            Ok(RateLimit {
                count: 10,
                window: Duration::from_secs(60)
            })
        );
        assert_eq!(
            "5/1m".parse(),
            Ok(RateLimit {
                count: 5,
                window: Duration::from_secs(60)
            })
        );
        assert_eq!(
            "100/h".parse(),
            Ok(RateLimit {
                count: 100,
                window: Duration::from_secs(3600)
            })
        );
        assert!("10 per minute".parse::<RateLimit>().is_err());
        assert!("10/60x".parse::<RateLimit>().is_err());
    }

    #[test]
    fn the_documented_permissions_parse() {
        let value = serde_json::json!({
            "echo": {"allow_groups": [123456, 654321], "deny_users": [888888], "rate_limit": "10/60s"},
            "alert_forward": {"allow_groups": [987654], "admin_only": true},
            "faq": {"entries": [{"keywords": ["price"], "answer": "see the website"}]},
        });
        let skills: BTreeMap<String, SkillSettings> =
            serde_json::from_value(value).expect("parses");
        assert_eq!(skills["echo"].allow_groups, vec!["123456", "654321"]);
        assert_eq!(
            skills["echo"].rate_limit,
            Some(RateLimit {
                count: 10,
                window: Duration::from_secs(60)
            })
        );
        assert!(skills["alert_forward"].admin_only);
        assert!(
            skills["faq"].options.contains_key("entries"),
            "skill options are kept for the skill"
        );
    }
}
