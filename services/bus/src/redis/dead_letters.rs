//! Dead letters on Redis: the `dead` stream, read by the operator's commands.

use std::time::Duration;

use super::scripts::run_pipeline;
use super::{RedisBus, timed};
use crate::{BusError, DeadLetter, DeadLetters, Replayed, Stream};

#[async_trait::async_trait]
impl DeadLetters for RedisBus {
    async fn dead_letters(&self, after: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let start = if after.is_empty() {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let cmd = redis::cmd("XRANGE")
            .arg(self.keys.stream(Stream::Dead))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .clone();
        let reply: redis::streams::StreamRangeReply =
            timed("XRANGE", cmd.query_async(&mut self.conn.clone())).await?;
        Ok(reply.ids.into_iter().map(to_dead_letter).collect())
    }

    async fn dead_letter_by_id(&self, id: &str) -> Result<Option<DeadLetter>, BusError> {
        let cmd = redis::cmd("XRANGE")
            .arg(self.keys.stream(Stream::Dead))
            .arg(id)
            .arg(id)
            .clone();
        let reply: redis::streams::StreamRangeReply =
            match timed("XRANGE", cmd.query_async(&mut self.conn.clone())).await {
                // Not a stream id at all: there is no such dead letter.
                Err(error) if error.is_refusal("ERR") => {
                    return Ok(None);
                }
                other => other?,
            };
        Ok(reply.ids.into_iter().next().map(to_dead_letter))
    }

    async fn replay(&self, id: &str, dedupe_window: Duration) -> Result<Replayed, BusError> {
        if crate::parse_stream_id(id).is_none() {
            return Ok(Replayed::Missing);
        }
        let keys = [
            self.keys.stream(Stream::Dead),
            self.keys.stream(Stream::Inbound),
            self.keys.dedupe(&format!("replay:{id}")),
        ];
        let mut pipe = redis::pipe();
        pipe.add_command(
            self.scripts
                .replay_dead
                .evalsha(&[keys[0].as_str(), &keys[1], &keys[2]])
                .arg(id)
                .arg(dedupe_window.as_millis().max(1) as u64)
                .clone(),
        );
        let (reply,): (String,) =
            run_pipeline(&self.scripts, &mut self.conn.clone(), "replay", &pipe).await?;
        Ok(match reply.as_str() {
            "missing" => Replayed::Missing,
            "dup" => Replayed::AlreadyReplayed,
            _ => Replayed::Appended(reply),
        })
    }

    async fn purge_dead_letters(&self, older_than_ms: u64) -> Result<u64, BusError> {
        let cmd = redis::cmd("XTRIM")
            .arg(self.keys.stream(Stream::Dead))
            .arg("MINID")
            .arg(format!("{older_than_ms}-0"))
            .clone();
        timed("XTRIM", cmd.query_async(&mut self.conn.clone())).await
    }
}

fn to_dead_letter(id: redis::streams::StreamId) -> DeadLetter {
    let field = |name: &str| -> Vec<u8> {
        id.map
            .get(name)
            .and_then(|value| redis::from_redis_value_ref(value).ok())
            .unwrap_or_default()
    };
    let text = |name: &str| String::from_utf8_lossy(&field(name)).into_owned();
    DeadLetter {
        payload: field("e"),
        reason: text("reason"),
        source_id: text("source_id"),
        group: text("group"),
        deliveries: text("deliveries").parse().unwrap_or_default(),
        id: id.id.clone(),
    }
}
