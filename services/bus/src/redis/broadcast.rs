//! Broadcast subscriptions on Redis pub/sub: a dedicated connection per subscription, forwarded
//! into a bounded channel, reconnected after an outage until the receiver is dropped.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::{redis_error, timed};
use crate::BusError;

/// Messages a slow subscriber may have waiting before new ones are dropped.
const SUBSCRIBER_BUFFER: usize = 16_384;

/// Subscribes to `channel` (the full Redis channel name).
pub(crate) async fn subscribe(
    client: redis::Client,
    channel: String,
) -> Result<mpsc::Receiver<Vec<u8>>, BusError> {
    // The first connection is made here, so that an unreachable Redis is the caller's error.
    let first = connect(&client, &channel).await?;
    let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
    tokio::spawn(async move {
        let mut pubsub = Some(first);
        loop {
            if let Some(connection) = pubsub.take() {
                let mut messages = connection.into_on_message();
                loop {
                    tokio::select! {
                        () = tx.closed() => return,
                        message = messages.next() => match message {
                            Some(message) => {
                                // A full buffer drops the message: live views only.
                                let _dropped = tx.try_send(message.get_payload_bytes().to_vec());
                            }
                            None => break,
                        },
                    }
                }
                tracing::warn!(channel, "broadcast subscription lost; reconnecting");
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            pubsub = connect(&client, &channel).await.ok();
        }
    });
    Ok(rx)
}

async fn connect(client: &redis::Client, channel: &str) -> Result<redis::aio::PubSub, BusError> {
    let mut pubsub = timed("SUBSCRIBE", client.get_async_pubsub()).await?;
    pubsub
        .subscribe(channel)
        .await
        .map_err(redis_error("SUBSCRIBE"))?;
    Ok(pubsub)
}
