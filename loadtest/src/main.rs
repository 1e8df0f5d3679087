//! The load generator and benchmark report (OneBot, sandbox and WeCom paths).
//!
//! Starts the mock OneBot HTTP API (the same one the tests use) and clawdbot itself from the
//! release binary — in cluster mode (one ingress, N workers, one egress as separate processes)
//! or as one `clawdbot up` process — against the local Redis and Postgres (a fresh key prefix
//! and schema, removed afterwards). Then it sends signed `/echo` events at a fixed rate or
//! concurrency for a bounded time, waits for the last replies, and prints one table row:
//! echoes/s, latency from event sent to reply at the mock, lost, duplicated, and each clawdbot
//! process's peak RSS. Traffic goes to 127.0.0.1 only and stops by itself.

mod decode;
mod generator;
mod history_bench;
mod processes;
mod report;
mod slow_clients;
mod sse;
mod wasm_bench;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clawdbot_testkit::mock::onebot::MockOneBot;
use clawdbot_testkit::mock::qq::MockQq;
use clawdbot_testkit::mock::wecom::{MockWeCom, MockWeComSettings};
use clawdbot_testkit::{TestPostgres, TestRedis};

/// Benchmark clawdbot's OneBot echo path end to end.
#[derive(Debug, Parser)]
pub struct Args {
    /// `cluster` (one ingress, --workers workers, one egress) or `up` (one process).
    #[arg(long, default_value = "cluster")]
    pub mode: Mode,
    /// Events per second to offer; 0 means closed loop with --concurrency.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// In-flight requests (closed loop when --rate 0, the cap on in-flight otherwise).
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// How long to send, in seconds (at most 300).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Worker processes in cluster mode.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Write history (the `history` consumer group).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub history: bool,
    /// Where history goes in cluster and up modes: `postgresql`, `mongodb` (a database of the
    /// run's own at CLAWDBOT_TEST_MONGODB_URL, SecantusDB by default) or `custom` (the
    /// example history sink, served by the loadtest); the rest stays on Postgres. After the
    /// traffic, the run waits for history to catch up and reports how long that took.
    #[arg(long, value_enum, default_value = "postgresql")]
    pub history_store: HistoryStoreKind,
    /// Which platform the events come through: `onebot` (signed events in, replies to the
    /// mock OneBot API), `sandbox` (the chat page's messages in, replies on its live feed) or
    /// `wecom` (encrypted WeCom app callbacks in, replies to the mock WeCom `message/send`) or
    /// `qq` (Ed25519-signed QQ group @ events in, passive replies at the mock open platform).
    #[arg(long, default_value = "onebot")]
    pub path: PathKind,
    /// The clawdbot binary.
    #[arg(long, default_value = "target/release/clawdbot")]
    pub bin: std::path::PathBuf,
    /// Start nothing: time the WeCom inbound alone (verify, decrypt, decode) in a loop.
    #[arg(long)]
    pub decode_bench: bool,
    /// Start nothing: write this many history rows to each store backend (PostgreSQL, SQLite,
    /// MongoDB on SecantusDB) through the worker's HistoryStore, and print rows/s.
    #[arg(long)]
    pub history_bench: Option<usize>,
    /// Before sending, load this `.skill` archive (a WebAssembly `echo`, e.g. built from
    /// examples/skills/echo-rust) so the component answers instead of the built-in echo.
    #[arg(long)]
    pub wasm_echo: Option<std::path::PathBuf>,
    /// Start nothing: time a component skill (`.wasm`) on its own, loading and per call.
    #[arg(long)]
    pub wasm_bench: Option<std::path::PathBuf>,
    /// The skill name the `--wasm-bench` component calls itself.
    #[arg(long, default_value = "echo")]
    pub wasm_skill: String,
    /// Hold this many slowloris connections open to the ingress for the whole run (reopened
    /// when the server closes them), to measure the echo path beside them.
    #[arg(long, default_value_t = 0)]
    pub slow_clients: usize,
    /// Set the workers' `order_wait_secs` (0 turns per-conversation order off), to measure
    /// what ordering costs; unset, clawdbot's default.
    #[arg(long)]
    pub order_wait_secs: Option<u64>,
    /// Set the workers' `loop_guard.max_replies` (0 turns the loop guard off), to measure what
    /// it costs; unset, clawdbot's default (on).
    #[arg(long)]
    pub loop_guard_max_replies: Option<u64>,
    /// Print the table header before the row.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub header: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum PathKind {
    Onebot,
    Sandbox,
    Wecom,
    Qq,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum HistoryStoreKind {
    Postgresql,
    Mongodb,
    Custom,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Mode {
    /// One ingress, --workers workers, one egress; Redis and Postgres.
    Cluster,
    /// `clawdbot up` on Redis and Postgres.
    Up,
    /// `clawdbot up` on the in-process bus and SQLite: nothing else installed.
    Embedded,
}

/// Waits until the history writer has written every entry of both streams (its group has
/// nothing pending and no lag), at most 120 s; returns how long that took after the replies.
async fn history_catch_up(redis: &TestRedis) -> anyhow::Result<Duration> {
    use clawdbot_bus::Streams;
    let started = tokio::time::Instant::now();
    loop {
        let mut behind = 0;
        for stream in [
            clawdbot_bus::Stream::Inbound,
            clawdbot_bus::Stream::Outbound,
        ] {
            let stats = redis.bus.stats(stream).await?;
            behind += stats
                .groups
                .iter()
                .filter(|(group, _, _)| group == clawdbot_bus::HISTORY_GROUP)
                .map(|(_, pending, lag)| pending + lag)
                .sum::<u64>();
        }
        if behind == 0 || started.elapsed() > Duration::from_secs(120) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.decode_bench {
        return decode::run(200_000);
    }
    if let Some(rows) = args.history_bench {
        return history_bench::run(rows).await;
    }
    if let Some(component) = &args.wasm_bench {
        return wasm_bench::run(component, &args.wasm_skill, "/echo hello 你好", 100_000).await;
    }
    anyhow::ensure!(args.duration <= 300, "--duration is capped at 300 s");
    if args.slow_clients > 0 {
        // Each slow client is a descriptor here.
        let limit = rlimit::increase_nofile_limit(u64::MAX).context("open-file limit")?;
        anyhow::ensure!(
            limit > args.slow_clients as u64 + 1024,
            "--slow-clients {} needs an open-file limit above {} (it is {limit})",
            args.slow_clients,
            args.slow_clients + 1024
        );
    }
    anyhow::ensure!(
        args.bin.exists(),
        "no clawdbot binary at `{}`: run `cargo build --release` first",
        args.bin.display()
    );
    let redis = TestRedis::new().await;
    let postgres = TestPostgres::new().await;
    let mock = MockOneBot::start(Some(processes::TOKEN)).await;
    let wecom = MockWeCom::start(MockWeComSettings::default()).await;
    let qq = MockQq::start(processes::QQ_APP_ID, processes::QQ_SECRET).await;
    let mocks = processes::Mocks {
        onebot: &mock,
        wecom: &wecom,
        qq: &qq,
    };
    let cluster = processes::Cluster::start(&args, &redis, &postgres, &mocks)
        .await
        .context("starting clawdbot")?;

    let feed = match args.path {
        PathKind::Sandbox => Some(
            sse::SseCollector::start(cluster.ingress_port)
                .await
                .context("opening the sandbox feed")?,
        ),
        PathKind::Onebot | PathKind::Wecom | PathKind::Qq => None,
    };
    let count = || match (&feed, args.path) {
        (Some(feed), _) => feed.count(),
        (None, PathKind::Wecom) => wecom.sent_count(),
        (None, PathKind::Qq) => qq.sent_count(),
        (None, _) => mock.sent_count(),
    };
    let slow = (args.slow_clients > 0)
        .then(|| slow_clients::SlowClients::start(cluster.ingress_port, args.slow_clients));
    if slow.is_some() {
        // Let them connect before the traffic starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let sent = generator::run(&args, cluster.ingress_port).await;
    if let Some(slow) = &slow {
        eprintln!("slow clients closed by the server: {}", slow.stop());
    }
    // Let the tail drain: wait until every accepted event is answered, or nothing has arrived
    // for 3 s, or 20 s passed.
    let accepted = sent.accepted();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (mut seen, mut last_progress) = (count(), tokio::time::Instant::now());
    while count() < accepted && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count();
        if now != seen {
            (seen, last_progress) = (now, tokio::time::Instant::now());
        } else if last_progress.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let startup = report::Startup {
        ready_ms: cluster.ready_ms,
        idle_rss: cluster.idle_rss.clone(),
        peak_rss: cluster.peak_rss(),
    };
    let replies = match (&feed, args.path) {
        (Some(feed), _) => feed.replies(),
        (None, PathKind::Wecom) => wecom.sent().iter().map(generator::as_reply).collect(),
        (None, PathKind::Qq) => qq.sent().iter().map(generator::qq_reply).collect(),
        (None, _) => mock.sent(),
    };
    let history_catch_up = if args.history && args.mode != Mode::Embedded {
        Some(history_catch_up(&redis).await?)
    } else {
        None
    };
    let mut report = report::Report::compute(&args, &sent, &replies, startup);
    report.history_catch_up = history_catch_up;
    drop(cluster);
    if args.header {
        println!("{}", report::Report::header());
    }
    println!("{}", report.row());
    Ok(())
}
