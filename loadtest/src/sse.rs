//! Collects the sandbox's replies from its live feed (server-sent events), as the chat page
//! does, recording when each arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawdbot_testkit::mock::onebot::SentMessage;

/// The conversation every sandbox event of the benchmark goes to.
pub const GROUP: &str = "loadtest";

/// Replies seen on the feed so far.
#[derive(Clone, Default)]
pub struct SseCollector {
    replies: Arc<Mutex<Vec<SentMessage>>>,
}

impl SseCollector {
    /// Opens the feed of the benchmark's group and starts collecting.
    ///
    /// # Errors
    /// The feed does not answer.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let url = format!("http://127.0.0.1:{port}/sandbox/events?kind=group&id={GROUP}");
        let mut response = clawdbot_core::tls::http_client_builder()
            .build()?
            .get(&url)
            .send()
            .await?
            .error_for_status()?;
        let collector = Self::default();
        let replies = collector.replies.clone();
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let received_at = Instant::now();
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let Some(data) = line.strip_prefix(b"data:") else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data.trim_ascii())
                    else {
                        continue;
                    };
                    let text = event["segments"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let message = serde_json::json!([{"type": "text", "data": {"text": text}}]);
                    let reply = SentMessage {
                        action: "sse".into(),
                        group_id: None,
                        user_id: None,
                        message,
                        via: "sse",
                        received_at,
                    };
                    if let Ok(mut all) = replies.lock() {
                        all.push(reply);
                    }
                }
            }
        });
        // The feed is live once the response headers came; a moment for the subscription.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(collector)
    }

    pub fn count(&self) -> usize {
        self.replies.lock().map(|r| r.len()).unwrap_or_default()
    }

    pub fn replies(&self) -> Vec<SentMessage> {
        self.replies.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
