//! DingTalk HTTP calls with timeouts and retries (transport errors and 5xx), and the two error
//! shapes: the old API's `{errcode, errmsg}` in a 200, the new API's `{code, message}` in a 4xx.

use std::time::Duration;

use serde_json::Value;

use super::DingTalkConfig;

/// What a call came back with once retries were spent.
#[derive(Debug)]
pub enum CallError {
    /// DingTalk answered with an error: `code` is the errcode or the new API's code string.
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Transport errors, timeouts or 5xx on every attempt.
    Unavailable { reason: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Api {
                status,
                code,
                message,
            } => {
                write!(f, "http {status}, code {code}: {message}")
            }
            CallError::Unavailable { reason } => f.write_str(reason),
        }
    }
}

impl CallError {
    /// Returns whether DingTalk rejected the access token (fetch a new one and retry once).
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, CallError::Api { status, code, .. }
            if *status == 401 || code.contains("token") || code == "InvalidAuthentication")
    }

    /// Returns whether waiting may help: throttling (130101 "send too fast", 410100), busy.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Api { status, code, .. } => {
                *status == 429
                    || [
                        "-1",
                        "130101",
                        "410100",
                        "Throttling",
                        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                    ]
                    .contains(&code.as_str())
                    || code.starts_with("Throttling")
            }
            CallError::Unavailable { .. } => true,
        }
    }
}

/// The HTTP client of one app, with its retry settings.
pub struct ApiClient {
    client: reqwest::Client,
    max_attempts: u32,
    backoff: Duration,
}

impl ApiClient {
    /// Returns the client for `config`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: &DingTalkConfig) -> Result<Self, String> {
        let client = clawdbot_core::tls::http_client_builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|error| format!("http client: {error}"))?;
        Ok(Self {
            client,
            max_attempts: config.max_attempts,
            backoff: Duration::from_millis(config.retry_backoff_ms),
        })
    }

    /// POSTs `body` to `url` with `token` (the new API's header) if given; returns the JSON
    /// answer when it is a success, and the attempts it took.
    pub async fn post(
        &self,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (Result<Value, CallError>, u32) {
        let mut backoff = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            match self.attempt(url, token, body).await {
                Ok(result) => return (result, attempt),
                Err(reason) => last = reason,
            }
            tracing::warn!(url = %redact(url), attempt, error = %last, "dingtalk api call failed");
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

    /// One attempt: `Err` is transient (retry), `Ok(Err)` is DingTalk's answer.
    async fn attempt(
        &self,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Result<Value, CallError>, String> {
        let mut request = self.client.post(url).json(body);
        if let Some(token) = token {
            request = request.header("x-acs-dingtalk-access-token", token);
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("transport: {}", error.without_url()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(format!("http {status}"));
        }
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let text = |key: &str| {
            answer
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if !status.is_success() {
            return Ok(Err(CallError::Api {
                status: status.as_u16(),
                code: text("code"),
                message: text("message"),
            }));
        }
        let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        if errcode == -1 {
            return Err(format!("errcode -1 (system busy): {}", text("errmsg")));
        }
        if errcode != 0 {
            return Ok(Err(CallError::Api {
                status: status.as_u16(),
                code: errcode.to_string(),
                message: text("errmsg"),
            }));
        }
        Ok(Ok(answer))
    }
}

/// A URL for logs: without its query (tokens and signatures live there).
pub fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}
