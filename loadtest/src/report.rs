//! Turns what was sent and what the mock received into one table row.

use std::collections::HashMap;

use clawdbot_testkit::mock::onebot::SentMessage;
use hdrhistogram::Histogram;

use crate::generator::Sent;
use crate::{Args, Mode};

/// What was measured of the processes themselves.
pub struct Startup {
    pub ready_ms: u64,
    pub idle_rss: Vec<(String, f64)>,
    pub peak_rss: Vec<(String, f64)>,
}

pub struct Report {
    mode: String,
    offered: String,
    accepted: usize,
    echoes_per_sec: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    lost: usize,
    duplicated: usize,
    refused: u64,
    rss: String,
    idle_rss: String,
    ready_ms: u64,
    /// How long history took, after the last reply, to have written every message and reply
    /// (none: history off, or the embedded bus).
    pub history_catch_up: Option<std::time::Duration>,
}

/// Formats `role MiB` for each process.
fn per_role(values: &[(String, f64)]) -> String {
    values
        .iter()
        .map(|(role, mib)| format!("{role} {mib:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    pub fn compute(args: &Args, sent: &Sent, replies: &[SentMessage], startup: Startup) -> Self {
        let sent_at: HashMap<u64, std::time::Instant> = sent.accepted.iter().copied().collect();
        let mut received: HashMap<u64, usize> = HashMap::new();
        let mut latency =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        let mut last_reply = None;
        for reply in replies {
            let Some(seq) = reply
                .text()
                .strip_prefix("lt")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let count = received.entry(seq).or_default();
            *count += 1;
            if *count == 1
                && let Some(at) = sent_at.get(&seq)
            {
                let micros = reply.received_at.saturating_duration_since(*at).as_micros() as u64;
                let _recorded = latency.record(micros.max(1));
            }
            last_reply = Some(
                last_reply.map_or(reply.received_at, |last: std::time::Instant| {
                    last.max(reply.received_at)
                }),
            );
        }
        let lost = sent_at
            .keys()
            .filter(|seq| !received.contains_key(seq))
            .count();
        let duplicated = received.values().filter(|&&n| n > 1).count();
        let answered = received
            .keys()
            .filter(|seq| sent_at.contains_key(seq))
            .count();
        let elapsed = match (sent.started, last_reply) {
            (Some(start), Some(end)) => end
                .saturating_duration_since(start)
                .as_secs_f64()
                .max(0.001),
            _ => args.duration as f64,
        };
        let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        Self {
            mode: format!("{}, {:?}", mode_label(args), args.path).to_lowercase(),
            offered: if args.rate == 0 {
                format!("closed loop x{}", args.concurrency)
            } else {
                format!("{}/s", args.rate)
            },
            accepted: sent.accepted(),
            echoes_per_sec: answered as f64 / elapsed,
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            lost,
            duplicated,
            refused: sent.refused,
            rss: per_role(&startup.peak_rss),
            idle_rss: per_role(&startup.idle_rss),
            ready_ms: startup.ready_ms,
            history_catch_up: None,
        }
    }

    pub fn header() -> String {
        "| mode | offered | accepted | echoes/s | p50 ms | p95 ms | p99 ms | lost | duplicated | refused | ready ms | idle RSS MiB | peak RSS MiB | history caught up s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".to_string()
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            self.mode,
            self.offered,
            self.accepted,
            self.echoes_per_sec,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.lost,
            self.duplicated,
            self.refused,
            self.ready_ms,
            self.idle_rss,
            self.rss,
            self.history_catch_up
                .map_or_else(|| "—".to_string(), |d| format!("{:.1}", d.as_secs_f64()))
        )
    }
}

/// Names the deployment measured (and the echo skill, when it is a WebAssembly component).
fn mode_label(args: &Args) -> String {
    let mut label = deployment_label(args);
    if args.wasm_echo.is_some() {
        label.push_str(", wasm echo");
    }
    if args.slow_clients > 0 {
        label.push_str(&format!(", {} slow clients", args.slow_clients));
    }
    if let Some(secs) = args.order_wait_secs {
        label.push_str(&format!(", order_wait {secs}s"));
    }
    match args.loop_guard_max_replies {
        Some(0) => label.push_str(", loop guard off"),
        Some(max) => label.push_str(&format!(", loop guard {max}")),
        None => {}
    }
    label
}

fn deployment_label(args: &Args) -> String {
    match args.mode {
        Mode::Cluster => format!(
            "cluster ({} workers{})",
            args.workers,
            if args.history {
                match args.history_store {
                    crate::HistoryStoreKind::Postgresql => ", history",
                    crate::HistoryStoreKind::Mongodb => ", history on MongoDB",
                    crate::HistoryStoreKind::Custom => ", history on the example sink",
                }
            } else {
                ""
            }
        ),
        Mode::Up => format!("up{}", if args.history { " (history)" } else { "" }),
        Mode::Embedded => format!(
            "up embedded{}",
            if args.history {
                " (SQLite history)"
            } else {
                ""
            }
        ),
    }
}
