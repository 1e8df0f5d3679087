//! MongoDB as the history store of high-volume deployments (`storage: {type: mongodb}`).
//!
//! Only history lives here: it is the one concern that grows with traffic. The others (skills,
//! switches, secrets, audit, logs) are small, transactional and read by every process, and
//! stay on the relational store named in `storage.control` ([`crate::split::SplitStore`]).
//!
//! One document per row in the `messages` collection, `_id` = `"<direction>:<id>"` (a message
//! and its reply share an id), written with unordered `insert_many`, so a redelivered batch
//! writes nothing twice (duplicate-key errors are the rows already there) and one bad row does
//! not stop the rest.
//!
//! Shard key, for a sharded cluster: `{platform: 1, bot_id: 1, conversation_id: "hashed"}` —
//! see `docs/storage.md` for the reasoning and the commands.
//!
//! Targets MongoDB 6–8 (the driver's supported range); tested against SecantusDB, a
//! MongoDB-wire-protocol server (it reports 8.2), since no `mongod` installs on the test
//! machines.

mod history;

use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, IndexModel};

use crate::StoreError;

/// The collection history rows are written to.
pub const COLLECTION: &str = "messages";
/// The TTL index that expires rows past `history.retention` on the server.
pub const RETENTION_INDEX: &str = "retention_ttl";

/// How to reach the history database.
#[derive(Debug, Clone)]
pub struct MongoSettings {
    /// A `mongodb://` URI (hosts, credentials, `replicaSet`, …); its path names the database.
    pub uri: String,
    /// `majority`, a number of members, or a tag set name.
    pub write_concern: String,
    /// The database when the URI names none.
    pub database: String,
    pub pool_size: u32,
    /// Server selection and connection timeout.
    pub timeout: Duration,
}

/// The history store on MongoDB.
#[derive(Clone)]
pub struct MongoHistory {
    messages: Collection<Document>,
    client: Client,
}

impl MongoHistory {
    /// Connects, and creates the indexes history is read by (idempotent).
    ///
    /// # Errors
    /// The URI is invalid, or no server answered within the timeout.
    pub async fn connect(settings: &MongoSettings) -> Result<Self, StoreError> {
        let mut options = ClientOptions::parse(&settings.uri)
            .await
            .map_err(|source| StoreError::InvalidUrl {
                url: redact(&settings.uri),
                reason: source.to_string(),
            })?;
        options.app_name = Some("clawdbot".into());
        options.max_pool_size = Some(settings.pool_size);
        options.server_selection_timeout = Some(settings.timeout);
        options.connect_timeout = Some(settings.timeout);
        options.write_concern = Some(write_concern(&settings.write_concern));
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| settings.database.clone());
        let client = Client::with_options(options).map_err(mongo("client options"))?;
        let messages = client
            .database(&database)
            .collection::<Document>(COLLECTION);
        let store = Self { messages, client };
        store.create_indexes().await?;
        Ok(store)
    }

    /// A conversation over time (`conversation`, `history show --conversation`), and all
    /// history over time (`history export`, retention).
    async fn create_indexes(&self) -> Result<(), StoreError> {
        let index = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_string()).build())
                .build()
        };
        self.messages
            .create_indexes([
                index(
                    doc! {"platform": 1, "bot_id": 1, "conversation_id": 1, "created_at": -1},
                    "conversation_time",
                ),
                index(doc! {"created_at": 1, "id": 1}, "time_id"),
            ])
            .await
            .map_err(mongo("create indexes"))?;
        Ok(())
    }

    /// The TTL index's `expireAfterSeconds`, if there is one.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn expiry(&self) -> Result<Option<Duration>, StoreError> {
        let context = "list indexes";
        let mut indexes = self.messages.list_indexes().await.map_err(mongo(context))?;
        while indexes.advance().await.map_err(mongo(context))? {
            let index = indexes.deserialize_current().map_err(mongo(context))?;
            if let Some(options) = index.options
                && options.name.as_deref() == Some(RETENTION_INDEX)
            {
                return Ok(options.expire_after);
            }
        }
        Ok(None)
    }

    /// Makes the TTL index on `created_at` expire rows after `keep`, or drops it (`None`).
    /// A changed retention replaces the index (an index's options cannot be changed by
    /// creating it again).
    pub(crate) async fn set_expiry(&self, keep: Option<Duration>) -> Result<(), StoreError> {
        let current = self.expiry().await?;
        if current == keep {
            return Ok(());
        }
        if current.is_some() {
            self.messages
                .drop_index(RETENTION_INDEX)
                .await
                .map_err(mongo("drop the retention index"))?;
        }
        if let Some(keep) = keep {
            let ttl = IndexModel::builder()
                .keys(doc! {"created_at": 1})
                .options(
                    IndexOptions::builder()
                        .name(RETENTION_INDEX.to_string())
                        .expire_after(keep)
                        .build(),
                )
                .build();
            self.messages
                .create_index(ttl)
                .await
                .map_err(mongo("create the retention index"))?;
        }
        Ok(())
    }

    /// Answers when the server does.
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await
            .map_err(mongo("ping"))?;
        Ok(())
    }

    /// Drops the database (tests).
    ///
    /// # Errors
    /// The server is unreachable.
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        let name = self.messages.namespace().db;
        self.client
            .database(&name)
            .drop()
            .await
            .map_err(mongo("drop database"))
    }
}

/// `majority`, a member count, or a custom tag set name.
fn write_concern(text: &str) -> WriteConcern {
    let w = match text {
        "majority" => Acknowledgment::Majority,
        other => match other.parse::<u32>() {
            Ok(count) => Acknowledgment::Nodes(count),
            Err(_) => Acknowledgment::Custom(other.to_string()),
        },
    };
    WriteConcern::builder().w(w).build()
}

/// The URI without its password, for messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &uri[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &uri[..scheme + 3], &uri[at..])
        }
        _ => uri.to_string(),
    }
}

fn mongo(context: &'static str) -> impl Fn(mongodb::error::Error) -> StoreError {
    move |source| StoreError::Mongo {
        context,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uri_is_named_without_its_password() {
        assert_eq!(
            super::redact("mongodb://user:pass@mongo1:27017,mongo2:27017/clawdbot?replicaSet=rs0"),
            "mongodb://user:***@mongo1:27017,mongo2:27017/clawdbot?replicaSet=rs0"
        );
        assert_eq!(super::redact("mongodb://m:27017"), "mongodb://m:27017");
    }
}
