//! Reading a skill's options from its `skills.<name>` config entry.

use serde::de::DeserializeOwned;

/// A skill's options (everything in its config entry besides switches and permissions).
pub type Options = serde_json::Map<String, serde_json::Value>;

/// Parses `options` into `T`, naming the key path in the error (`skills.faq.entries[0]...`).
///
/// # Errors
/// The options do not fit `T`.
pub fn parse<T: DeserializeOwned>(skill: &str, options: &Options) -> Result<T, String> {
    serde_path_to_error::deserialize(serde_json::Value::Object(options.clone())).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(".{path}")
        };
        format!("`skills.{skill}{at}`: {}", error.into_inner())
    })
}
