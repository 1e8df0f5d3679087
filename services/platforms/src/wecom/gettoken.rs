//! WeCom's `gettoken`: the app's access token from its corp id and secret.

use std::time::Duration;

use serde_json::Value;

use super::api::{ApiClient, Body, CallError};
use crate::OutboundError;
use crate::token::{FetchedToken, TokenSource};

/// Fetches an app's token with its credentials.
pub struct GetToken<'a> {
    pub api: &'a ApiClient,
    pub corp_id: &'a str,
    pub secret: &'a str,
}

#[async_trait::async_trait]
impl TokenSource for GetToken<'_> {
    async fn fetch(&self) -> Result<FetchedToken, OutboundError> {
        let query = [("corpid", self.corp_id), ("corpsecret", self.secret)];
        let (answer, attempts) = self.api.call("/cgi-bin/gettoken", &query, Body::None).await;
        let answer = answer.map_err(|error| match error {
            CallError::Api { errcode, errmsg } => OutboundError::Refused {
                reason: format!(
                    "gettoken refused (errcode {errcode}: {errmsg}); check corp_id and secret"
                ),
                attempts,
            },
            CallError::Unavailable { reason } => OutboundError::Unavailable {
                reason: format!("gettoken: {reason}"),
                attempts,
            },
        })?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| OutboundError::Unavailable {
                reason: "gettoken answered without an access_token".into(),
                attempts,
            })?;
        let expires_in = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(7200);
        Ok(FetchedToken {
            token: token.to_string(),
            expires_in: Duration::from_secs(expires_in),
        })
    }
}
