//! clawdbot-history-sink: a history store of your own.
//!
//! clawdbot writes every message and reply to its history store and reads history back from
//! it. Besides PostgreSQL, SQLite and MongoDB, the store can be any process that serves the
//! `HistorySink` gRPC service (`proto/clawdbot/v1/history_sink.proto`), selected by config:
//!
//! ```yaml
//! storage:
//!   type: custom
//!   endpoint: "http://history-sink:50061"
//!   control: { type: postgresql, dsn: "postgres://…" }   # skills, secrets, audit, logs
//! ```
//!
//! A gRPC service rather than a Rust plug-in: it is written in any language (the product's
//! description shows a Python `MySQLStorage` with `save_message`), it needs no rebuild of
//! clawdbot, and a slow or crashing store cannot take a worker down with it. In Rust,
//! implement [`HistoryBackend`] and serve [`service`]; `examples/history-sink-rust` is one.
//! The contract suite (`services/store/tests/store_contract.rs`, `sink_backend`) runs against
//! any sink: `CLAWDBOT_TEST_HISTORY_SINK=http://host:port`.

pub mod proto {
    //! The generated messages, server and client.
    tonic::include_proto!("clawdbot.v1");
}

pub use proto::history_sink_client::HistorySinkClient;
pub use proto::history_sink_server::HistorySinkServer;
pub use proto::{HistoryRow, QueryMessagesRequest};

/// Rows per query when the request asks for none (`limit: 0`).
pub const DEFAULT_LIMIT: usize = 1000;

/// A history store, the description's `save_message` shape. Errors are said to the caller
/// (clawdbot logs them and delivers the batch again later).
#[async_trait::async_trait]
pub trait HistoryBackend: Send + Sync + 'static {
    /// Saves `rows`, skipping any whose (direction, id) is already saved; returns how many
    /// were new.
    async fn save_messages(&self, rows: Vec<HistoryRow>) -> Result<u64, String>;

    /// The rows `query` asks for, in its order (see the proto's `QueryMessagesRequest`).
    async fn query_messages(&self, query: QueryMessagesRequest) -> Result<Vec<HistoryRow>, String>;

    /// Deletes rows created before `before_us`; returns how many.
    async fn delete_before(&self, before_us: i64) -> Result<u64, String>;
}

/// The gRPC service of `backend`, to add to a `tonic` server.
pub fn service<B: HistoryBackend>(backend: B) -> HistorySinkServer<Served<B>> {
    HistorySinkServer::new(Served(backend))
}

/// A [`HistoryBackend`] served as the `HistorySink` service.
pub struct Served<B>(B);

fn internal(reason: String) -> tonic::Status {
    tonic::Status::internal(reason)
}

#[async_trait::async_trait]
impl<B: HistoryBackend> proto::history_sink_server::HistorySink for Served<B> {
    async fn save_messages(
        &self,
        request: tonic::Request<proto::SaveMessagesRequest>,
    ) -> Result<tonic::Response<proto::SaveMessagesReply>, tonic::Status> {
        let written = self
            .0
            .save_messages(request.into_inner().rows)
            .await
            .map_err(internal)?;
        Ok(tonic::Response::new(proto::SaveMessagesReply { written }))
    }

    async fn query_messages(
        &self,
        request: tonic::Request<QueryMessagesRequest>,
    ) -> Result<tonic::Response<proto::QueryMessagesReply>, tonic::Status> {
        let rows = self
            .0
            .query_messages(request.into_inner())
            .await
            .map_err(internal)?;
        Ok(tonic::Response::new(proto::QueryMessagesReply { rows }))
    }

    async fn delete_before(
        &self,
        request: tonic::Request<proto::DeleteBeforeRequest>,
    ) -> Result<tonic::Response<proto::DeleteBeforeReply>, tonic::Status> {
        let deleted = self
            .0
            .delete_before(request.into_inner().before_us)
            .await
            .map_err(internal)?;
        Ok(tonic::Response::new(proto::DeleteBeforeReply { deleted }))
    }
}
