//! Mock platform servers: they speak the documented protocol (real auth checks, real payloads)
//! and record what clawdbot sent, so tests and the load generator can assert on it.

pub mod dingtalk;
mod dingtalk_stream;
pub mod onebot;
pub mod qq;
pub mod service;
pub mod skill;
pub mod wecom;
