//! Traffic into the fleet and the count of what the platform received.
//!
//! Messages are `/echo c{group}-{n}` in a few group conversations, `n` counting per group, so
//! that every reply names the message it answers and its place in the conversation. Only
//! messages the ingress answered 2xx are owed a reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawdbot_testkit::mock::onebot::MockOneBot;
use clawdbot_testkit::onebot_signature;

use crate::common::{SECRET, SELF_ID};

/// The first group id; conversations are `FIRST_GROUP..FIRST_GROUP + conversations`.
const FIRST_GROUP: i64 = 7000;

/// A message the ingress accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub group: i64,
    pub n: u64,
}

impl Accepted {
    fn text(&self) -> String {
        format!("c{}-{}", self.group, self.n)
    }
}

/// The shape of a case's traffic.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub per_second: u32,
    pub seconds: u32,
    pub conversations: u32,
}

/// Traffic in progress; [`Traffic::finish`] waits for its end.
pub struct Traffic {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    refused: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// Starts posting `load` to the OneBot callback on `port`.
    pub fn start(port: u16, load: Load) -> Self {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let task = tokio::spawn(post_all(port, load, accepted.clone(), refused.clone()));
        Self {
            accepted,
            refused,
            task,
        }
    }

    /// Waits for the last post to be answered; returns what was accepted and how many were
    /// refused (a 5xx the platform would retry, or no answer).
    pub async fn finish(self) -> (Vec<Accepted>, usize) {
        let _done = self.task.await;
        let accepted = self.accepted.lock().map(|a| a.clone()).unwrap_or_default();
        let refused = self.refused.lock().map(|r| *r).unwrap_or_default();
        (accepted, refused)
    }
}

async fn post_all(
    port: u16,
    load: Load,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    refused: Arc<Mutex<usize>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let total = u64::from(load.per_second) * u64::from(load.seconds);
    let interval = Duration::from_secs(1) / load.per_second.max(1);
    let mut next_n: HashMap<i64, u64> = HashMap::new();
    let mut posts = tokio::task::JoinSet::new();
    let started = tokio::time::Instant::now();
    for message_id in 0..total {
        tokio::time::sleep_until(started + interval * message_id as u32).await;
        let group = FIRST_GROUP + (message_id % u64::from(load.conversations.max(1))) as i64;
        let n = next_n.entry(group).or_default();
        *n += 1;
        let message = Accepted { group, n: *n };
        let (client, accepted, refused) = (client.clone(), accepted.clone(), refused.clone());
        posts.spawn(async move {
            let body = clawdbot_testkit::onebot_group_message(
                SELF_ID,
                message.group,
                42,
                message_id as i64 + 1,
                &format!("/echo {}", message.text()),
            );
            let answer = client
                .post(format!("http://127.0.0.1:{port}/clawdbot/onebot/callback"))
                .header("content-type", "application/json")
                .header("x-self-id", SELF_ID.to_string())
                .header("x-signature", onebot_signature(SECRET, body.as_bytes()))
                .body(body)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    if let Ok(mut accepted) = accepted.lock() {
                        accepted.push(message);
                    }
                }
                _ => {
                    if let Ok(mut refused) = refused.lock() {
                        *refused += 1;
                    }
                }
            }
        });
    }
    while posts.join_next().await.is_some() {}
}

/// What the platform received for the accepted messages.
#[derive(Debug)]
pub struct Tally {
    pub accepted: usize,
    pub answered: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// Replies that reached a conversation before a reply to an earlier message of it.
    pub out_of_order: usize,
    /// From `since` to the reply that completed the set (or the last reply seen).
    pub recovery: Duration,
}

/// Waits until every accepted message is answered (or `patience` passed, then a little more
/// for stragglers that would be duplicates), and counts.
pub async fn tally(
    mock: &MockOneBot,
    accepted: &[Accepted],
    since: Instant,
    patience: Duration,
) -> Tally {
    let deadline = tokio::time::Instant::now() + patience;
    while tokio::time::Instant::now() < deadline && count(mock, accepted, since).lost > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Late duplicates arrive after the original: give them a moment to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    count(mock, accepted, since)
}

fn count(mock: &MockOneBot, accepted: &[Accepted], since: Instant) -> Tally {
    let mut received: HashMap<String, usize> = HashMap::new();
    let mut last_n: HashMap<i64, u64> = HashMap::new();
    let mut out_of_order = 0;
    let mut last_needed = since;
    let wanted: std::collections::HashSet<String> = accepted.iter().map(Accepted::text).collect();
    for sent in mock.sent() {
        let text = sent.text();
        let Some((group, n)) = parse(&text) else {
            continue;
        };
        let seen = received.entry(text.clone()).or_default();
        *seen += 1;
        if *seen > 1 {
            continue;
        }
        if wanted.contains(&text) {
            last_needed = last_needed.max(sent.received_at);
        }
        let last = last_n.entry(group).or_default();
        if n < *last {
            out_of_order += 1;
        }
        *last = (*last).max(n);
    }
    let answered = wanted.iter().filter(|t| received.contains_key(*t)).count();
    Tally {
        accepted: wanted.len(),
        answered,
        lost: wanted.len() - answered,
        duplicated: received.values().map(|n| n.saturating_sub(1)).sum(),
        out_of_order,
        recovery: last_needed.saturating_duration_since(since),
    }
}

/// Reads `c{group}-{n}` back from a reply's text.
fn parse(text: &str) -> Option<(i64, u64)> {
    let (group, n) = text.trim().strip_prefix('c')?.split_once('-')?;
    Some((group.parse().ok()?, n.parse().ok()?))
}

/// Appends the case's row to the report (`CLAWDBOT_FAULT_REPORT`, a Markdown table) and
/// prints it.
pub fn report(case: &str, tally: &Tally) {
    let row = format!(
        "| {case} | {} | {} | {} | {} | {} | {:.1} |\n",
        tally.accepted,
        tally.answered,
        tally.lost,
        tally.duplicated,
        tally.out_of_order,
        tally.recovery.as_secs_f64()
    );
    eprint!("{row}");
    if let Ok(path) = std::env::var("CLAWDBOT_FAULT_REPORT") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _written = file.write_all(row.as_bytes());
        }
    }
}
