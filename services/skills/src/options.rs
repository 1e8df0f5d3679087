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

/// Checks that an optional endpoint option is an http(s) URL.
///
/// # Errors
/// The option holds something else, naming its key.
pub fn check_endpoint(skill: &str, endpoint: Option<&str>) -> Result<(), String> {
    match endpoint {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(format!(
            "`skills.{skill}.endpoint` must be an http:// or https:// URL, got `{url}`"
        )),
        _ => Ok(()),
    }
}

/// Returns the HTTP client a skill calls its upstream with, `timeout_ms` per request.
///
/// # Errors
/// The client cannot be built.
pub fn http_client(skill: &str, timeout_ms: u64) -> Result<reqwest::Client, String> {
    clawdbot_core::tls::http_client_builder()
        .timeout(std::time::Duration::from_millis(timeout_ms.max(1)))
        .build()
        .map_err(|error| format!("`skills.{skill}`: http client: {error}"))
}
