//! The spine with each role in its own process: several ingress and worker processes side by
//! side, a worker dying mid-batch, Redis going away, shutdown.

mod common;

use clawdbot_bus::Streams;
use std::collections::HashMap;
use std::time::Duration;

use clawdbot_bus::{SKILLS_GROUP, Stream};
use clawdbot_core::proto::egress_client::EgressClient;
use clawdbot_core::proto::{Envelope, Segment, SendRequest};
use clawdbot_testkit::PrivateRedis;
use common::{Backend, Clawdbot, Ports, Setup};
use prost::Message;

const WAIT: Duration = Duration::from_secs(15);

fn count_texts(setup: &Setup) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in setup.mock.sent() {
        *counts.entry(message.text()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn entries_left_by_a_dead_worker_are_reclaimed_and_answered_exactly_once() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.default_config(&ports);
    let _ingress = Clawdbot::start(&["ingress", "--platform", "onebot"], &config, &ports).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;

    // A worker takes a batch and dies before acking any of it.
    setup
        .redis()
        .bus
        .ensure_group(Stream::Inbound, SKILLS_GROUP)
        .await
        .expect("group");
    let total = 20;
    for id in 0..total {
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 777, id, &format!("/echo m{id}"))
                .await,
            204
        );
    }
    let mut dead = setup
        .redis()
        .bus
        .consumer(Stream::Inbound, SKILLS_GROUP, "dead-worker")
        .await
        .expect("consumer");
    let taken = dead
        .read(100, Duration::from_millis(500))
        .await
        .expect("read");
    assert_eq!(taken.len(), total as usize);
    assert!(
        taken.iter().all(|e| e.traceparent.starts_with("00-")),
        "each entry carries a W3C traceparent"
    );
    // It had even delivered the first reply before dying.
    let first = Envelope::decode(taken[0].payload.as_slice()).expect("envelope");
    let reply = first.reply(clawdbot_skills::echo::NAME, 0, vec![Segment::text("m0")]);
    let mut egress = EgressClient::connect(format!("http://127.0.0.1:{}", ports.egress))
        .await
        .expect("egress");
    egress
        .send(SendRequest { reply: Some(reply) })
        .await
        .expect("delivered");
    drop(dead);

    let worker_ports = Ports::new();
    let _worker = Clawdbot::start(
        &["worker", "--consumer-name", "survivor"],
        &config,
        &worker_ports,
    )
    .await;
    setup.mock.wait_for(total as usize, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counts = count_texts(&setup);
    assert_eq!(
        counts.len(),
        total as usize,
        "every message answered: {counts:?}"
    );
    assert!(counts.values().all(|&n| n == 1), "exactly once: {counts:?}");
    let stats = setup
        .redis()
        .bus
        .stats(Stream::Inbound)
        .await
        .expect("stats");
    let pending: u64 = stats
        .groups
        .iter()
        .filter(|g| g.0 == SKILLS_GROUP)
        .map(|g| g.1)
        .sum();
    assert_eq!(pending, 0, "nothing left pending");
}

#[tokio::test]
async fn two_ingresses_and_two_workers_answer_every_message_once() {
    let setup = Setup::new(Backend::Cluster).await;
    let ingress_a = Ports::new();
    let ingress_b = Ports::new();
    let config = setup.default_config(&ingress_a);
    let _a = Clawdbot::start(&["ingress"], &config, &ingress_a).await;
    let _b = Clawdbot::start(&["ingress"], &config, &ingress_b).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ingress_a.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _w1 = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let _w2 = Clawdbot::start(&["worker"], &config, &Ports::new()).await;

    let total = 200;
    let mut posts = Vec::new();
    for id in 0..total {
        let port = if id % 2 == 0 {
            ingress_a.ingress
        } else {
            ingress_b.ingress
        };
        let setup = &setup;
        posts.push(async move {
            setup
                // Many senders, as in a busy group (one sender this fast reads as a bot loop).
                .post_group_message_from(
                    port,
                    1000 + id % 7,
                    5000 + id,
                    id,
                    &format!("/echo n{id}"),
                )
                .await
        });
    }
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    setup.mock.wait_for(total as usize, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = count_texts(&setup);
    assert_eq!(counts.len(), total as usize);
    assert!(counts.values().all(|&n| n == 1), "exactly once: {counts:?}");
}

#[tokio::test]
async fn redis_going_away_turns_callbacks_into_503() {
    let setup = Setup::new(Backend::Cluster).await;
    let mut redis = PrivateRedis::start().await;
    let ports = Ports::new();
    let config = setup.config(&redis.url(), ports.egress, "");
    let bot = Clawdbot::start(&["ingress"], &config, &ports).await;

    assert_eq!(
        setup
            .post_group_message(ports.ingress, 1, 1, "/echo before")
            .await,
        204
    );
    redis.kill();
    let started = std::time::Instant::now();
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 1, 2, "/echo during")
            .await,
        503
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered promptly: {:?}",
        started.elapsed()
    );
    let ready = setup
        .http
        .get(format!("http://127.0.0.1:{}/readyz", ports.ingress))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    assert!(
        bot.logs().contains("cannot publish to the bus"),
        "the log names the reason:\n{}",
        bot.logs()
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_within_ten_seconds() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let mut bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
    for id in 0..20 {
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 3, id, &format!("/echo t{id}"))
                .await,
            204
        );
    }
    let (took, status) = bot.terminate().await;
    assert!(status.success(), "clean exit: {status}\n{}", bot.logs());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(bot.logs().contains("worker stopped"), "{}", bot.logs());
}

#[tokio::test]
async fn a_message_that_keeps_failing_goes_to_the_dead_letters_with_its_reason() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    // Workers point at an egress nobody serves: every attempt fails.
    let nowhere = clawdbot_testkit::free_port();
    let config = setup.config(
        &setup.redis().url,
        nowhere,
        "worker:\n  reclaim_idle_secs: 1\n  block_ms: 100\n  max_deliveries: 2\n",
    );
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    let _worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 8, 1, "/echo doomed")
            .await,
        204
    );

    let deadline = tokio::time::Instant::now() + WAIT;
    let mut conn = setup.redis().connection();
    let dead_key = format!("{{{}}}:dead", setup.redis().prefix);
    loop {
        let entries: Vec<(String, HashMap<String, redis::Value>)> = redis::cmd("XRANGE")
            .arg(&dead_key)
            .arg("-")
            .arg("+")
            .query_async::<redis::streams::StreamRangeReply>(&mut conn)
            .await
            .map(|reply| reply.ids.into_iter().map(|id| (id.id, id.map)).collect())
            .unwrap_or_default();
        if let Some((_, fields)) = entries.first() {
            let reason: String = redis::from_redis_value_ref(&fields["reason"]).expect("reason");
            assert!(reason.contains("deliveries"), "{reason}");
            let envelope_bytes: Vec<u8> =
                redis::from_redis_value_ref(&fields["e"]).expect("payload");
            let envelope =
                Envelope::decode(envelope_bytes.as_slice()).expect("the message itself is kept");
            assert_eq!(envelope.text, "/echo doomed");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(setup.mock.sent_count(), 0);
}

#[tokio::test]
async fn a_skill_pool_runs_its_skills_in_its_own_group_and_workers() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.config(
        &setup.redis().url,
        ports.egress,
        "worker:\n  reclaim_idle_secs: 1\n  block_ms: 100\n  pools:\n    heavy: [echo]\n",
    );
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _default_pool = Clawdbot::start(&["worker"], &config, &Ports::new()).await;

    // The default pool answers /help but leaves /echo to the heavy pool, which is not up yet.
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 4, 1, "/echo queued")
            .await,
        204
    );
    assert_eq!(
        setup.post_group_message(ports.ingress, 4, 2, "/help").await,
        204
    );
    let sent = setup.mock.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.mock.sent_count(), 1, "{sent:?}");
    assert!(sent[0].text().starts_with("What you can use"));

    // The heavy pool starts and picks up what was waiting for it.
    let _heavy = Clawdbot::start(&["worker", "--pool", "heavy"], &config, &Ports::new()).await;
    let sent = setup.mock.wait_for(2, WAIT).await;
    assert!(sent.iter().any(|m| m.text() == "queued"), "{sent:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.mock.sent_count(), 2, "each message answered once");
}
