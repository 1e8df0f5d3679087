//! A Redis key space of one's own.

use std::sync::Arc;

use clawdbot_bus::redis::RedisBus;

/// The Redis URL tests use: `CLAWDBOT_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("CLAWDBOT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string())
}

/// A bus on the test Redis with a random key prefix; every key under it is deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    pub bus: Arc<RedisBus>,
}

impl TestRedis {
    /// Connects with a fresh prefix.
    ///
    /// # Panics
    /// Redis is unreachable: the message names the URL (tests never skip silently).
    pub async fn new() -> Self {
        let url = redis_url();
        let prefix = format!("test-{}", crate::random_suffix());
        let bus = RedisBus::connect(&url, &prefix)
            .await
            .unwrap_or_else(|error| panic!("test Redis at {url} is unreachable: {error} (start it, or set CLAWDBOT_TEST_REDIS_URL)"));
        Self {
            url,
            prefix,
            bus: Arc::new(bus),
        }
    }

    /// Returns a plain connection, for assertions on raw keys.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.bus.connection()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = self.bus.keys().pattern();
        crate::block_on_side(async move {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return;
            };
            let mut cursor: u64 = 0;
            loop {
                let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await;
                let Ok((next, keys)) = scanned else { return };
                if !keys.is_empty() {
                    let _deleted: redis::RedisResult<u64> =
                        redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
                }
                if next == 0 {
                    return;
                }
                cursor = next;
            }
        });
    }
}
