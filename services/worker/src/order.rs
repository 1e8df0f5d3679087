//! Per-conversation order: a message is answered only after the message before it in its
//! conversation, across every worker of the group.
//!
//! Ingress numbers the messages of each conversation as the bus appends them (their turns).
//! A batch's entries are cut into chains — consecutive turns of one conversation — and a
//! chain goes out once its group has finished the turn before its first; the group then
//! records the turns it finished. Different conversations never wait for each other. A chain
//! whose predecessor does not finish within `order_wait` (its message was lost with a Redis
//! that did not persist it, or is stuck on a failing skill) goes ahead anyway, logged and
//! counted: order yields to liveness, never the other way round.

use std::collections::HashMap;
use std::time::Duration;

use clawdbot_bus::{Entry, Turns};
use clawdbot_core::telemetry;

/// Consecutive turns of one conversation in a batch, or one entry without a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The conversation, or None for an entry that keeps no order.
    pub key: Option<String>,
    /// The first member's turn (0 without a key).
    pub first_seq: u64,
    /// Indexes into the batch, in turn order.
    pub members: Vec<usize>,
}

/// Cuts `entries` into chains: entries of one conversation whose turns follow each other.
pub(crate) fn chains(entries: &[Entry]) -> Vec<Chain> {
    let mut by_key: HashMap<&str, Vec<(u64, usize)>> = HashMap::new();
    let mut chains = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match &entry.turn {
            Some(turn) => by_key.entry(&turn.key).or_default().push((turn.seq, index)),
            None => chains.push(Chain {
                key: None,
                first_seq: 0,
                members: vec![index],
            }),
        }
    }
    for (key, mut turns) in by_key {
        turns.sort_unstable();
        let mut current: Option<Chain> = None;
        let mut last_seq = 0;
        for (seq, index) in turns {
            match current.as_mut() {
                Some(chain) if seq == last_seq + 1 => chain.members.push(index),
                _ => {
                    chains.extend(current.take());
                    current = Some(Chain {
                        key: Some(key.to_string()),
                        first_seq: seq,
                        members: vec![index],
                    });
                }
            }
            last_seq = seq;
        }
        chains.extend(current);
    }
    chains
}

/// Splits `waiting` into the chains whose turn has come and the ones still waiting. Past
/// `deadline` every chain goes: those that did not get their turn are logged and counted.
pub(crate) async fn whose_turn(
    turns: &dyn Turns,
    group: &str,
    waiting: Vec<Chain>,
    deadline: tokio::time::Instant,
) -> (Vec<Chain>, Vec<Chain>) {
    let keys: Vec<String> = waiting.iter().filter_map(|c| c.key.clone()).collect();
    let finished = match turns.finished_turns(group, &keys).await {
        Ok(finished) => finished,
        Err(error) => {
            telemetry::count_error("worker", error.kind());
            tracing::warn!(error = %error, "cannot read conversation turns; waiting");
            vec![0; keys.len()]
        }
    };
    let done: HashMap<&str, u64> = keys.iter().map(String::as_str).zip(finished).collect();
    let late = tokio::time::Instant::now() >= deadline;
    let (mut ready, mut later) = (Vec::new(), Vec::new());
    for chain in waiting {
        let turn_has_come = match &chain.key {
            None => true,
            Some(key) => done.get(key.as_str()).copied().unwrap_or(0) + 1 >= chain.first_seq,
        };
        if turn_has_come {
            ready.push(chain);
        } else if late {
            metrics::counter!(telemetry::WORKER_ORDER_SKIPPED_TOTAL, "group" => group.to_string())
                .increment(1);
            tracing::warn!(
                conversation = chain.key.as_deref().unwrap_or_default(),
                turn = chain.first_seq,
                "an earlier message of this conversation is not answered in time; answering this one first"
            );
            ready.push(chain);
        } else {
            later.push(chain);
        }
    }
    (ready, later)
}

/// The pause between looks at the turns while a chain waits for another worker: short at
/// first (the message before is usually in a batch in flight), longer after. (A turn finished
/// in this process wakes the waiters at once.)
pub(crate) fn next_poll(poll: Duration) -> Duration {
    (poll * 2).min(Duration::from_millis(50))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawdbot_bus::Turn;

    fn entry(turn: Option<(&str, u64)>) -> Entry {
        Entry {
            id: String::new(),
            payload: Vec::new(),
            traceparent: String::new(),
            deliveries: 1,
            turn: turn.map(|(key, seq)| Turn {
                key: key.to_string(),
                seq,
            }),
        }
    }

    #[test]
    fn a_batch_is_cut_into_runs_of_consecutive_turns_per_conversation() {
        let entries = [
            entry(Some(("a", 4))),
            entry(None),
            entry(Some(("a", 2))),
            entry(Some(("b", 7))),
            entry(Some(("a", 3))),
            entry(Some(("a", 6))),
        ];
        let mut chains = chains(&entries);
        chains.sort_by_key(|c| (c.key.clone(), c.first_seq));
        let summary: Vec<(Option<&str>, u64, Vec<usize>)> = chains
            .iter()
            .map(|c| (c.key.as_deref(), c.first_seq, c.members.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (None, 0, vec![1]),
                (Some("a"), 2, vec![2, 4, 0]),
                // Turn 5 is elsewhere: 6 waits for it.
                (Some("a"), 6, vec![5]),
                (Some("b"), 7, vec![3]),
            ]
        );
    }
}
