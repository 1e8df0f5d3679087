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
    /// When the ingress's 2xx came back.
    pub at: Instant,
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
    let conversations = u64::from(load.conversations.max(1));
    let per_conversation = u64::from(load.per_second) * u64::from(load.seconds) / conversations;
    // Each conversation's messages are posted one after the other, as a platform sends the
    // events of one chat: the order they were accepted in is the order owed.
    let interval = Duration::from_secs(1) * load.conversations.max(1) / load.per_second.max(1);
    let mut conversations_posting = tokio::task::JoinSet::new();
    for c in 0..conversations {
        let group = FIRST_GROUP + c as i64;
        let (client, accepted, refused) = (client.clone(), accepted.clone(), refused.clone());
        conversations_posting.spawn(async move {
            // Conversations start spread over one interval, not all at once.
            let started = tokio::time::Instant::now() + interval * c as u32 / conversations as u32;
            for n in 1..=per_conversation {
                tokio::time::sleep_until(started + interval * (n - 1) as u32).await;
                let message_id = (c * per_conversation + n) as i64;
                let mut message = Accepted {
                    group,
                    n,
                    at: Instant::now(),
                };
                if post(&client, port, message_id, &message).await {
                    message.at = Instant::now();
                    if let Ok(mut accepted) = accepted.lock() {
                        accepted.push(message);
                    }
                } else if let Ok(mut refused) = refused.lock() {
                    *refused += 1;
                }
            }
        });
    }
    while conversations_posting.join_next().await.is_some() {}
}

/// Posts one message; true if the ingress accepted it (2xx).
async fn post(client: &reqwest::Client, port: u16, message_id: i64, message: &Accepted) -> bool {
    // One sender per message, as in a busy group: a single sender asking this often would be
    // taken for another bot by the loop guard (`worker.loop_guard`).
    let body = clawdbot_testkit::onebot_group_message(
        SELF_ID,
        message.group,
        1_000_000 + message_id,
        message_id,
        &format!("/echo {}", message.text()),
    );
    client
        .post(format!("http://127.0.0.1:{port}/clawdbot/onebot/callback"))
        .header("content-type", "application/json")
        .header("x-self-id", SELF_ID.to_string())
        .header("x-signature", onebot_signature(SECRET, body.as_bytes()))
        .body(body)
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// What the platform received for the accepted messages.
#[derive(Debug)]
pub struct Tally {
    pub accepted: usize,
    pub answered: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// Replies that reached a conversation after a reply to a later message of it.
    pub out_of_order: usize,
    /// The first few of them, as `c{group}-{n} after {later n}`.
    pub inversions: Vec<String>,
    /// The first few accepted messages never answered (`c{group}-{n}`), to find in the logs.
    pub lost_texts: Vec<String>,
    /// From `since` (the fault's end) to the last reply owed to a message accepted before
    /// it: how long the backlog the fault left took to drain.
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
    let mut inversions = Vec::new();
    let mut last_needed = since;
    let wanted: std::collections::HashSet<String> = accepted.iter().map(Accepted::text).collect();
    let backlog: std::collections::HashSet<String> = accepted
        .iter()
        .filter(|a| a.at <= since)
        .map(Accepted::text)
        .collect();
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
        if backlog.contains(&text) {
            last_needed = last_needed.max(sent.received_at);
        }
        let last = last_n.entry(group).or_default();
        if n < *last {
            out_of_order += 1;
            if inversions.len() < 5 {
                inversions.push(format!("{text} after {last}"));
            }
        }
        *last = (*last).max(n);
    }
    let answered = wanted.iter().filter(|t| received.contains_key(*t)).count();
    let mut lost_texts: Vec<String> = wanted
        .iter()
        .filter(|t| !received.contains_key(*t))
        .cloned()
        .collect();
    lost_texts.sort();
    lost_texts.truncate(10);
    Tally {
        accepted: wanted.len(),
        answered,
        lost: wanted.len() - answered,
        duplicated: received.values().map(|n| n.saturating_sub(1)).sum(),
        out_of_order,
        inversions,
        lost_texts,
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
    if !tally.inversions.is_empty() {
        eprintln!("  out of order: {}", tally.inversions.join(", "));
    }
    if !tally.lost_texts.is_empty() {
        eprintln!("  never answered: {}", tally.lost_texts.join(", "));
    }
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
