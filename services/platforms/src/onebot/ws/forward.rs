//! Forward WebSocket: clawdbot connects out to the implementation's WebSocket server
//! (`ws_url`, `Authorization: Bearer <access_token>`), one holder per account across the
//! ingress replicas (the [`crate::Connection`] lease), reconnecting with back-off and jitter.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::session::{Role, serve};
use crate::onebot::{NAME, OneBotConfig, OneBotInbound};
use crate::relay::Relay;
use crate::socket::SocketIo;
use crate::{EnvelopeSink, Stop};

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// Frames buffered each way between the socket and the session.
const FRAMES: usize = 256;

/// The forward socket of one account.
pub struct ForwardSocket {
    config: OneBotConfig,
    inbound: OneBotInbound,
    relay: Option<Arc<dyn Relay>>,
}

impl ForwardSocket {
    pub fn new(config: OneBotConfig, relay: Option<Arc<dyn Relay>>) -> Self {
        Self {
            inbound: OneBotInbound::new(config.clone()),
            config,
            relay,
        }
    }

    /// One socket, from connect to its end; returns why it ended.
    async fn session(
        &self,
        sink: &dyn EnvelopeSink,
        on_connected: &(dyn Fn() + Send + Sync),
        stop: &mut Stop<'_>,
    ) -> Result<String, String> {
        let url = self.config.ws_url.clone().unwrap_or_default();
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| format!("`ws_url` {url}: {error}"))?;
        if let Some(token) = &self.config.access_token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| "`access_token` is not a valid header value".to_string())?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|error| format!("connect {url}: {error}"))?;
        tracing::info!(platform = NAME, account = %self.config.id, %url, "onebot websocket connected");
        on_connected();
        let io = pump(socket);
        Ok(serve(
            io,
            Role::Universal,
            &self.inbound,
            sink,
            self.relay.as_deref(),
            stop,
        )
        .await)
    }
}

#[async_trait::async_trait]
impl crate::Connection for ForwardSocket {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn bot_id(&self) -> &str {
        &self.config.id
    }

    fn lease_scope(&self) -> (&'static str, String) {
        ("onebot:ws", self.config.id.clone())
    }

    fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.config.ws_lease_secs)
    }

    async fn run(
        &self,
        sink: &dyn EnvelopeSink,
        on_connected: &(dyn Fn() + Send + Sync),
        stop: Stop<'_>,
    ) {
        let mut stop = stop;
        let mut backoff = BACKOFF_MIN;
        loop {
            let started = tokio::time::Instant::now();
            let ended = self.session(sink, on_connected, &mut stop).await;
            if matches!(&ended, Ok(reason) if reason == "stopped") {
                return;
            }
            // A socket that lived a while was healthy: start the back-off over.
            if started.elapsed() > Duration::from_secs(30) {
                backoff = BACKOFF_MIN;
            }
            let jitter = Duration::from_millis(
                (uuid::Uuid::new_v4().as_u128() % (backoff.as_millis() / 2 + 1)) as u64,
            );
            let reason = ended.unwrap_or_else(|error| error);
            tracing::warn!(platform = NAME, account = %self.config.id, %reason, retry_in_ms = (backoff + jitter).as_millis() as u64, "onebot websocket ended; reconnecting");
            tokio::select! {
                () = tokio::time::sleep(backoff + jitter) => {}
                () = &mut stop => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// Moves text frames between a client socket and a [`SocketIo`]; pings are answered, and the
/// pump ends (closing both channels) with the socket or when the session drops its side.
pub fn pump<S>(socket: tokio_tungstenite::WebSocketStream<S>) -> SocketIo
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (incoming_tx, incoming) = mpsc::channel::<String>(FRAMES);
    let (outgoing, mut outgoing_rx) = mpsc::channel::<String>(FRAMES);
    tokio::spawn(async move {
        let mut socket = socket;
        loop {
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if incoming_tx.send(text.to_string()).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(payload))) => {
                        if socket.send(Message::Pong(payload)).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                frame = outgoing_rx.recv() => match frame {
                    Some(text) => {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _closed = socket.close(None).await;
                        break;
                    }
                },
            }
        }
    });
    SocketIo { incoming, outgoing }
}
