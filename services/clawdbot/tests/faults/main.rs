//! The fault-injection suite: each case runs traffic through a fleet of separate processes,
//! breaks something on purpose in the middle of it, and counts — independently, at the
//! platform mock — what every accepted message got: answered, lost, duplicated, out of order,
//! and how long after the fault the last owed reply arrived.
//!
//! Each case starts from a clean state (its own Redis key space or server, Postgres schema and
//! mock). Set `CLAWDBOT_FAULT_REPORT` to a file to collect the rows as a Markdown table.

#[path = "../common/mod.rs"]
mod common;
mod fleet;
mod traffic;

use std::time::{Duration, Instant};

use clawdbot_testkit::Persistence;
use fleet::{Fleet, FleetOptions, kill_9, signal};
use tokio::sync::Semaphore;
use traffic::{Load, Traffic, report, tally};

/// Cases at once: each runs four processes and its traffic on a two-core machine.
static CASES_AT_ONCE: Semaphore = Semaphore::const_new(2);

const LOAD: Load = Load {
    per_second: 100,
    seconds: 8,
    conversations: 20,
};

/// How long after the traffic a case waits for the last owed reply.
const PATIENCE: Duration = Duration::from_secs(45);

/// Asserts nothing was lost, repeated or reordered, with every process's log tail otherwise.
fn assert_clean(tally: &traffic::Tally, fleet: &Fleet) {
    assert_eq!(
        (tally.lost, tally.duplicated, tally.out_of_order),
        (0, 0, 0),
        "{tally:?}\n{}",
        fleet.logs()
    );
}

/// Runs `load` into `fleet`, runs the `fault` block a third of the way in, and returns the
/// tally (recovery counted from the fault's end: the `Instant` the block evaluates to).
macro_rules! under_load {
    ($fleet:ident, $load:expr, $fault:block) => {{
        let traffic = Traffic::start($fleet.ingress_port(), $load);
        tokio::time::sleep(Duration::from_secs(u64::from($load.seconds) / 3)).await;
        let fault_over: Instant = $fault;
        let (accepted, refused) = traffic.finish().await;
        let tally = tally(&$fleet.setup.mock, &accepted, fault_over, PATIENCE).await;
        (tally, refused)
    }};
}

#[tokio::test]
async fn worker_killed_mid_traffic_loses_and_repeats_nothing() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let mut fleet = Fleet::start(FleetOptions::default()).await;
    // The platform takes a while to answer, so the kill lands in the middle of calls.
    fleet
        .setup
        .mock
        .answer_late(usize::MAX, Duration::from_millis(300));
    let (tally, _refused) = under_load!(fleet, LOAD, {
        if let Some(mut worker) = fleet.workers[0].take() {
            kill_9(&mut worker).await;
        }
        Instant::now()
    });
    report("worker kill -9 (platform answering in 300 ms)", &tally);
    assert_clean(&tally, &fleet);
}

#[tokio::test]
async fn egress_killed_and_restarted_loses_nothing() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let mut fleet = Fleet::start(FleetOptions::default()).await;
    fleet
        .setup
        .mock
        .answer_late(usize::MAX, Duration::from_millis(100));
    let (tally, _refused) = under_load!(fleet, LOAD, {
        if let Some(mut egress) = fleet.egress.take() {
            kill_9(&mut egress).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        fleet.start_egress().await;
        Instant::now()
    });
    report("egress kill -9, restarted 3 s later", &tally);
    // The one window no protocol closes on a platform without idempotency keys: a send that
    // reached the platform before the kill and whose answer did not come back. It is bounded
    // by the sends in flight at that instant: the rate times the platform's latency (100 ms
    // here: about 10), never a lease's worth.
    assert_eq!(
        (tally.lost, tally.out_of_order),
        (0, 0),
        "{tally:?}\n{}",
        fleet.logs()
    );
    let in_flight = LOAD.per_second as usize / 10;
    assert!(
        tally.duplicated <= 3 * in_flight,
        "{tally:?}\n{}",
        fleet.logs()
    );
    assert!(
        tally.recovery < Duration::from_secs(15),
        "every message answered within 15 s of egress's return: {tally:?}"
    );
}

#[tokio::test]
async fn platform_outage_of_ten_seconds_recovers_fast() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let fleet = Fleet::start(FleetOptions::default()).await;
    let load = Load {
        seconds: 12,
        ..LOAD
    };
    let (tally, _refused) = under_load!(fleet, load, {
        fleet.setup.mock.outage(500, Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(10)).await;
        Instant::now()
    });
    report("platform answering 500 for 10 s", &tally);
    assert_clean(&tally, &fleet);
    assert!(
        tally.recovery < Duration::from_secs(30),
        "every message answered within 30 s of the platform's return: {tally:?}"
    );
}

#[tokio::test]
async fn platform_answering_after_the_timeout_gets_no_second_send() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let fleet = Fleet::start(FleetOptions {
        onebot: "  timeout_secs: 1\n  late_answer_secs: 10\n",
        ..FleetOptions::default()
    })
    .await;
    let (tally, _refused) = under_load!(fleet, LOAD, {
        // The next 50 sends are taken at once and answered after 3 s: past the timeout.
        fleet.setup.mock.answer_late(50, Duration::from_secs(3));
        Instant::now()
    });
    report("platform accepting, answering after the timeout", &tally);
    assert_clean(&tally, &fleet);
}

#[tokio::test]
async fn worker_frozen_for_ten_seconds_loses_and_repeats_nothing() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let fleet = Fleet::start(FleetOptions::default()).await;
    fleet
        .setup
        .mock
        .answer_late(usize::MAX, Duration::from_millis(100));
    let (tally, _refused) = under_load!(fleet, LOAD, {
        if let Some(worker) = &fleet.workers[0] {
            signal(worker, "STOP");
            tokio::time::sleep(Duration::from_secs(10)).await;
            signal(worker, "CONT");
        }
        Instant::now()
    });
    report("worker frozen (SIGSTOP) 10 s", &tally);
    assert_clean(&tally, &fleet);
}

async fn redis_restart(persistence: Persistence) -> (traffic::Tally, Fleet) {
    let mut fleet = Fleet::start(FleetOptions {
        private_redis: Some(persistence),
        ..FleetOptions::default()
    })
    .await;
    let (tally, _refused) = under_load!(fleet, LOAD, {
        if let Some(redis) = fleet.redis.as_mut() {
            redis.kill();
            tokio::time::sleep(Duration::from_secs(1)).await;
            redis.restart().await;
        }
        Instant::now()
    });
    (tally, fleet)
}

#[tokio::test]
async fn redis_killed_and_restarted_with_fsync_always_loses_nothing() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let (tally, fleet) = redis_restart(Persistence::AofAlways).await;
    report("Redis kill -9 + restart, appendfsync always", &tally);
    assert_eq!(
        (tally.lost, tally.out_of_order),
        (0, 0),
        "{tally:?}\n{}",
        fleet.logs()
    );
    assert!(tally.duplicated <= 5, "{tally:?}\n{}", fleet.logs());
}

#[tokio::test]
async fn redis_killed_and_restarted_with_fsync_everysec_recovers() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let (tally, fleet) = redis_restart(Persistence::AofEverySec).await;
    report("Redis kill -9 + restart, appendfsync everysec", &tally);
    // everysec may lose the last second of writes: at most that second's messages.
    assert!(
        tally.lost <= LOAD.per_second as usize,
        "{tally:?}\n{}",
        fleet.logs()
    );
}

#[tokio::test]
async fn ingress_killed_and_restarted_loses_nothing_it_accepted() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let mut fleet = Fleet::start(FleetOptions::default()).await;
    let (tally, refused) = under_load!(fleet, LOAD, {
        kill_9(&mut fleet.ingress).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.restart_ingress().await;
        Instant::now()
    });
    report("ingress kill -9, restarted 1 s later", &tally);
    // Posts while it was down were refused (the platform retries those); only 2xx count.
    assert!(refused > 0, "the kill refused some posts");
    assert_clean(&tally, &fleet);
}

#[tokio::test]
async fn sigterm_of_each_role_under_load_loses_and_repeats_nothing() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let mut fleet = Fleet::start(FleetOptions::default()).await;
    fleet
        .setup
        .mock
        .answer_late(usize::MAX, Duration::from_millis(100));
    let load = Load {
        seconds: 12,
        ..LOAD
    };
    let (tally, _refused) = under_load!(fleet, load, {
        // One after the other, each replaced as a rolling update would.
        if let Some(mut worker) = fleet.workers[0].take() {
            worker.terminate().await;
        }
        let worker = fleet.start_worker().await;
        fleet.workers[0] = Some(worker);
        if let Some(mut egress) = fleet.egress.take() {
            egress.terminate().await;
        }
        fleet.start_egress().await;
        fleet.ingress.terminate().await;
        fleet.restart_ingress().await;
        Instant::now()
    });
    report("SIGTERM of worker, egress, ingress in turn", &tally);
    assert_clean(&tally, &fleet);
}

#[tokio::test]
async fn postgres_away_for_twenty_seconds_delays_history_only() {
    let _slot = CASES_AT_ONCE.acquire().await.expect("slot");
    let fleet = Fleet::start(FleetOptions {
        postgres_proxy: true,
        ..FleetOptions::default()
    })
    .await;
    let load = Load {
        seconds: 24,
        per_second: 50,
        ..LOAD
    };
    let (tally, _refused) = under_load!(fleet, load, {
        if let Some(proxy) = &fleet.postgres_proxy {
            proxy.cut();
            tokio::time::sleep(Duration::from_secs(20)).await;
            proxy.restore();
        }
        Instant::now()
    });
    report("Postgres away 20 s", &tally);
    // Replies do not need Postgres.
    assert_clean(&tally, &fleet);
    // History catches up, every message and reply once.
    let expected = tally.accepted * 2;
    let catching_up = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut rows = 0;
    while tokio::time::Instant::now() < deadline {
        rows = history_rows(&fleet).await;
        if rows >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(rows, expected, "every message and reply in history, once");
    eprintln!(
        "  history complete {:.1} s after the tally ({:.1} s after Postgres came back)",
        catching_up.elapsed().as_secs_f64(),
        catching_up.elapsed().as_secs_f64() + tally.recovery.as_secs_f64()
    );
    let distinct = fleet
        .setup
        .postgres()
        .query(
            "SELECT count(DISTINCT (direction, id)) FROM messages WHERE conversation_id LIKE '70%'",
        )
        .await;
    let distinct = distinct
        .first()
        .map_or(0, |row| row.get::<_, i64>(0) as usize);
    assert_eq!(distinct, rows, "no row twice");
}

/// History rows of the fleet's conversations (both directions).
async fn history_rows(fleet: &Fleet) -> usize {
    let rows = fleet
        .setup
        .postgres()
        .query("SELECT count(*) FROM messages WHERE conversation_id LIKE '70%'")
        .await;
    rows.first().map_or(0, |row| row.get::<_, i64>(0) as usize)
}
