//! Connection-shaped inbounds (`clawdbot_platforms::Connection`: DingTalk Stream mode today):
//! one socket per account across the whole cluster. The ingress replicas elect its holder with
//! a lease in the shared state (renewed by the holder every third of its life; a holder that
//! cannot renew stops its socket) and a fencing token (a counter: every new holder's is higher,
//! and the logs say which held when). Written once here for every platform's connections.
//!
//! Handover: a holder shutting down releases the lease first and keeps its socket until another
//! replica has taken the lease and connected (or a few seconds passed), then closes it — the
//! new socket is up before the old one goes, and what both receive meanwhile is deduplicated by
//! message id on publish. Platforms redeliver what was not acknowledged (DingTalk does), so a
//! crash loses nothing either.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Bus, Published};
use clawdbot_core::Envelope;
use clawdbot_core::shared::SharedState;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::{self, MESSAGES_IN_TOTAL};
use clawdbot_platforms::{Connection, EnvelopeSink};

use crate::publisher::Publisher;

/// How long a shutting-down holder waits for another replica to connect.
const HANDOVER_WAIT: Duration = Duration::from_secs(4);
/// How long the old socket stays up once the new one is: frames already sent to it get acked.
const HANDOVER_GRACE: Duration = Duration::from_millis(300);

/// Publishes envelopes from connections like the webhook handler does (dedupe by message id).
pub(crate) struct PublisherSink {
    pub(crate) publisher: Publisher,
}

#[async_trait::async_trait]
impl EnvelopeSink for PublisherSink {
    async fn publish(&self, envelope: Envelope) -> Result<(), String> {
        let span = tracing::info_span!("ingress", platform = %envelope.platform, bot_id = %envelope.bot_id, message_id = %envelope.message_id);
        let trace = span.in_scope(telemetry::current_trace_context);
        let platform = envelope.platform.clone();
        let item = crate::publisher::item(envelope, &trace);
        match self.publisher.publish(item).await? {
            Published::Appended(_) => {
                metrics::counter!(MESSAGES_IN_TOTAL, "platform" => platform).increment(1);
                Ok(())
            }
            Published::Duplicate => Ok(()),
            Published::Full => Err("inbound stream is full".into()),
        }
    }
}

/// Starts a holder task for each connection; each runs until `shutdown`.
pub fn start_connections(
    connections: Vec<Arc<dyn Connection>>,
    bus: Arc<dyn Bus>,
    publisher: Publisher,
    holder: String,
    shutdown: &Shutdown,
) {
    let sink: Arc<dyn EnvelopeSink> = Arc::new(PublisherSink { publisher });
    // Only a bus other processes share needs a handover; the embedded one is this process.
    let handover = bus.durable();
    let shared: Arc<dyn SharedState> = bus;
    for connection in connections {
        let (scope, id) = connection.lease_scope();
        let holder = Holder {
            platform: connection.platform(),
            bot_id: connection.bot_id().to_string(),
            lease_key: format!("{scope}-lease:{id}"),
            connected_key: format!("{scope}-connected:{id}"),
            fence_key: format!("{scope}-fence:{id}"),
            ttl: connection.lease_ttl(),
            holder: holder.clone(),
            handover,
            shared: shared.clone(),
        };
        shutdown.spawn(holder.run(connection, sink.clone(), shutdown.clone()));
    }
}

struct Holder {
    /// What the logs name: the connection's platform and account.
    platform: &'static str,
    bot_id: String,
    lease_key: String,
    connected_key: String,
    fence_key: String,
    ttl: Duration,
    holder: String,
    handover: bool,
    shared: Arc<dyn SharedState>,
}

impl Holder {
    async fn run(
        self,
        connection: Arc<dyn Connection>,
        sink: Arc<dyn EnvelopeSink>,
        shutdown: Shutdown,
    ) {
        let poll = self.ttl / 3;
        while !shutdown.is_triggered() {
            match self
                .shared
                .put_value_if_absent(&self.lease_key, &self.holder, self.ttl)
                .await
            {
                Ok(true) => {
                    self.hold(connection.as_ref(), sink.as_ref(), &shutdown)
                        .await
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "cannot reach the shared state for the connection lease")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Holds the socket while holding the lease; returns when the lease is lost or handed over.
    async fn hold(
        &self,
        connection: &dyn Connection,
        sink: &dyn EnvelopeSink,
        shutdown: &Shutdown,
    ) {
        let (platform, bot_id) = (self.platform, self.bot_id.as_str());
        let fence = self
            .shared
            // Fences only need to grow while holders come and go; a year is plenty.
            .increment(&self.fence_key, 1, Duration::from_secs(365 * 24 * 3600))
            .await
            .unwrap_or_default();
        let me = format!("{}#{fence}", self.holder);
        tracing::info!(platform, bot_id, holder = %me, fence, "holding the connection");
        let shared = self.shared.clone();
        let (connected_key, me_connected, ttl) = (self.connected_key.clone(), me.clone(), self.ttl);
        let on_connected = move || {
            let (shared, key, value) =
                (shared.clone(), connected_key.clone(), me_connected.clone());
            tokio::spawn(async move {
                if let Err(error) = shared.put_value(&key, &value, ttl * 10).await {
                    tracing::warn!(error = %error, "cannot record the connection");
                }
            });
        };
        let stop = async {
            tokio::select! {
                () = self.until_lost() => tracing::warn!(platform, bot_id, holder = %me, "connection lease lost; closing the socket"),
                () = shutdown.cancelled() => self.hand_over(&me).await,
            }
        };
        connection.run(sink, &on_connected, Box::pin(stop)).await;
        tracing::info!(platform, bot_id, holder = %me, "connection closed");
    }

    /// Renews the lease every third of its life; returns once a renewal is refused or the
    /// shared state has been unreachable for a whole lease.
    async fn until_lost(&self) {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            match self
                .shared
                .renew_value_if(&self.lease_key, &self.holder, self.ttl)
                .await
            {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot renew the connection lease");
                    if last_renewed.elapsed() >= self.ttl {
                        return;
                    }
                }
            }
        }
    }

    /// Releases the lease and waits until another replica's socket is up (or a few seconds).
    async fn hand_over(&self, me: &str) {
        if let Err(error) = self
            .shared
            .delete_value_if(&self.lease_key, &self.holder)
            .await
        {
            tracing::warn!(error = %error, "cannot release the connection lease; it expires");
        }
        if !self.handover {
            return;
        }
        let deadline = tokio::time::Instant::now() + HANDOVER_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.shared.get_value(&self.connected_key).await {
                Ok(Some(connected)) if connected != me => {
                    tracing::info!(platform = self.platform, bot_id = %self.bot_id, from = %me, to = %connected, "connection handed over");
                    tokio::time::sleep(HANDOVER_GRACE).await;
                    return;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        tracing::warn!(platform = self.platform, bot_id = %self.bot_id, holder = %me, "no replica took over the connection in time; closing anyway");
    }
}
