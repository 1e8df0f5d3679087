//! Stream mode: the robot connects out to DingTalk's gateway over WebSocket (no public URL).
//!
//! `POST {api_base}/v1.0/gateway/connections/open` with the app's client id and secret and the
//! bot-message subscription gives an endpoint and a single-use ticket; the socket then carries
//! JSON frames whose `data` is a JSON *string*. Every frame is acked on the same socket with its
//! `messageId` (DingTalk redelivers what is not acked): pings with their data, bot messages once
//! their envelope is in the stream, malformed ones with code 400 (logged; the socket is kept).
//! A message that cannot be published (bus down) is left unacked, so DingTalk sends it again.
//!
//! A socket that stays silent — no frame and no ping for `stream.silence_secs` — is taken for
//! dead and replaced; so is one the gateway closes or tells to `disconnect`. Reconnects back off
//! from `backoff_min_ms` to `backoff_max_ms` with jitter, and always open a new ticket.
//!
//! Which process holds the socket is not decided here: the ingress runs [`StreamClient::run`]
//! only while it holds the app's lease.

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{DingTalkConfig, NAME, message};
use crate::EnvelopeSink;

/// The topic of robot messages.
pub const BOT_TOPIC: &str = "/v1.0/im/bot/messages/get";

/// Why a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Asked to stop.
    Stopped,
    /// Nothing arrived for `silence_secs`.
    Silent,
    /// The gateway closed the socket or asked for a reconnect.
    Disconnected(String),
    /// Opening the connection failed.
    Failed(String),
}

/// The Stream-mode client of one app.
pub struct StreamClient {
    config: DingTalkConfig,
    http: reqwest::Client,
}

impl StreamClient {
    /// Returns the client of `config`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: DingTalkConfig) -> Result<Self, String> {
        let http = clawdbot_core::tls::http_client_builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|error| format!("http client: {error}"))?;
        Ok(Self { config, http })
    }

    /// Keeps a socket open until `stop` completes, reconnecting as needed; `on_connected` runs
    /// each time a socket is up.
    pub async fn run(
        &self,
        sink: &dyn EnvelopeSink,
        on_connected: &(dyn Fn() + Send + Sync),
        stop: impl Future<Output = ()>,
    ) {
        let settings = &self.config.stream;
        let mut backoff = Duration::from_millis(settings.backoff_min_ms);
        tokio::pin!(stop);
        loop {
            let started = tokio::time::Instant::now();
            let end = tokio::select! {
                end = self.session(sink, on_connected) => end,
                () = &mut stop => SessionEnd::Stopped,
            };
            if end == SessionEnd::Stopped {
                return;
            }
            // A session that lived a while was healthy: start the back-off over.
            if started.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(settings.backoff_min_ms);
            }
            let jitter = Duration::from_millis(
                (uuid::Uuid::new_v4().as_u128() % (backoff.as_millis().max(1) / 2 + 1)) as u64,
            );
            tracing::warn!(platform = NAME, app = %self.config.id, reason = ?end, retry_in_ms = (backoff + jitter).as_millis() as u64, "dingtalk stream connection ended; reconnecting");
            tokio::select! {
                () = tokio::time::sleep(backoff + jitter) => {}
                () = &mut stop => return,
            }
            backoff = (backoff * 2).min(Duration::from_millis(settings.backoff_max_ms));
        }
    }

    /// Asks the gateway for an endpoint and ticket; returns the socket address.
    async fn open(&self) -> Result<String, String> {
        let url = format!(
            "{}/v1.0/gateway/connections/open",
            self.config.api_base.trim_end_matches('/')
        );
        let body = json!({
            "clientId": self.config.app_key,
            "clientSecret": self.config.app_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_TOPIC}],
            "ua": concat!("clawdbot/", env!("CARGO_PKG_VERSION")),
            "localIp": "",
        });
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|error| format!("connections/open: {}", error.without_url()))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("connections/open: http {status}: {answer}"));
        }
        let (Some(endpoint), Some(ticket)) =
            (answer["endpoint"].as_str(), answer["ticket"].as_str())
        else {
            return Err(format!(
                "connections/open answered without endpoint and ticket: {answer}"
            ));
        };
        Ok(format!(
            "{endpoint}?ticket={}",
            crate::percent_encode(ticket)
        ))
    }

    /// One socket, from open to its end.
    async fn session(
        &self,
        sink: &dyn EnvelopeSink,
        on_connected: &(dyn Fn() + Send + Sync),
    ) -> SessionEnd {
        let url = match self.open().await {
            Ok(url) => url,
            Err(reason) => return SessionEnd::Failed(reason),
        };
        let (socket, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok(connected) => connected,
            Err(error) => return SessionEnd::Failed(format!("connect: {error}")),
        };
        tracing::info!(platform = NAME, app = %self.config.id, "dingtalk stream connected");
        on_connected();
        let (mut write, mut read) = socket.split();
        let silence = Duration::from_secs_f64(self.config.stream.silence_secs);
        loop {
            let frame = match tokio::time::timeout(silence, read.next()).await {
                Err(_) => return SessionEnd::Silent,
                Ok(None) => return SessionEnd::Disconnected("socket closed".into()),
                Ok(Some(Err(error))) => return SessionEnd::Disconnected(error.to_string()),
                Ok(Some(Ok(frame))) => frame,
            };
            let reply = match frame {
                Message::Text(text) => match self.handle(text.as_str(), sink).await {
                    Handled::Ack(ack) => Some(Message::Text(ack.to_string().into())),
                    Handled::NoAck => None,
                    Handled::Disconnect(ack) => {
                        // Acked before leaving, as the official SDKs do, so the gateway knows
                        // the notice arrived and does not hold it for the next socket.
                        let _acked = write.send(Message::Text(ack.to_string().into())).await;
                        return SessionEnd::Disconnected("the gateway asked to reconnect".into());
                    }
                },
                Message::Ping(payload) => Some(Message::Pong(payload)),
                Message::Close(_) => {
                    return SessionEnd::Disconnected("closed by the gateway".into());
                }
                _ => None,
            };
            if let Some(reply) = reply
                && let Err(error) = write.send(reply).await
            {
                return SessionEnd::Disconnected(format!("write: {error}"));
            }
        }
    }

    async fn handle(&self, text: &str, sink: &dyn EnvelopeSink) -> Handled {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            tracing::warn!(platform = NAME, "stream frame is not JSON; ignored");
            return Handled::NoAck;
        };
        let message_id = frame["headers"]["messageId"].as_str().unwrap_or_default();
        let topic = frame["headers"]["topic"].as_str().unwrap_or_default();
        let data = frame["data"].as_str().unwrap_or_default();
        match (frame["type"].as_str().unwrap_or_default(), topic) {
            ("SYSTEM", "ping") => Handled::Ack(ack(message_id, 200, "OK", data)),
            // DingTalk's Stream protocol: `disconnect` announces the server will close this
            // socket (a deploy, a rebalance); the client acks it and opens a new connection
            // (docs/protocols/dingtalk.md, Stream mode).
            ("SYSTEM", "disconnect") => Handled::Disconnect(ack(message_id, 200, "OK", data)),
            ("CALLBACK", BOT_TOPIC) => match message::decode(&self.config, data.as_bytes()) {
                Ok(envelope) => match sink.publish(envelope).await {
                    Ok(()) => Handled::Ack(ack(message_id, 200, "OK", r#"{"response":null}"#)),
                    Err(reason) => {
                        // Not acked: DingTalk delivers it again, to this socket or the next.
                        tracing::error!(platform = NAME, %reason, "cannot publish a stream message; left for redelivery");
                        Handled::NoAck
                    }
                },
                Err(error) => {
                    tracing::warn!(platform = NAME, message_id, reason = %error, "malformed stream frame: acked as failed");
                    Handled::Ack(ack(message_id, 400, &error.to_string(), "{}"))
                }
            },
            // Events and topics not subscribed to: acknowledged, nothing to do.
            _ => Handled::Ack(ack(message_id, 200, "OK", "{}")),
        }
    }
}

enum Handled {
    Ack(Value),
    NoAck,
    /// Ack this, then leave and reconnect.
    Disconnect(Value),
}

/// The ack frame: the same messageId, a code, and `data` as a JSON string.
fn ack(message_id: &str, code: u16, message: &str, data: &str) -> Value {
    json!({
        "code": code,
        "headers": {"messageId": message_id, "contentType": "application/json"},
        "message": message,
        "data": data,
    })
}

/// One holder per app across the cluster (DingTalk delivers each message to one of an app's
/// sockets, so a second socket would only split the traffic between replicas unpredictably).
#[async_trait::async_trait]
impl crate::Connection for StreamClient {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        &self.config.id
    }

    fn lease_scope(&self) -> (&'static str, String) {
        ("dingtalk:stream", self.config.app_key.clone())
    }

    fn lease_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.config.stream.lease_secs)
    }

    async fn run(
        &self,
        sink: &dyn EnvelopeSink,
        on_connected: &(dyn Fn() + Send + Sync),
        stop: crate::Stop<'_>,
    ) {
        StreamClient::run(self, sink, on_connected, stop).await;
    }
}
