//! History on MongoDB: batches written unordered and idempotently, read back in pages.

use std::collections::HashMap;
use std::time::Duration;

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, Regex, doc};
use mongodb::error::ErrorKind;
use mongodb::options::FindOptions;
use time::OffsetDateTime;

use super::{MongoHistory, mongo};
use crate::{Direction, HistoryQuery, HistoryRecord, StoreError};

/// MongoDB's duplicate-key error: the row is already there.
const DUPLICATE_KEY: i32 = 11_000;

fn to_bson_time(at: OffsetDateTime) -> DateTime {
    DateTime::from_millis((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn from_bson_time(at: DateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.timestamp_millis()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn document(r: &HistoryRecord) -> Document {
    doc! {
        "_id": format!("{}:{}", r.direction.as_str(), r.id),
        "id": &r.id,
        "direction": r.direction.as_str(),
        "platform": &r.platform,
        "bot_id": &r.bot_id,
        "conversation_kind": &r.conversation_kind,
        "conversation_id": &r.conversation_id,
        "sender_id": &r.sender_id,
        "platform_message_id": &r.platform_message_id,
        "event_type": &r.event_type,
        "skill": &r.skill,
        "in_reply_to": &r.in_reply_to,
        "status": &r.status,
        "text": &r.text,
        "payload": Binary { subtype: BinarySubtype::Generic, bytes: r.payload.clone() },
        "created_at": to_bson_time(r.created_at),
    }
}

fn record(d: &Document) -> HistoryRecord {
    let text = |key: &str| d.get_str(key).unwrap_or_default().to_string();
    HistoryRecord {
        id: text("id"),
        direction: if d.get_str("direction") == Ok("in") {
            Direction::In
        } else {
            Direction::Out
        },
        platform: text("platform"),
        bot_id: text("bot_id"),
        conversation_kind: text("conversation_kind"),
        conversation_id: text("conversation_id"),
        sender_id: text("sender_id"),
        platform_message_id: text("platform_message_id"),
        event_type: text("event_type"),
        skill: text("skill"),
        in_reply_to: text("in_reply_to"),
        status: text("status"),
        text: text("text"),
        payload: match d.get("payload") {
            Some(Bson::Binary(binary)) => binary.bytes.clone(),
            _ => Vec::new(),
        },
        created_at: d
            .get_datetime("created_at")
            .map_or(OffsetDateTime::UNIX_EPOCH, |at| from_bson_time(*at)),
    }
}

/// A regex matching `text` literally, any case.
fn literal_regex(text: &str) -> Regex {
    let mut pattern = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    Regex {
        pattern,
        options: "i".into(),
    }
}

impl MongoHistory {
    async fn find(
        &self,
        filter: Document,
        sort: Document,
        limit: i64,
        context: &'static str,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let options = FindOptions::builder().sort(sort).limit(limit).build();
        let mut cursor = self
            .messages
            .find(filter)
            .with_options(options)
            .await
            .map_err(mongo(context))?;
        let mut rows = Vec::new();
        while cursor.advance().await.map_err(mongo(context))? {
            let raw = cursor.deserialize_current().map_err(mongo(context))?;
            rows.push(record(&raw));
        }
        Ok(rows)
    }
}

#[async_trait::async_trait]
impl crate::HistoryStore for MongoHistory {
    async fn write_history(&self, records: &[HistoryRecord]) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let documents: Vec<Document> = records.iter().map(document).collect();
        match self.messages.insert_many(documents).ordered(false).await {
            Ok(inserted) => Ok(inserted.inserted_ids.len() as u64),
            Err(error) => match error.kind.as_ref() {
                // Rows already written (a redelivered batch) are the only acceptable failures.
                ErrorKind::InsertMany(failure)
                    if failure.write_concern_error.is_none()
                        && failure
                            .write_errors
                            .iter()
                            .flatten()
                            .all(|e| e.code == DUPLICATE_KEY) =>
                {
                    let duplicates = failure.write_errors.as_ref().map_or(0, Vec::len);
                    Ok(records.len().saturating_sub(duplicates) as u64)
                }
                _ => Err(mongo("insert history batch")(error)),
            },
        }
    }

    async fn conversation(
        &self,
        platform: &str,
        bot_id: &str,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let filter =
            doc! {"platform": platform, "bot_id": bot_id, "conversation_id": conversation_id};
        let mut rows = self
            .find(
                filter,
                doc! {"created_at": -1},
                limit,
                "select conversation",
            )
            .await?;
        rows.sort_by(|a, b| {
            (a.created_at, a.direction.as_str()).cmp(&(b.created_at, b.direction.as_str()))
        });
        Ok(rows)
    }

    async fn skill_activity(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<crate::SkillActivity>, StoreError> {
        let replies = self
            .find(
                doc! {"direction": "out", "created_at": {"$gte": to_bson_time(since)}, "skill": {"$ne": ""}},
                doc! {"created_at": 1},
                0,
                "skill activity",
            )
            .await?;
        let asked: Vec<Bson> = replies
            .iter()
            .map(|r| Bson::String(format!("in:{}", r.in_reply_to)))
            .collect();
        let questions: HashMap<String, OffsetDateTime> = self
            .find(
                doc! {"_id": {"$in": asked}},
                doc! {"created_at": 1},
                0,
                "skill activity",
            )
            .await?
            .into_iter()
            .map(|r| (r.id, r.created_at))
            .collect();
        Ok(crate::activity(replies.into_iter().map(|reply| {
            let latency = questions
                .get(&reply.in_reply_to)
                .map(|asked| (reply.created_at - *asked).whole_milliseconds() as f64);
            (reply.skill, latency)
        })))
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError> {
        let mut filter = Document::new();
        if let Some(platform) = &query.platform {
            filter.insert("platform", platform);
        }
        if let Some(conversation) = &query.conversation_id {
            filter.insert("conversation_id", conversation);
        }
        if let Some(since) = query.since {
            filter.insert("created_at", doc! {"$gte": to_bson_time(since)});
        }
        if let Some(grep) = &query.grep {
            filter.insert("text", literal_regex(grep));
        }
        if let Some((at, id)) = &query.after {
            let at = to_bson_time(*at);
            filter.insert(
                "$or",
                vec![
                    doc! {"created_at": {"$gt": at}},
                    doc! {"created_at": at, "id": {"$gt": id}},
                ],
            );
        }
        self.find(
            filter,
            doc! {"created_at": 1, "id": 1},
            query.limit,
            "select history page",
        )
        .await
    }

    async fn expire_history_after(&self, keep: Option<Duration>) -> Result<bool, StoreError> {
        self.set_expiry(keep).await?;
        Ok(keep.is_some())
    }

    async fn delete_history_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let deleted = self
            .messages
            .delete_many(doc! {"created_at": {"$lt": to_bson_time(before)}})
            .await
            .map_err(mongo("delete history past retention"))?;
        Ok(deleted.deleted_count)
    }
}
