//! clawdbot-testkit: what tests and the load generator share.
//!
//! - [`TestRedis`] / [`TestPostgres`]: a real Redis key space (random prefix) and a real
//!   Postgres schema (random name) per test, cleaned up on drop, so tests run in parallel and
//!   never depend on an earlier run;
//! - [`mock::onebot::MockOneBot`]: a OneBot v11 implementation's HTTP API, recording every
//!   message sent to it, with programmable failures;
//! - [`onebot_event`]: signed OneBot events, as NapCat posts them;
//! - [`standalone`]: the `clawdbot-mock` binary's mock process and control API.
//!
//! Only dev-dependencies, the load generator and `clawdbot-mock` use this crate.

pub mod bus;
pub mod fuzz;
pub mod guest;
pub mod mock;
mod postgres;
mod private_redis;
mod redis;
pub mod standalone;
pub mod store;
mod suite;
mod tcp_proxy;

pub use postgres::{TestPostgres, database_url};
pub use private_redis::{Persistence, PrivateRedis};
pub use redis::{TestRedis, redis_url};
pub use tcp_proxy::TcpProxy;

/// Returns a random lowercase alphanumeric suffix for names that must not collide.
pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Returns a free TCP port on 127.0.0.1 for a process the test starts.
///
/// Ports come from 20000–31999, below the kernel's ephemeral range (32768 and up): servers
/// that bind port 0 (the mocks, other tests' listeners) draw from the ephemeral range, so none
/// of them can take the port between this check and the process binding it. A process-wide
/// counter (seeded by the pid) hands each caller a different port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..COUNT {
        let port =
            (FIRST + (seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free port on 127.0.0.1 between {FIRST} and {}",
        FIRST + COUNT
    )
}

/// Runs `future` to completion on a fresh runtime in a new thread (for clean-up from `Drop`,
/// which may run inside another runtime).
pub fn block_on_side<F>(future: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let joined = std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(future),
            Err(error) => eprintln!("clean-up runtime: {error}"),
        }
    })
    .join();
    if joined.is_err() {
        eprintln!("clean-up thread panicked");
    }
}

/// Builds a OneBot v11 group message event, as NapCat posts it (segment array form).
pub fn onebot_group_message(
    self_id: i64,
    group_id: i64,
    user_id: i64,
    message_id: i64,
    text: &str,
) -> String {
    serde_json::json!({
        "time": 1_700_000_000,
        "self_id": self_id,
        "post_type": "message",
        "message_type": "group",
        "sub_type": "normal",
        "message_id": message_id,
        "group_id": group_id,
        "user_id": user_id,
        "message": [{"type": "text", "data": {"text": text}}],
        "raw_message": text,
        "font": 0,
        "sender": {"user_id": user_id, "nickname": "tester", "role": "member"},
    })
    .to_string()
}

/// Returns the `X-Signature` header value for `body` (HMAC-SHA1, as OneBot signs).
pub fn onebot_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    #[allow(clippy::expect_used)]
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}
