//! One WeCom API call with the platform's timeouts and retries: transport errors, 5xx and
//! errcode -1 ("system busy") are retried with back-off; any other errcode is the answer.

use std::time::Duration;

use serde_json::Value;

use super::WeComConfig;

/// errcodes that mean "the access token is no good": drop it, fetch a new one, retry once.
pub const TOKEN_ERRCODES: [i64; 3] = [40014, 42001, 42009];

/// What a call came back with once retries were spent.
#[derive(Debug)]
pub enum CallError {
    /// WeCom answered with this errcode (not 0): final for this call.
    Api { errcode: i64, errmsg: String },
    /// Transport errors, timeouts, 5xx or "busy" on every attempt.
    Unavailable { reason: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Api { errcode, errmsg } => write!(f, "errcode {errcode}: {errmsg}"),
            CallError::Unavailable { reason } => f.write_str(reason),
        }
    }
}

/// A request body: JSON, or a multipart upload (rebuilt for each attempt).
pub enum Body<'a> {
    None,
    Json(&'a Value),
    File {
        name: &'a str,
        mime: &'a str,
        bytes: &'a [u8],
    },
}

/// The HTTP client of one app, with its retry settings.
pub struct ApiClient {
    client: reqwest::Client,
    base: String,
    max_attempts: u32,
    backoff: Duration,
}

impl ApiClient {
    /// Returns the client for `config`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: &WeComConfig) -> Result<Self, String> {
        let client = clawdbot_core::tls::http_client_builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|error| format!("http client: {error}"))?;
        Ok(Self {
            client,
            base: config.api_base.trim_end_matches('/').to_string(),
            max_attempts: config.max_attempts,
            backoff: Duration::from_millis(config.retry_backoff_ms),
        })
    }

    /// Returns the underlying client (for downloading media to upload).
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// Calls `path` (`/cgi-bin/...`) with `query`; returns the JSON answer when errcode is 0,
    /// and how many attempts it took.
    pub async fn call(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> (Result<Value, CallError>, u32) {
        let url = format!("{}{path}", self.base);
        let mut backoff = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            match self.attempt(&url, query, &body).await {
                Ok(answer) => {
                    let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
                    if errcode == 0 {
                        return (Ok(answer), attempt);
                    }
                    let errmsg = answer
                        .get("errmsg")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if errcode != -1 {
                        return (Err(CallError::Api { errcode, errmsg }), attempt);
                    }
                    last = format!("errcode -1 (system busy): {errmsg}");
                }
                Err(reason) => last = reason,
            }
            tracing::warn!(path, attempt, error = %last, "wecom api call failed");
            if attempt < self.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        (
            Err(CallError::Unavailable { reason: last }),
            self.max_attempts,
        )
    }

    async fn attempt(
        &self,
        url: &str,
        query: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Result<Value, String> {
        let url = reqwest::Url::parse_with_params(url, query)
            .map_err(|error| format!("bad API address `{url}`: {error}"))?;
        let request = match body {
            Body::None => self.client.get(url),
            Body::Json(json) => self.client.post(url).json(json),
            Body::File { name, mime, bytes } => {
                let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name(name.to_string())
                    .mime_str(mime)
                    .map_err(|error| format!("content type `{mime}`: {error}"))?;
                let form = reqwest::multipart::Form::new().part("media", part);
                self.client.post(url).multipart(form)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|error| format!("transport: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("http {status}"));
        }
        response
            .json()
            .await
            .map_err(|error| format!("unreadable answer: {error}"))
    }
}
