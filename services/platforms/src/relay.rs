//! Messages between the processes of a cluster, for platforms whose replies must leave through
//! a socket one process holds (a OneBot WebSocket): egress says "send this" on a channel the
//! holder listens to, and the holder answers on the caller's own channel. The binary wires it
//! to the bus's broadcast (Redis pub/sub in a cluster, in-process channels in `clawdbot up`).
//! Nothing is stored: a message no one listens to is gone, which is why `send` says how many
//! listeners it reached.

use tokio::sync::mpsc;

#[async_trait::async_trait]
pub trait Relay: Send + Sync {
    /// Sends `payload` to every listener of `channel`; returns how many it reached.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn send(&self, channel: &str, payload: &[u8]) -> Result<u64, String>;

    /// Listens to `channel` until the receiver is dropped.
    ///
    /// # Errors
    /// The bus is unreachable.
    async fn listen(&self, channel: &str) -> Result<mpsc::Receiver<Vec<u8>>, String>;
}
