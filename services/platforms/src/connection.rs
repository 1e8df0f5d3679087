//! The contract of a connection-shaped inbound: a long-lived socket a platform holds open to us
//! (DingTalk Stream today; the OneBot WebSockets and the WeCom AI-bot connection next), as
//! opposed to a webhook the ingress serves.
//!
//! Where the platform allows one socket per account, the ingress replicas elect its holder
//! through a lease in the shared state (with a fencing token), and hand it over on shutdown
//! (the new socket up before the old one closes). That logic is written once, in the ingress
//! (`clawdbot_ingress::connections`); a platform only says what to hold and how.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::EnvelopeSink;

/// When a [`Connection::run`] must give up its socket: the lease was lost, or the process is
/// shutting down and another replica has taken over.
pub type Stop<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A long-lived socket of one account.
#[async_trait::async_trait]
pub trait Connection: Send + Sync {
    /// The platform name (its const `NAME`).
    fn platform(&self) -> &'static str;
    /// The account this socket serves.
    fn bot_id(&self) -> &str;
    /// Names the socket across the cluster: the holder's lease, fencing counter and handover
    /// record are kept under `{scope}-lease:{id}`, `{scope}-fence:{id}` and
    /// `{scope}-connected:{id}` in the shared state.
    fn lease_scope(&self) -> (&'static str, String);
    /// How long a holder's lease lasts; it is renewed every third of it.
    fn lease_ttl(&self) -> Duration;
    /// Holds the socket, reconnecting as needed, until `stop` completes; publishes what arrives
    /// to `sink` and calls `on_connected` each time a socket is up.
    async fn run(
        &self,
        sink: &dyn EnvelopeSink,
        on_connected: &(dyn Fn() + Send + Sync),
        stop: Stop<'_>,
    );
}
