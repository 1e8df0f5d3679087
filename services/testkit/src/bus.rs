//! A bus for one test, on either backend, so that one behavioural suite runs against both.

use std::sync::Arc;

use clawdbot_bus::Bus;
use clawdbot_bus::memory::MemoryBus;

use crate::TestRedis;

/// Which bus implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Redis Streams (the cluster backend), in a key space of the test's own.
    Redis,
    /// The in-process bus (the embedded backend).
    Memory,
}

/// A bus of one test's own; a Redis one is cleaned up on drop.
pub struct TestBus {
    pub bus: Arc<dyn Bus>,
    pub backend: Backend,
    pub redis: Option<TestRedis>,
}

impl TestBus {
    /// Returns a fresh bus on `backend`.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Redis => {
                let redis = TestRedis::new().await;
                Self {
                    bus: redis.bus.clone(),
                    backend,
                    redis: Some(redis),
                }
            }
            Backend::Memory => Self {
                bus: Arc::new(MemoryBus::new()),
                backend,
                redis: None,
            },
        }
    }
}
