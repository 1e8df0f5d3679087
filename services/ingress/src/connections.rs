//! Connection-shaped inbounds (DingTalk Stream mode): one socket per app across the whole
//! cluster. The ingress replicas elect its holder with a lease in the shared state (renewed by
//! the holder every third of its life; a holder that cannot renew stops its socket) and a
//! fencing token (a counter: every new holder's is higher, and the logs say which held when).
//!
//! Handover: a holder shutting down releases the lease first and keeps its socket until another
//! replica has taken the lease and connected (or a few seconds passed), then closes it — the
//! new socket is up before the old one goes, and what both receive meanwhile is deduplicated by
//! msgId on publish. DingTalk redelivers anything not acked, so a crash loses nothing either.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::{Bus, Published};
use clawdbot_core::Envelope;
use clawdbot_core::shared::SharedState;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::{self, MESSAGES_IN_TOTAL};
use clawdbot_platforms::EnvelopeSink;
use clawdbot_platforms::dingtalk::{DingTalkConfig, stream::StreamClient};

use crate::publisher::Publisher;

/// How long a shutting-down holder waits for another replica to connect.
const HANDOVER_WAIT: Duration = Duration::from_secs(4);
/// How long the old socket stays up once the new one is: frames already sent to it get acked.
const HANDOVER_GRACE: Duration = Duration::from_millis(300);

/// Publishes envelopes from connections like the webhook handler does (dedupe by message id).
struct PublisherSink {
    publisher: Publisher,
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

/// Starts a holder task for each Stream-mode DingTalk app; each runs until `shutdown`.
pub fn start_dingtalk_streams(
    apps: Vec<DingTalkConfig>,
    bus: Arc<dyn Bus>,
    publisher: Publisher,
    holder: String,
    shutdown: &Shutdown,
) {
    let sink: Arc<dyn EnvelopeSink> = Arc::new(PublisherSink { publisher });
    // Only a bus other processes share needs a handover; the embedded one is this process.
    let handover = bus.durable();
    let shared: Arc<dyn SharedState> = bus;
    for app in apps {
        let holder = Holder {
            lease_key: format!("dingtalk:stream-lease:{}", app.app_key),
            connected_key: format!("dingtalk:stream-connected:{}", app.app_key),
            fence_key: format!("dingtalk:stream-fence:{}", app.app_key),
            ttl: Duration::from_secs_f64(app.stream.lease_secs),
            holder: holder.clone(),
            handover,
            shared: shared.clone(),
        };
        let client = match StreamClient::new(app.clone()) {
            Ok(client) => client,
            Err(reason) => {
                tracing::error!(app = %app.id, %reason, "dingtalk stream not started");
                continue;
            }
        };
        shutdown.spawn(holder.run(client, sink.clone(), shutdown.clone()));
    }
}

struct Holder {
    lease_key: String,
    connected_key: String,
    fence_key: String,
    ttl: Duration,
    holder: String,
    handover: bool,
    shared: Arc<dyn SharedState>,
}

impl Holder {
    async fn run(self, client: StreamClient, sink: Arc<dyn EnvelopeSink>, shutdown: Shutdown) {
        let poll = self.ttl / 3;
        while !shutdown.is_triggered() {
            match self
                .shared
                .put_value_if_absent(&self.lease_key, &self.holder, self.ttl)
                .await
            {
                Ok(true) => self.hold(&client, sink.as_ref(), &shutdown).await,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "cannot reach the shared state for the stream lease")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Holds the socket while holding the lease; returns when the lease is lost or handed over.
    async fn hold(&self, client: &StreamClient, sink: &dyn EnvelopeSink, shutdown: &Shutdown) {
        let fence = self
            .shared
            // Fences only need to grow while holders come and go; a year is plenty.
            .increment(&self.fence_key, 1, Duration::from_secs(365 * 24 * 3600))
            .await
            .unwrap_or_default();
        let me = format!("{}#{fence}", self.holder);
        tracing::info!(holder = %me, fence, "holding the dingtalk stream connection");
        let shared = self.shared.clone();
        let (connected_key, me_connected, ttl) = (self.connected_key.clone(), me.clone(), self.ttl);
        let on_connected = move || {
            let (shared, key, value) =
                (shared.clone(), connected_key.clone(), me_connected.clone());
            tokio::spawn(async move {
                if let Err(error) = shared.put_value(&key, &value, ttl * 10).await {
                    tracing::warn!(error = %error, "cannot record the stream connection");
                }
            });
        };
        let stop = async {
            tokio::select! {
                () = self.until_lost() => tracing::warn!(holder = %me, "stream lease lost; closing the socket"),
                () = shutdown.cancelled() => self.hand_over(&me).await,
            }
        };
        client.run(sink, &on_connected, stop).await;
        tracing::info!(holder = %me, "dingtalk stream connection closed");
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
                    tracing::warn!(error = %error, "cannot renew the stream lease");
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
            tracing::warn!(error = %error, "cannot release the stream lease; it expires");
        }
        if !self.handover {
            return;
        }
        let deadline = tokio::time::Instant::now() + HANDOVER_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.shared.get_value(&self.connected_key).await {
                Ok(Some(connected)) if connected != me => {
                    tracing::info!(from = %me, to = %connected, "dingtalk stream handed over");
                    tokio::time::sleep(HANDOVER_GRACE).await;
                    return;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        tracing::warn!(holder = %me, "no replica took over the dingtalk stream in time; closing anyway");
    }
}
