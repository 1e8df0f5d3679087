//! clawdbot-core: the message model every process shares, and the small pieces every role needs.
//!
//! - [`proto`]: the `Envelope`, `Reply` and the gRPC services, generated from `proto/clawdbot/v1`
//!   (the single source of truth for what crosses a process boundary);
//! - [`message`]: helpers for building and reading envelopes and segments;
//! - [`skill`]: the `Skill` trait that built-in and remote skills implement;
//! - [`telemetry`]: metric and span field names, and W3C trace-context propagation;
//! - [`shared`]: the state replicas share (tokens, leases, send schedules), as a trait;
//! - [`tls`]: the crypto provider and the builder for outgoing HTTPS clients;
//! - [`shutdown`]: the cancellation token and task tracker every long-running task takes.
//!
//! This crate does no IO (no Redis, Postgres or HTTP server), so anything can depend on it.
//! It only knows how HTTP clients are built ([`tls::http_client_builder`]).

pub mod egress;
pub mod message;
pub mod notice;
pub mod shared;
pub mod shutdown;
pub mod skill;
pub mod telemetry;
pub mod tls;

/// Code generated from `proto/clawdbot/v1`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("clawdbot.v1");
}

pub use message::{now_ms, reply_id};
pub use proto::{Envelope, Reply, Segment};
