//! The bus on Redis Streams (the cluster backend).
//!
//! One multiplexed connection (a `ConnectionManager`, which reconnects by itself) carries all
//! non-blocking commands of the process; each consumer gets its own, because `XREADGROUP BLOCK`
//! holds a connection for its whole wait. Every command has a timeout, so that a Redis outage
//! turns into an error quickly (ingress answers 503) rather than a hung request.

mod broadcast;
mod consumer;
mod dead_letters;
mod ledger;
mod scripts;
mod shared;
mod turns;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamInfoGroupsReply;

use crate::keys::Keys;
use crate::{Bus, BusError, Consumer, Entry, Publish, Published, ReplyLedger, Stream, StreamStats};
pub use consumer::RedisConsumer;
use scripts::Scripts;

/// How long one non-blocking command may take before it counts as a failure.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The bus on one Redis (or one Redis Cluster slot, thanks to the hash-tagged keys).
#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
}

pub(crate) fn redis_error(command: &'static str) -> impl FnOnce(redis::RedisError) -> BusError {
    move |source| match source.code() {
        // The server answered: keep its code, which the callers here match on to recover.
        Some(code) => BusError::Refused {
            command,
            code: code.to_owned(),
            detail: source.detail().unwrap_or_default().to_owned(),
        },
        None => BusError::Unavailable {
            command,
            source: Box::new(source),
        },
    }
}

/// Runs `future` with the command timeout.
pub(crate) async fn timed<T>(
    command: &'static str,
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, future).await {
        Ok(result) => result.map_err(redis_error(command)),
        Err(_) => Err(BusError::Timeout {
            command,
            timeout: COMMAND_TIMEOUT,
        }),
    }
}

fn manager_config(response_timeout: Option<Duration>) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(response_timeout)
        // Few, quick reconnect attempts: callers have their own retry (the platform's, the
        // worker's loop), and a long reconnect would only hold their requests.
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

impl RedisBus {
    /// Connects to `url` with keys under `prefix`.
    ///
    /// # Errors
    /// The URL is invalid or Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = redis::Client::open(url).map_err(redis_error("connect"))?;
        let conn = timed(
            "connect",
            ConnectionManager::new_with_config(
                client.clone(),
                manager_config(Some(COMMAND_TIMEOUT)),
            ),
        )
        .await?;
        let scripts = Scripts::new();
        Ok(Self {
            client,
            conn,
            keys: Keys::new(prefix),
            scripts,
        })
    }

    /// Returns the key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Returns a clone of the shared connection (for tests and admin commands).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn publish_pipelined(
        &self,
        items: &[Publish],
        dedupe_window: Duration,
        max_len: u64,
    ) -> Result<Vec<String>, BusError> {
        let stream = self.keys.stream(Stream::Inbound);
        let window_ms = dedupe_window.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        for item in items {
            let (dedupe, has_dedupe) = match &item.dedupe_key {
                Some(key) => (self.keys.dedupe(key), "1"),
                None => (String::new(), "0"),
            };
            let order_key = item.order_key.as_deref().unwrap_or_default();
            let turn = self.keys.turn(order_key);
            pipe.add_command(
                self.scripts
                    .publish
                    .evalsha(&[&stream, &dedupe, &turn])
                    .arg(window_ms)
                    .arg(max_len)
                    .arg(&item.payload)
                    .arg(&item.traceparent)
                    .arg(has_dedupe)
                    .arg(order_key)
                    .arg(crate::TURN_TTL.as_millis() as u64)
                    .clone(),
            );
        }
        scripts::run_pipeline(&self.scripts, &mut self.conn.clone(), "publish", &pipe).await
    }
}

#[async_trait::async_trait]
impl crate::Streams for RedisBus {
    async fn publish(
        &self,
        items: &[Publish],
        dedupe_window: Duration,
        max_len: u64,
    ) -> Result<Vec<Published>, BusError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let replies = self
            .publish_pipelined(items, dedupe_window, max_len)
            .await?;
        Ok(replies
            .into_iter()
            .map(|reply| match reply.as_str() {
                "dup" => Published::Duplicate,
                "full" => Published::Full,
                _ => Published::Appended(reply),
            })
            .collect())
    }

    async fn append(
        &self,
        stream: Stream,
        payload: &[u8],
        traceparent: &str,
    ) -> Result<String, BusError> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("XADD")
            .arg(self.keys.stream(stream))
            .arg("*")
            .arg("e")
            .arg(payload)
            .arg("tp")
            .arg(traceparent)
            .clone();
        timed("XADD", cmd.query_async(&mut conn)).await
    }

    async fn ensure_group(&self, stream: Stream, group: &str) -> Result<(), BusError> {
        consumer::create_group(&mut self.conn.clone(), &self.keys.stream(stream), group).await
    }

    async fn consumer(
        &self,
        stream: Stream,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn Consumer>, BusError> {
        // No response timeout on this connection: XREADGROUP BLOCK waits on purpose. Each call
        // gets its own deadline instead.
        let conn = timed(
            "connect",
            ConnectionManager::new_with_config(self.client.clone(), manager_config(None)),
        )
        .await?;
        Ok(Box::new(RedisConsumer::new(
            conn, &self.keys, stream, group, consumer,
        )))
    }

    async fn trim(&self, stream: Stream) -> Result<u64, BusError> {
        consumer::trim_acknowledged(&mut self.conn.clone(), &self.keys.stream(stream)).await
    }

    async fn stats(&self, stream: Stream) -> Result<StreamStats, BusError> {
        let key = self.keys.stream(stream);
        let mut conn = self.conn.clone();
        let length: u64 =
            timed("XLEN", redis::cmd("XLEN").arg(&key).query_async(&mut conn)).await?;
        let groups: StreamInfoGroupsReply = if length == 0 {
            StreamInfoGroupsReply::default()
        } else {
            timed(
                "XINFO GROUPS",
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&key)
                    .query_async(&mut conn),
            )
            .await
            .unwrap_or_default()
        };
        Ok(StreamStats {
            length,
            groups: groups
                .groups
                .into_iter()
                .map(|g| (g.name, g.pending as u64, g.lag.unwrap_or_default() as u64))
                .collect(),
        })
    }

    async fn ack(&self, stream: Stream, group: &str, ids: &[String]) -> Result<(), BusError> {
        consumer::ack(
            &mut self.conn.clone(),
            &self.keys.stream(stream),
            group,
            ids,
        )
        .await
    }

    async fn dead_letter(
        &self,
        stream: Stream,
        group: &str,
        entry: &Entry,
        reason: &str,
    ) -> Result<(), BusError> {
        let streams = (self.keys.stream(stream), self.keys.stream(Stream::Dead));
        consumer::dead_letter(
            &mut self.conn.clone(),
            (&streams.0, &streams.1),
            group,
            entry,
            reason,
        )
        .await?;
        crate::record_dead_letter(stream, group, entry, reason);
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::Broadcast for RedisBus {
    async fn broadcast(&self, channel: &str, payload: &[u8]) -> Result<u64, BusError> {
        let cmd = redis::cmd("PUBLISH")
            .arg(self.keys.broadcast(channel))
            .arg(payload)
            .clone();
        timed("PUBLISH", cmd.query_async(&mut self.conn.clone())).await
    }

    async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>, BusError> {
        broadcast::subscribe(self.client.clone(), self.keys.broadcast(channel)).await
    }
}

#[async_trait::async_trait]
impl crate::Presence for RedisBus {
    async fn heartbeat(&self, instance: &str, value: &str, ttl: Duration) -> Result<(), BusError> {
        let cmd = redis::cmd("SET")
            .arg(self.keys.heartbeat(instance))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .clone();
        let () = timed("SET", cmd.query_async(&mut self.conn.clone())).await?;
        Ok(())
    }

    async fn heartbeats(&self) -> Result<Vec<(String, String)>, BusError> {
        let mut conn = self.conn.clone();
        let prefix = self.keys.heartbeat("");
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let cmd = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(500)
                .clone();
            let (next, batch): (u64, Vec<String>) =
                timed("SCAN", cmd.query_async(&mut conn)).await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> =
            timed("MGET", redis::cmd("MGET").arg(&keys).query_async(&mut conn)).await?;
        Ok(keys
            .iter()
            .zip(values)
            .filter_map(|(key, value)| Some((key.strip_prefix(&prefix)?.to_string(), value?)))
            .collect())
    }

    async fn rate_limit(&self, key: &str, limit: u32, window: Duration) -> Result<bool, BusError> {
        let key = self.keys.rate(key);
        let cmd = self
            .scripts
            .rate_limit
            .evalsha(&[&key])
            .arg(window.as_millis().max(1) as u64)
            .clone();
        let used: u64 =
            scripts::run_script(&self.scripts, &mut self.conn.clone(), "rate limit", &cmd).await?;
        Ok(used <= u64::from(limit))
    }
}

#[async_trait::async_trait]
impl Bus for RedisBus {
    fn durable(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        let _pong: String = timed("PING", redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }

    fn ledger(&self) -> &dyn ReplyLedger {
        self
    }
}
