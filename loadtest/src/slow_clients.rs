//! Slow clients beside the traffic (`--slow-clients N`): N connections that send the start of a
//! request's headers and then one byte a second, never finishing them (a slowloris attack).
//! When the server closes one (its header timeout), it is opened again, so N stay open for the
//! whole run. Loopback only; stops with the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Running slow clients; dropped or [`SlowClients::stop`]ped with the run.
pub struct SlowClients {
    stop: CancellationToken,
    /// How many times the server closed a slow client (it timed out its headers).
    closed: Arc<AtomicU64>,
}

impl SlowClients {
    /// Opens `count` slow clients to `port` on 127.0.0.1.
    pub fn start(port: u16, count: usize) -> Self {
        let stop = CancellationToken::new();
        let closed = Arc::new(AtomicU64::new(0));
        for _ in 0..count {
            let stop = stop.clone();
            let closed = closed.clone();
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    if drip(port, &stop).await {
                        closed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Could not connect: do not spin.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            });
        }
        Self { stop, closed }
    }

    /// Stops every slow client; returns how many times the server closed one.
    pub fn stop(&self) -> u64 {
        self.stop.cancel();
        self.closed.load(Ordering::Relaxed)
    }
}

impl Drop for SlowClients {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Holds one slow connection until the server closes it (true) or the run stops (false when
/// it could not connect at all).
async fn drip(port: u16, stop: &CancellationToken) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream
        .write_all(b"POST /clawdbot/onebot/callback HTTP/1.1\r\nHost: slow\r\n")
        .await
        .is_err()
    {
        return true;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return true,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"X").await.is_err() {
                    return true;
                }
            }
        }
    }
}
