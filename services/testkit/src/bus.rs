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

/// Generates one `#[tokio::test]` per backend for each suite function named, each taking a
/// [`TestBus`]: `bus_suite!(suite; first_case, second_case);` where `suite::first_case` is an
/// `async fn(TestBus)`.
#[macro_export]
macro_rules! bus_suite {
    ($suite:path; $($case:ident),+ $(,)?) => {
        mod redis_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let bus = $crate::bus::TestBus::new($crate::bus::Backend::Redis).await;
                    { use $suite as suite; suite::$case(bus).await; }
                }
            )+
        }
        mod memory_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let bus = $crate::bus::TestBus::new($crate::bus::Backend::Memory).await;
                    { use $suite as suite; suite::$case(bus).await; }
                }
            )+
        }
    };
}
