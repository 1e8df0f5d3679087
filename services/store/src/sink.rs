//! A history store of the user's own (`storage: {type: custom, endpoint: …}`): history goes to
//! a process serving the `HistorySink` gRPC service (`clawdbot-history-sink`), any language.
//! Like MongoDB it holds history only; the other concerns stay on `storage.control`
//! ([`crate::split::SplitStore`]).

use std::collections::HashMap;
use std::time::Duration;

use clawdbot_history_sink::proto::{DeleteBeforeRequest, SaveMessagesRequest};
use clawdbot_history_sink::{HistoryRow, HistorySinkClient, QueryMessagesRequest};
use time::OffsetDateTime;
use tonic::transport::Channel;

use crate::{Direction, HistoryQuery, HistoryRecord, StoreError};

/// Rows per query while `skill_activity` reads a time window.
const PAGE: u32 = 1000;
/// How far before the window a reply's question is looked for (replies come within
/// seconds; a question older than this leaves that reply's latency out).
const QUESTION_LOOKBACK: time::Duration = time::Duration::minutes(10);

/// The history store behind a sink's endpoint.
#[derive(Clone)]
pub struct SinkHistory {
    client: HistorySinkClient<Channel>,
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn row(r: &HistoryRecord) -> HistoryRow {
    HistoryRow {
        id: r.id.clone(),
        direction: r.direction.as_str().to_string(),
        platform: r.platform.clone(),
        bot_id: r.bot_id.clone(),
        conversation_kind: r.conversation_kind.clone(),
        conversation_id: r.conversation_id.clone(),
        sender_id: r.sender_id.clone(),
        platform_message_id: r.platform_message_id.clone(),
        event_type: r.event_type.clone(),
        skill: r.skill.clone(),
        in_reply_to: r.in_reply_to.clone(),
        status: r.status.clone(),
        text: r.text.clone(),
        payload: r.payload.clone(),
        created_at_us: micros(r.created_at),
    }
}

fn record(r: HistoryRow) -> HistoryRecord {
    HistoryRecord {
        direction: if r.direction == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        created_at: from_micros(r.created_at_us),
        id: r.id,
        platform: r.platform,
        bot_id: r.bot_id,
        conversation_kind: r.conversation_kind,
        conversation_id: r.conversation_id,
        sender_id: r.sender_id,
        platform_message_id: r.platform_message_id,
        event_type: r.event_type,
        skill: r.skill,
        in_reply_to: r.in_reply_to,
        status: r.status,
        text: r.text,
        payload: r.payload,
    }
}

fn failed(context: &'static str) -> impl Fn(tonic::Status) -> StoreError {
    move |status| StoreError::Sink {
        context,
        reason: format!("{:?}: {}", status.code(), status.message()),
    }
}

impl SinkHistory {
    /// Connects to the sink at `endpoint` (`http://host:port`); every call times out after
    /// `timeout`.
    ///
    /// # Errors
    /// The endpoint is not a URL, or nothing answers there.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: endpoint.to_string(),
            reason,
        };
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| invalid(e.to_string()))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| StoreError::Sink {
                context: "connect",
                reason: format!("nothing answers at {endpoint}: {e}"),
            })?;
        Ok(Self {
            client: HistorySinkClient::new(channel),
        })
    }

    /// Answers when the sink does (a one-row query).
    ///
    /// # Errors
    /// The sink is unreachable or refuses the query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query(QueryMessagesRequest {
            limit: 1,
            ..QueryMessagesRequest::default()
        })
        .await
        .map(drop)
    }

    async fn query(&self, query: QueryMessagesRequest) -> Result<Vec<HistoryRecord>, StoreError> {
        let reply = self
            .client
            .clone()
            .query_messages(query)
            .await
            .map_err(failed("query messages"))?;
        Ok(reply.into_inner().rows.into_iter().map(record).collect())
    }

    /// Every row of `direction` since `since`, a page at a time.
    async fn all_since(
        &self,
        direction: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let mut rows: Vec<HistoryRecord> = Vec::new();
        loop {
            let (after_us, after_id) = rows
                .last()
                .map_or((0, String::new()), |r| (micros(r.created_at), r.id.clone()));
            let page = self
                .query(QueryMessagesRequest {
                    direction: direction.to_string(),
                    since_us: micros(since),
                    after_us,
                    after_id,
                    limit: PAGE,
                    ..QueryMessagesRequest::default()
                })
                .await?;
            let full = page.len() == PAGE as usize;
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::HistoryStore for SinkHistory {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        let reply = self
            .client
            .clone()
            .save_messages(SaveMessagesRequest {
                rows: records.iter().map(row).collect(),
            })
            .await
            .map_err(failed("save messages"))?;
        Ok(reply.into_inner().written)
    }

    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let mut rows = self
            .query(QueryMessagesRequest {
                platform: platform.to_string(),
                bot_id: bot_id.to_string(),
                conversation_id: conversation_id.to_string(),
                newest_first: true,
                limit: u32::try_from(limit.max(1)).unwrap_or(u32::MAX),
                ..QueryMessagesRequest::default()
            })
            .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Read through the sink's one query: the replies of the window and the questions just
    /// before and in it, matched here.
    async fn skill_activity(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<crate::SkillActivity>, StoreError> {
        let replies = self.all_since("out", since).await?;
        let asked: HashMap<String, OffsetDateTime> = self
            .all_since("in", since - QUESTION_LOOKBACK)
            .await?
            .into_iter()
            .map(|r| (r.id, r.created_at))
            .collect();
        let rows: Vec<(String, Option<f64>)> = replies
            .into_iter()
            .filter(|r| !r.skill.is_empty())
            .map(|r| {
                let latency = asked
                    .get(&r.in_reply_to)
                    .map(|at| (r.created_at - *at).whole_milliseconds() as f64);
                (r.skill, latency)
            })
            .collect();
        Ok(crate::activity(rows))
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError> {
        let (after_us, after_id) = query
            .after
            .as_ref()
            .map_or((0, String::new()), |(at, id)| (micros(*at), id.clone()));
        self.query(QueryMessagesRequest {
            platform: query.platform.clone().unwrap_or_default(),
            conversation_id: query.conversation_id.clone().unwrap_or_default(),
            since_us: query.since.map_or(0, micros),
            grep: query.grep.clone().unwrap_or_default(),
            after_us,
            after_id,
            limit: u32::try_from(query.limit.max(1)).unwrap_or(u32::MAX),
            ..QueryMessagesRequest::default()
        })
        .await
    }

    async fn delete_history_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let reply = self
            .client
            .clone()
            .delete_before(DeleteBeforeRequest {
                before_us: micros(before),
            })
            .await
            .map_err(failed("delete before"))?;
        Ok(reply.into_inner().deleted)
    }
}
