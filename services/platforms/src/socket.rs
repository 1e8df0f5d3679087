//! Sockets a platform's side opens to the ingress (OneBot's reverse WebSocket), as opposed to
//! webhooks (one request per event) and [`crate::Connection`]s (sockets we open). The ingress
//! serves the upgrade at `/clawdbot/{platform}[/{id}]/ws[/{role}]` and hands the frames over;
//! the platform checks the handshake and serves the socket.

use tokio::sync::mpsc;

use crate::{EnvelopeSink, InboundError, Stop};

/// Text frames in and out of one socket; the transport (a server's or a client's WebSocket)
/// pumps its frames through these.
pub struct SocketIo {
    pub incoming: mpsc::Receiver<String>,
    pub outgoing: mpsc::Sender<String>,
}

/// The platform's half of an accepted socket.
#[async_trait::async_trait]
pub trait SocketEndpoint: Send + Sync {
    /// Checks the handshake's headers and query (the token) and returns what the socket carries
    /// (a label [`SocketEndpoint::serve`] understands); `role` is the path's last segment, if any.
    ///
    /// # Errors
    /// A missing or wrong token (401 / 403), an unknown role (400).
    fn accept(
        &self,
        headers: &http::HeaderMap,
        query: Option<&str>,
        role: Option<&str>,
    ) -> Result<String, InboundError>;

    /// Serves the socket until it closes or `stop` completes; returns why it ended.
    async fn serve(
        &self,
        io: SocketIo,
        role: &str,
        sink: &dyn EnvelopeSink,
        stop: Stop<'_>,
    ) -> String;
}
