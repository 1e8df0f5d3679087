//! What a skill's manifest allows it to reach through the host.

use serde::{Deserialize, Serialize};

/// The capabilities a skill declares (`capabilities:` in its `skill.yaml`). Anything not
/// declared is refused, with the reason given back to the skill.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts `http-request` may reach: `api.example.com` (any port), `127.0.0.1:8080` (that
    /// port), `*.example.com` (its subdomains).
    #[serde(default)]
    pub http_hosts: Vec<String>,
    /// The skill's own key-value store.
    #[serde(default)]
    pub kv: bool,
    /// The recent history of the conversation being handled.
    #[serde(default)]
    pub history: bool,
}

impl Capabilities {
    /// Whether `url` is an http(s) URL to a listed host; `Err` says why not.
    ///
    /// # Errors
    /// Not a URL, not http(s), or a host the manifest does not list.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|error| format!("`{url}`: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("`{url}`: only http and https are allowed"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("`{url}` has no host"))?
            .to_ascii_lowercase();
        let port = parsed.port_or_known_default().unwrap_or(0);
        let allowed = self.http_hosts.iter().any(|entry| {
            let entry = entry.to_ascii_lowercase();
            if let Some(suffix) = entry.strip_prefix("*.") {
                return host.ends_with(&format!(".{suffix}"));
            }
            match entry.rsplit_once(':') {
                Some((name, listed_port)) if listed_port.parse::<u16>().is_ok() => {
                    name == host && listed_port.parse::<u16>().ok() == Some(port)
                }
                _ => entry == host,
            }
        });
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "`{host}:{port}` is not among the hosts this skill's manifest allows ({})",
                if self.http_hosts.is_empty() {
                    "none".to_string()
                } else {
                    self.http_hosts.join(", ")
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_hosts_and_ports_pass() {
        let caps = Capabilities {
            http_hosts: vec![
                "api.example.com".into(),
                "127.0.0.1:8080".into(),
                "*.corp.example".into(),
            ],
            ..Capabilities::default()
        };
        assert!(caps.check_url("https://api.example.com/v1").is_ok());
        assert!(
            caps.check_url("http://API.example.com:9999/").is_ok(),
            "any port"
        );
        assert!(caps.check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(
            caps.check_url("http://127.0.0.1:8081/x").is_err(),
            "other port"
        );
        assert!(caps.check_url("https://hr.corp.example/").is_ok());
        assert!(
            caps.check_url("https://corp.example/").is_err(),
            "suffix only"
        );
        assert!(caps.check_url("https://api.example.com.evil.net/").is_err());
        assert!(caps.check_url("file:///etc/passwd").is_err());
        let refused = caps
            .check_url("http://169.254.169.254/")
            .expect_err("refused");
        assert!(refused.contains("169.254.169.254:80"), "{refused}");
    }
}
