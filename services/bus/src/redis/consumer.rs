//! A consumer in a consumer group: read, reclaim, ack, dead-letter; and the safe trim.

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply, StreamReadReply,
};

use super::{COMMAND_TIMEOUT, redis_error, timed};
use crate::keys::Keys;
use crate::memory::KEEP_WITHOUT_READERS;
use crate::{BusError, Consumer, Entry, Stream};

/// A consumer with its own connection.
pub struct RedisConsumer {
    conn: ConnectionManager,
    stream: String,
    group: String,
    name: String,
    /// Where the next XAUTOCLAIM scan starts; XAUTOCLAIM returns it, and `0-0` means the scan
    /// wrapped around.
    reclaim_cursor: String,
}

impl RedisConsumer {
    pub(crate) fn new(
        conn: ConnectionManager,
        keys: &Keys,
        stream: Stream,
        group: &str,
        name: &str,
    ) -> Self {
        Self {
            conn,
            stream: keys.stream(stream),
            group: group.to_string(),
            name: name.to_string(),
            reclaim_cursor: "0-0".to_string(),
        }
    }

    async fn read_once(&mut self, count: usize, block: Duration) -> Result<Vec<Entry>, BusError> {
        let cmd = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .clone();
        // The blocking wait plus the usual command allowance.
        let deadline = block + COMMAND_TIMEOUT;
        let reply: Option<StreamReadReply> =
            match tokio::time::timeout(deadline, cmd.query_async(&mut self.conn)).await {
                Ok(result) => result.map_err(redis_error("XREADGROUP"))?,
                Err(_) => {
                    return Err(BusError::Timeout {
                        command: "XREADGROUP",
                        timeout: deadline,
                    });
                }
            };
        let ids: Vec<StreamId> = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        // A new read is the first delivery.
        Ok(ids.into_iter().map(|id| to_entry(id, 1)).collect())
    }
}

#[async_trait::async_trait]
impl Consumer for RedisConsumer {
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Entry>, BusError> {
        match self.read_once(count, block).await {
            Err(error) if error.is_refusal("NOGROUP") => {
                // The group vanished (Redis restarted empty): recreate it and read again.
                create_group(&mut self.conn, &self.stream, &self.group).await?;
                self.read_once(count, block).await
            }
            other => other,
        }
    }

    async fn reclaim(&mut self, min_idle: Duration, count: usize) -> Result<Vec<Entry>, BusError> {
        let cmd = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.name)
            .arg(min_idle.as_millis() as u64)
            .arg(&self.reclaim_cursor)
            .arg("COUNT")
            .arg(count)
            .clone();
        let reply: StreamAutoClaimReply =
            match timed("XAUTOCLAIM", cmd.query_async(&mut self.conn)).await {
                Err(error) if error.is_refusal("NOGROUP") => {
                    return Ok(Vec::new());
                }
                other => other?,
            };
        self.reclaim_cursor = reply.next_stream_id;
        if reply.claimed.is_empty() {
            return Ok(Vec::new());
        }
        let deliveries = self.delivery_counts(&reply.claimed).await?;
        Ok(reply
            .claimed
            .into_iter()
            .map(|id| {
                let count = deliveries.get(&id.id).copied().unwrap_or(1);
                to_entry(id, count)
            })
            .collect())
    }

    async fn keep(&mut self, ids: &[String]) -> Result<(), BusError> {
        if ids.is_empty() {
            return Ok(());
        }
        // XCLAIM with JUSTID resets the idle time without counting a delivery.
        let cmd = redis::cmd("XCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&self.name)
            .arg(0)
            .arg(ids)
            .arg("JUSTID")
            .clone();
        let _kept: Vec<String> = timed("XCLAIM", cmd.query_async(&mut self.conn)).await?;
        Ok(())
    }
}

impl RedisConsumer {
    /// Returns the delivery count of each claimed entry (XAUTOCLAIM does not report it).
    async fn delivery_counts(
        &mut self,
        claimed: &[StreamId],
    ) -> Result<HashMap<String, u64>, BusError> {
        let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else {
            return Ok(HashMap::new());
        };
        let cmd = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(claimed.len())
            .arg(&self.name)
            .clone();
        let reply: StreamPendingCountReply =
            timed("XPENDING", cmd.query_async(&mut self.conn)).await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|p| (p.id, p.times_delivered as u64))
            .collect())
    }
}

fn to_entry(id: StreamId, deliveries: u64) -> Entry {
    let bytes = |field: &str| match id.map.get(field) {
        Some(Value::BulkString(bytes)) => bytes.clone(),
        Some(Value::SimpleString(text)) => text.clone().into_bytes(),
        _ => Vec::new(),
    };
    let turn = String::from_utf8(bytes("tk"))
        .ok()
        .filter(|key| !key.is_empty());
    let seq = String::from_utf8(bytes("ts"))
        .ok()
        .and_then(|seq| seq.parse().ok());
    Entry {
        payload: bytes("e"),
        traceparent: String::from_utf8(bytes("tp")).unwrap_or_default(),
        id: id.id,
        deliveries,
        turn: turn.zip(seq).map(|(key, seq)| crate::Turn { key, seq }),
    }
}

/// Acknowledges `ids` in `group`.
pub(crate) async fn ack(
    conn: &mut ConnectionManager,
    stream: &str,
    group: &str,
    ids: &[String],
) -> Result<(), BusError> {
    if ids.is_empty() {
        return Ok(());
    }
    let cmd = redis::cmd("XACK").arg(stream).arg(group).arg(ids).clone();
    let _acked: u64 = timed("XACK", cmd.query_async(conn)).await?;
    Ok(())
}

/// Appends `entry` to `dead_stream` with its reason and origin, and acks it, in one MULTI.
pub(crate) async fn dead_letter(
    conn: &mut ConnectionManager,
    (stream, dead_stream): (&str, &str),
    group: &str,
    entry: &Entry,
    reason: &str,
) -> Result<(), BusError> {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("XADD")
        .arg(dead_stream)
        .arg("*")
        .arg("e")
        .arg(&entry.payload)
        .arg("tp")
        .arg(&entry.traceparent)
        .arg("reason")
        .arg(reason)
        .arg("source")
        .arg(stream)
        .arg("source_id")
        .arg(&entry.id)
        .arg("group")
        .arg(group)
        .arg("deliveries")
        .arg(entry.deliveries)
        .ignore()
        .cmd("XACK")
        .arg(stream)
        .arg(group)
        .arg(&entry.id)
        .ignore();
    let () = timed("dead letter", pipe.query_async(conn)).await?;
    Ok(())
}

/// Creates `group` on `stream` starting at the beginning, creating the stream if needed.
pub(crate) async fn create_group(
    conn: &mut ConnectionManager,
    stream: &str,
    group: &str,
) -> Result<(), BusError> {
    let cmd = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .clone();
    match timed::<()>("XGROUP CREATE", cmd.query_async(conn)).await {
        Err(error) if error.is_refusal("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Trims `stream` below the oldest entry that some group still needs: its oldest pending entry,
/// or the first it has not read yet. A stream without groups is left alone.
pub(crate) async fn trim_acknowledged(
    conn: &mut ConnectionManager,
    stream: &str,
) -> Result<u64, BusError> {
    let groups: StreamInfoGroupsReply = match timed(
        "XINFO GROUPS",
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn),
    )
    .await
    {
        Ok(groups) => groups,
        // No such stream yet: nothing to trim.
        Err(error) if error.is_refusal("ERR") => {
            return Ok(0);
        }
        Err(error) => return Err(error),
    };
    if groups.groups.is_empty() {
        // Nobody reads it (outbound records with history off, dead letters): keep the newest.
        let cmd = redis::cmd("XTRIM")
            .arg(stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(KEEP_WITHOUT_READERS)
            .clone();
        return timed("XTRIM", cmd.query_async(conn)).await;
    }
    let mut min_needed: Option<(u64, u64)> = None;
    for group in &groups.groups {
        let needed = if group.pending > 0 {
            let cmd = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&group.name)
                .arg("-")
                .arg("+")
                .arg(1)
                .clone();
            let reply: StreamPendingCountReply = timed("XPENDING", cmd.query_async(conn)).await?;
            match reply.ids.first().and_then(|p| parse_id(&p.id)) {
                Some(id) => id,
                None => return Ok(0),
            }
        } else {
            match parse_id(&group.last_delivered_id) {
                Some((ms, seq)) => (ms, seq.saturating_add(1)),
                None => return Ok(0),
            }
        };
        min_needed = Some(min_needed.map_or(needed, |current| current.min(needed)));
    }
    let Some((ms, seq)) = min_needed else {
        return Ok(0);
    };
    // Exact MINID (not `~`): runs every few seconds, so precision costs little, and it makes the
    // "never below what a group needs" rule checkable.
    let cmd = redis::cmd("XTRIM")
        .arg(stream)
        .arg("MINID")
        .arg(format!("{ms}-{seq}"))
        .clone();
    timed("XTRIM", cmd.query_async(conn)).await
}

fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}
