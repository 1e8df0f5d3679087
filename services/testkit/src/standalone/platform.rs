//! The four platforms behind one face: start the mock, say how clawdbot is configured for
//! it, list what it received, and build the events it injects the way the platform sends them.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::Options;
use crate::mock::dingtalk::{DingTalkCallbacks, MockDingTalk, MockDingTalkSettings};
use crate::mock::faults::Faults;
use crate::mock::onebot::MockOneBot;
use crate::mock::qq::{MockQq, QqEvents};
use crate::mock::wecom::{MockWeCom, MockWeComSettings, WeComCallbacks};

/// The platforms a mock can be started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformName {
    OneBot,
    WeCom,
    DingTalk,
    Qq,
}

impl PlatformName {
    pub const ALL: [&str; 4] = ["onebot", "wecom", "dingtalk", "qq"];
}

impl std::str::FromStr for PlatformName {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "onebot" => Ok(Self::OneBot),
            "wecom" | "wechat_enterprise" => Ok(Self::WeCom),
            "dingtalk" => Ok(Self::DingTalk),
            "qq" => Ok(Self::Qq),
            other => Err(format!(
                "unknown platform {other:?}; one of: {}",
                Self::ALL.join(", ")
            )),
        }
    }
}

/// The account the mock plays: each field means what the platform calls it; `None` takes the
/// default printed in `--help`.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// OneBot self_id; WeCom corp id; DingTalk AppKey; QQ AppID.
    pub id: Option<String>,
    /// OneBot `secret` (X-Signature); WeCom corp secret; DingTalk AppSecret; QQ bot secret.
    pub secret: Option<String>,
    /// OneBot `access_token`; WeCom callback Token.
    pub token: Option<String>,
    /// WeCom EncodingAESKey (43 characters).
    pub aes_key: Option<String>,
    /// WeCom AgentId.
    pub agent_id: Option<i64>,
}

/// Defaults: the official WeCom sample's EncodingAESKey, and ids that read as mocks.
const WECOM_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

impl Account {
    fn id(&self, platform: PlatformName) -> String {
        self.id.clone().unwrap_or_else(|| {
            match platform {
                PlatformName::OneBot => "10001",
                PlatformName::WeCom => "wwmockcorp0000001",
                PlatformName::DingTalk => "dingmockkey",
                PlatformName::Qq => "102000001",
            }
            .to_string()
        })
    }

    fn secret(&self, platform: PlatformName) -> Option<String> {
        self.secret.clone().or_else(|| match platform {
            PlatformName::OneBot => None,
            PlatformName::WeCom => Some("mock-secret".into()),
            PlatformName::DingTalk => Some("mock-app-secret".into()),
            PlatformName::Qq => Some("mockqqbotsecret00".into()),
        })
    }
}

/// A started mock.
pub(super) enum Running {
    OneBot {
        mock: std::sync::Arc<MockOneBot>,
        self_id: i64,
        secret: Option<String>,
        token: Option<String>,
    },
    WeCom {
        mock: MockWeCom,
        callbacks: WeComCallbacks,
        token: String,
        aes_key: String,
        agent_id: i64,
    },
    DingTalk {
        mock: MockDingTalk,
        callbacks: DingTalkCallbacks,
    },
    Qq {
        mock: MockQq,
        events: QqEvents,
    },
}

/// One event to inject, as the control API's `POST /inject` takes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct Injection {
    pub text: String,
    /// The sender (a user id / staff id / member openid).
    #[serde(default = "default_user")]
    pub user: String,
    /// A group to send it in; absent: a one-to-one message (QQ: group `G1`).
    pub group: Option<String>,
}

fn default_user() -> String {
    "20002".into()
}

/// Where an injected event goes: an HTTP request for clawdbot's callback, or a socket push.
pub(super) enum Delivery {
    Http {
        path_and_query: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Pushed over the sockets clawdbot holds to the mock; how many were reached.
    Socket { reached: usize },
}

impl Running {
    pub(super) async fn start(options: &Options) -> Self {
        let account = &options.account;
        let platform = options.platform;
        let id = account.id(platform);
        let secret = account.secret(platform);
        match platform {
            PlatformName::OneBot => Self::OneBot {
                mock: std::sync::Arc::new(
                    MockOneBot::start_on(&options.listen, account.token.as_deref()).await,
                ),
                self_id: id.parse().unwrap_or(10001),
                secret,
                token: account.token.clone(),
            },
            PlatformName::WeCom => {
                let settings = MockWeComSettings {
                    corp_id: id.clone(),
                    secret: secret.unwrap_or_default(),
                    ..MockWeComSettings::default()
                };
                let token = account.token.clone().unwrap_or_else(|| "mocktoken".into());
                let aes_key = account
                    .aes_key
                    .clone()
                    .unwrap_or_else(|| WECOM_AES_KEY.into());
                let agent_id = account.agent_id.unwrap_or(1_000_002);
                Self::WeCom {
                    callbacks: WeComCallbacks::new(&token, &aes_key, &id, agent_id),
                    mock: MockWeCom::start_on(&options.listen, settings).await,
                    token,
                    aes_key,
                    agent_id,
                }
            }
            PlatformName::DingTalk => {
                let settings = MockDingTalkSettings {
                    app_key: id,
                    app_secret: secret.unwrap_or_default(),
                    ..MockDingTalkSettings::default()
                };
                Self::DingTalk {
                    callbacks: DingTalkCallbacks::new(&settings.app_secret),
                    mock: MockDingTalk::start_on(&options.listen, settings).await,
                }
            }
            PlatformName::Qq => {
                let secret = secret.unwrap_or_default();
                Self::Qq {
                    events: QqEvents::new(&id, &secret),
                    mock: MockQq::start_on(&options.listen, &id, &secret).await,
                }
            }
        }
    }

    pub(super) fn address(&self) -> SocketAddr {
        match self {
            Self::OneBot { mock, .. } => mock.address,
            Self::WeCom { mock, .. } => mock.address,
            Self::DingTalk { mock, .. } => mock.address,
            Self::Qq { mock, .. } => mock.address,
        }
    }

    pub(super) fn faults(&self) -> &Faults {
        match self {
            Self::OneBot { mock, .. } => mock.faults(),
            Self::WeCom { mock, .. } => mock.faults(),
            Self::DingTalk { mock, .. } => mock.faults(),
            Self::Qq { mock, .. } => mock.faults(),
        }
    }

    /// Sockets clawdbot (or an SDK) holds open to the mock: OneBot WebSockets, DingTalk Stream
    /// connections; `None` for platforms that have none.
    pub(super) fn connections(&self) -> Option<usize> {
        match self {
            Self::OneBot { mock, .. } => Some(mock.open_sockets()),
            Self::DingTalk { mock, .. } => Some(mock.gateway.active_connections()),
            Self::WeCom { .. } | Self::Qq { .. } => None,
        }
    }

    /// The clawdbot config section that points at this mock, to paste into `clawdbot.yaml`.
    pub(super) fn config_snippet(&self, options: &Options) -> String {
        let account = &options.account;
        let platform = options.platform;
        let base = format!("http://{}", self.address());
        let id = account.id(platform);
        let secret = account.secret(platform).unwrap_or_default();
        match self {
            Self::OneBot {
                token,
                secret,
                self_id,
                ..
            } => {
                let mut section =
                    format!("onebot:\n  self_id: {self_id}\n  api_root: \"{base}\"\n");
                if let Some(token) = token {
                    section.push_str(&format!("  access_token: \"{token}\"\n"));
                }
                if let Some(secret) = secret {
                    section.push_str(&format!("  secret: \"{secret}\"\n"));
                }
                section
            }
            Self::WeCom {
                token,
                aes_key,
                agent_id,
                ..
            } => format!(
                "wechat_enterprise:\n  corp_id: \"{id}\"\n  secret: \"{secret}\"\n  agent_id: {agent_id}\n  token: \"{token}\"\n  encoding_aes_key: \"{aes_key}\"\n  api_base: \"{base}\"\n"
            ),
            Self::DingTalk { .. } => format!(
                "dingtalk:\n  app_key: \"{id}\"\n  app_secret: \"{secret}\"\n  mode: http   # or stream: the mock serves the Stream gateway too\n  api_base: \"{base}\"\n  oapi_base: \"{base}\"\n"
            ),
            Self::Qq { mock, .. } => format!(
                "qq:\n  app_id: \"{id}\"\n  secret: \"{secret}\"\n  api_base: \"{base}\"\n  token_url: \"{}\"\n",
                mock.token_url()
            ),
        }
    }

    /// Everything the mock accepted, oldest first, in one shape for every platform.
    pub(super) fn received(&self) -> Vec<Value> {
        match self {
            Self::OneBot { mock, .. } => mock
                .sent()
                .iter()
                .map(|s| {
                    json!({"via": format!("{}:{}", s.via, s.action), "text": s.text(),
                    "group_id": s.group_id, "user_id": s.user_id, "body": s.message})
                })
                .collect(),
            Self::WeCom { mock, .. } => mock
                .sent()
                .iter()
                .map(|s| json!({"via": s.via, "text": s.content(), "touser": s.touser, "body": s.body}))
                .collect(),
            Self::DingTalk { mock, .. } => mock
                .sent()
                .iter()
                .map(|s| json!({"via": s.via, "text": s.content(), "body": s.body}))
                .collect(),
            Self::Qq { mock, .. } => mock
                .sent()
                .iter()
                .map(|s| json!({"via": s.target, "text": s.content(), "body": s.body}))
                .collect(),
        }
    }

    /// Builds `injection` as the platform would send it, numbered `sequence`.
    pub(super) fn deliver(&self, injection: &Injection, sequence: u64) -> Delivery {
        match self {
            Self::OneBot {
                mock,
                self_id,
                secret,
                ..
            } => {
                let event = onebot_event(*self_id, injection, sequence);
                let reached = mock.push_event(&event);
                if reached > 0 {
                    return Delivery::Socket { reached };
                }
                let body = event.to_string();
                let mut headers = vec![("X-Self-ID".to_string(), self_id.to_string())];
                if let Some(secret) = secret {
                    headers.push(("X-Signature".into(), onebot_signature(secret, &body)));
                }
                Delivery::Http {
                    path_and_query: "/clawdbot/onebot/callback".into(),
                    headers,
                    body,
                }
            }
            Self::WeCom { callbacks, .. } => {
                let callback = callbacks.text(&injection.user, sequence, &injection.text);
                Delivery::Http {
                    path_and_query: format!("/clawdbot/wechat/callback?{}", callback.query),
                    headers: vec![("Content-Type".into(), "text/xml".into())],
                    body: callback.body,
                }
            }
            Self::DingTalk { mock, callbacks } => {
                let expires = clawdbot_core::now_ms() + 3_600_000;
                let body = callbacks.text(
                    &format!("msgmock{sequence}"),
                    injection.group.as_deref(),
                    &injection.user,
                    &injection.text,
                    &mock.session_webhook(&format!("s{sequence}")),
                    expires,
                );
                if mock.gateway.active_connections() > 0 {
                    let message: Value = serde_json::from_str(&body).unwrap_or_default();
                    mock.gateway.push_message(&message);
                    return Delivery::Socket { reached: 1 };
                }
                let mut headers: Vec<(String, String)> = callbacks
                    .headers()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                headers.push(("Content-Type".into(), "application/json".into()));
                Delivery::Http {
                    path_and_query: "/clawdbot/dingtalk/callback".into(),
                    headers,
                    body,
                }
            }
            Self::Qq { events, .. } => {
                let body = events.group_at_from(
                    &injection.user,
                    &format!("GROUP_AT_MESSAGE_CREATE:mock{sequence}"),
                    &format!("ROBOT1.0_mock{sequence}"),
                    injection.group.as_deref().unwrap_or("G1"),
                    &injection.text,
                    Duration::ZERO,
                );
                let mut headers: Vec<(String, String)> = events
                    .headers(&body)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                headers.push(("Content-Type".into(), "application/json".into()));
                Delivery::Http {
                    path_and_query: "/clawdbot/qq/callback".into(),
                    headers,
                    body,
                }
            }
        }
    }

    /// OneBot: keeps a reverse WebSocket to clawdbot open at `url`, reconnecting every second
    /// while it is refused or lost.
    pub(super) fn keep_reverse_socket(&self, url: String) {
        let Self::OneBot { mock, self_id, .. } = self else {
            return;
        };
        let (mock, self_id) = (mock.clone(), *self_id);
        tokio::spawn(async move {
            loop {
                if mock.open_sockets() == 0
                    && let Err(reason) = mock.connect_reverse(&url, self_id).await
                {
                    eprintln!("clawdbot-mock: reverse WebSocket {url}: {reason}; retrying");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// A OneBot v11 message event (spec: event/message.md), group or private.
fn onebot_event(self_id: i64, injection: &Injection, sequence: u64) -> Value {
    let user: i64 = injection.user.parse().unwrap_or(20002);
    let message = json!([{"type": "text", "data": {"text": injection.text}}]);
    let mut event = json!({
        "time": clawdbot_core::now_ms() / 1000, "self_id": self_id, "post_type": "message",
        "message_id": sequence, "user_id": user, "message": message,
        "raw_message": injection.text, "font": 0,
        "sender": {"user_id": user, "nickname": "mock user"},
    });
    match injection.group.as_deref().map(str::parse::<i64>) {
        Some(Ok(group)) => {
            event["message_type"] = json!("group");
            event["sub_type"] = json!("normal");
            event["group_id"] = json!(group);
        }
        _ => {
            event["message_type"] = json!("private");
            event["sub_type"] = json!("friend");
        }
    }
    event
}

/// OneBot's `X-Signature: sha1=<hex HMAC-SHA1(secret, body)>` (spec: communication/http-post.md).
fn onebot_signature(secret: &str, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body.as_bytes());
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}
