//! The plain data behind the in-process bus, and every operation on it (no IO, no awaits).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::{DeadLetter, Entry, Publish, Published, Stream, StreamStats};

/// Entries kept in a stream that no group reads (outbound records with history off, dead
/// letters): the newest ones, so that memory stays bounded.
pub const KEEP_WITHOUT_READERS: usize = 100_000;

/// Broadcasts buffered per channel before a slow subscriber misses some (live views absorb
/// bursts of a second or so at full rate).
const BROADCAST_BUFFER: usize = 16_384;

/// A stream id: (milliseconds, sequence), ordered like Redis's `ms-seq`.
pub(crate) type EntryId = (u64, u64);

pub(crate) fn format_id((ms, seq): EntryId) -> String {
    format!("{ms}-{seq}")
}

pub(crate) fn parse_id(id: &str) -> Option<EntryId> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

pub(crate) struct Stored {
    pub payload: Vec<u8>,
    pub traceparent: String,
    /// Extra fields (dead letters carry their reason and origin).
    pub fields: Vec<(String, String)>,
}

pub(crate) struct Pending {
    pub consumer: String,
    pub delivered_at: Instant,
    pub deliveries: u64,
}

#[derive(Default)]
pub(crate) struct Group {
    /// The last entry handed out by a read of new entries.
    pub last_delivered: EntryId,
    pub pending: BTreeMap<EntryId, Pending>,
}

#[derive(Default)]
pub(crate) struct StreamState {
    pub entries: BTreeMap<EntryId, Stored>,
    pub last_id: EntryId,
    pub groups: HashMap<String, Group>,
}

/// What a reply's ledger record holds.
pub(crate) enum LedgerValue {
    Lease(String),
    Done(String),
}

#[derive(Default)]
pub(crate) struct State {
    streams: HashMap<Stream, StreamState>,
    dedupe: HashMap<String, Instant>,
    /// Dedupe keys in expiry order (the window is the same for all), to forget them cheaply.
    dedupe_order: VecDeque<(Instant, String)>,
    pub ledger: HashMap<String, (LedgerValue, Instant)>,
    /// Ledger writes since the last sweep of expired records.
    pub ledger_writes: usize,
    broadcasts: HashMap<String, tokio::sync::broadcast::Sender<std::sync::Arc<Vec<u8>>>>,
    /// Heartbeats: (value, expiry), by instance.
    pub heartbeats: HashMap<String, (String, Instant)>,
    /// Rate-limit counters: (uses, end of window).
    rates: HashMap<String, (u32, Instant)>,
    /// Per-conversation order, by order key.
    pub turns: HashMap<String, TurnRecord>,
}

/// A conversation's numbering and each group's progress in it (see [`crate::Turns`]).
pub(crate) struct TurnRecord {
    pub seq: u64,
    pub done: HashMap<String, u64>,
    pub expiry: Instant,
}

impl State {
    /// Returns the live turn record of `key`, if any.
    pub fn turn(&mut self, key: &str, now: Instant) -> Option<&mut TurnRecord> {
        self.turns.get_mut(key).filter(|record| record.expiry > now)
    }

    /// Hands out the next turn of `key`.
    fn next_turn(&mut self, key: &str, now: Instant) -> u64 {
        if self.turns.len() > 100_000 {
            self.turns.retain(|_, record| record.expiry > now);
        }
        let record = self.turns.entry(key.to_string()).or_insert(TurnRecord {
            seq: 0,
            done: HashMap::new(),
            expiry: now,
        });
        if record.expiry <= now {
            record.seq = 0;
            record.done.clear();
        }
        record.seq += 1;
        record.expiry = now + crate::TURN_TTL;
        record.seq
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl State {
    /// Counts one use of `key` in its fixed window; true while within `limit`.
    pub fn rate_limit(&mut self, key: &str, limit: u32, window: Duration, now: Instant) -> bool {
        if self.rates.len() > 100_000 {
            self.rates.retain(|_, (_, expiry)| *expiry > now);
        }
        let entry = self
            .rates
            .entry(key.to_string())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.0 <= limit
    }

    /// Returns the sender of a broadcast channel, creating it on first use.
    pub fn broadcast_sender(
        &mut self,
        channel: &str,
    ) -> tokio::sync::broadcast::Sender<std::sync::Arc<Vec<u8>>> {
        self.broadcasts
            .entry(channel.to_string())
            .or_insert_with(|| tokio::sync::broadcast::channel(BROADCAST_BUFFER).0)
            .clone()
    }

    pub fn stream_mut(&mut self, stream: Stream) -> &mut StreamState {
        self.streams.entry(stream).or_default()
    }

    pub fn publish(
        &mut self,
        item: &Publish,
        now: Instant,
        window: Duration,
        max_len: u64,
    ) -> Published {
        while let Some((expiry, _)) = self.dedupe_order.front() {
            if *expiry > now {
                break;
            }
            if let Some((_, key)) = self.dedupe_order.pop_front()
                && self.dedupe.get(&key).is_some_and(|at| *at <= now)
            {
                self.dedupe.remove(&key);
            }
        }
        if let Some(key) = &item.dedupe_key
            && self.dedupe.get(key).is_some_and(|expiry| *expiry > now)
        {
            return Published::Duplicate;
        }
        if max_len > 0 && self.stream_mut(Stream::Inbound).entries.len() as u64 >= max_len {
            return Published::Full;
        }
        let fields = match &item.order_key {
            Some(key) => vec![
                ("tk".to_string(), key.clone()),
                ("ts".to_string(), self.next_turn(key, now).to_string()),
            ],
            None => Vec::new(),
        };
        let id = self.append(
            Stream::Inbound,
            item.payload.clone(),
            item.traceparent.clone(),
            fields,
        );
        if let Some(key) = &item.dedupe_key {
            self.dedupe.insert(key.clone(), now + window);
            self.dedupe_order.push_back((now + window, key.clone()));
        }
        Published::Appended(id)
    }

    pub fn append(
        &mut self,
        stream: Stream,
        payload: Vec<u8>,
        traceparent: String,
        fields: Vec<(String, String)>,
    ) -> String {
        let state = self.stream_mut(stream);
        let ms = now_ms();
        let id = if ms > state.last_id.0 {
            (ms, 0)
        } else {
            (state.last_id.0, state.last_id.1 + 1)
        };
        state.last_id = id;
        state.entries.insert(
            id,
            Stored {
                payload,
                traceparent,
                fields,
            },
        );
        if state.groups.is_empty() && state.entries.len() > KEEP_WITHOUT_READERS {
            state.entries.pop_first();
        }
        format_id(id)
    }
}

impl StreamState {
    pub fn ensure_group(&mut self, group: &str) {
        self.groups.entry(group.to_string()).or_default();
    }

    fn entry(&self, id: EntryId, deliveries: u64) -> Option<Entry> {
        self.entries.get(&id).map(|stored| {
            let field = |name: &str| {
                stored
                    .fields
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            };
            let seq = field("ts").and_then(|seq| seq.parse().ok());
            Entry {
                id: format_id(id),
                payload: stored.payload.clone(),
                traceparent: stored.traceparent.clone(),
                deliveries,
                turn: field("tk")
                    .zip(seq)
                    .map(|(key, seq)| crate::Turn { key, seq }),
            }
        })
    }

    /// Hands out up to `count` entries the group has not seen, as pending for `consumer`.
    pub fn read_new(
        &mut self,
        group: &str,
        consumer: &str,
        count: usize,
        now: Instant,
    ) -> Vec<Entry> {
        let Self {
            entries, groups, ..
        } = self;
        let group = groups.entry(group.to_string()).or_default();
        let start = (
            group.last_delivered.0,
            group.last_delivered.1.saturating_add(1),
        );
        let ids: Vec<EntryId> = entries
            .range(start..)
            .take(count)
            .map(|(id, _)| *id)
            .collect();
        if let Some(last) = ids.last() {
            group.last_delivered = *last;
        }
        for id in &ids {
            group.pending.insert(
                *id,
                Pending {
                    consumer: consumer.to_string(),
                    delivered_at: now,
                    deliveries: 1,
                },
            );
        }
        ids.into_iter().filter_map(|id| self.entry(id, 1)).collect()
    }

    /// Claims up to `count` entries pending for at least `min_idle`, for `consumer`.
    pub fn reclaim(
        &mut self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
        now: Instant,
    ) -> Vec<Entry> {
        let Some(group) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        let mut claimed = Vec::new();
        let mut gone = Vec::new();
        for (id, pending) in group.pending.iter_mut() {
            if claimed.len() >= count {
                break;
            }
            if now.saturating_duration_since(pending.delivered_at) < min_idle {
                continue;
            }
            if !self.entries.contains_key(id) {
                gone.push(*id);
                continue;
            }
            pending.consumer = consumer.to_string();
            pending.delivered_at = now;
            pending.deliveries += 1;
            claimed.push((*id, pending.deliveries));
        }
        for id in gone {
            group.pending.remove(&id);
        }
        claimed
            .into_iter()
            .filter_map(|(id, deliveries)| self.entry(id, deliveries))
            .collect()
    }

    /// Marks pending entries as delivered now to `consumer`, without counting a delivery.
    pub fn keep(&mut self, group: &str, consumer: &str, ids: &[String], now: Instant) {
        let Some(group) = self.groups.get_mut(group) else {
            return;
        };
        for id in ids.iter().filter_map(|id| parse_id(id)) {
            if let Some(pending) = group.pending.get_mut(&id) {
                pending.consumer = consumer.to_string();
                pending.delivered_at = now;
            }
        }
    }

    pub fn ack(&mut self, group: &str, ids: &[String]) {
        if let Some(group) = self.groups.get_mut(group) {
            for id in ids.iter().filter_map(|id| parse_id(id)) {
                group.pending.remove(&id);
            }
        }
        self.trim();
    }

    /// The oldest entry some group still needs: its oldest pending entry, or the first it has
    /// not read. `None` when no group reads the stream.
    fn oldest_needed(&self) -> Option<EntryId> {
        self.groups
            .values()
            .map(|group| match group.pending.first_key_value() {
                Some((id, _)) => *id,
                None => (
                    group.last_delivered.0,
                    group.last_delivered.1.saturating_add(1),
                ),
            })
            .min()
    }

    /// Drops what every group has acknowledged; returns how many entries went.
    pub fn trim(&mut self) -> u64 {
        let Some(oldest) = self.oldest_needed() else {
            let excess = self.entries.len().saturating_sub(KEEP_WITHOUT_READERS);
            for _ in 0..excess {
                self.entries.pop_first();
            }
            return excess as u64;
        };
        let mut dropped = 0;
        while let Some((id, _)) = self.entries.first_key_value() {
            if *id >= oldest {
                break;
            }
            self.entries.pop_first();
            dropped += 1;
        }
        dropped
    }

    pub fn stats(&self) -> StreamStats {
        StreamStats {
            length: self.entries.len() as u64,
            groups: self
                .groups
                .iter()
                .map(|(name, group)| {
                    let start = (
                        group.last_delivered.0,
                        group.last_delivered.1.saturating_add(1),
                    );
                    let lag = self.entries.range(start..).count() as u64;
                    (name.clone(), group.pending.len() as u64, lag)
                })
                .collect(),
        }
    }

    /// Up to `limit` entries after `after` (`""`: from the first), as dead letters.
    pub fn dead_letters(&self, after: &str, limit: usize) -> Vec<DeadLetter> {
        let after = parse_id(after);
        self.entries
            .iter()
            .filter(|(id, _)| after.is_none_or(|after| **id > after))
            .take(limit)
            .map(|(id, stored)| dead_letter(*id, stored))
            .collect()
    }

    /// The entry `id`, as a dead letter.
    pub fn dead_letter(&self, id: &str) -> Option<DeadLetter> {
        let id = parse_id(id)?;
        self.entries.get(&id).map(|stored| dead_letter(id, stored))
    }

    /// Removes the entry `id` and returns it.
    pub fn take_dead_letter(&mut self, id: &str) -> Option<Stored> {
        self.entries.remove(&parse_id(id)?)
    }

    /// Removes the entries written before `ms`; returns how many.
    pub fn remove_before(&mut self, ms: u64) -> u64 {
        let keep = self.entries.split_off(&(ms, 0));
        let removed = self.entries.len() as u64;
        self.entries = keep;
        removed
    }
}

fn dead_letter(id: EntryId, stored: &Stored) -> DeadLetter {
    let field = |name: &str| {
        stored
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    DeadLetter {
        id: format_id(id),
        payload: stored.payload.clone(),
        reason: field("reason"),
        source_id: field("source_id"),
        group: field("group"),
        deliveries: field("deliveries").parse().unwrap_or_default(),
    }
}
