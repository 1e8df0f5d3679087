//! The bus contract, on both backends (Redis Streams and the in-process bus): atomic
//! dedupe+append, backpressure, consumer groups, reclaim with delivery counts, dead letters,
//! safe trimming, and the reply ledger.

use clawdbot_bus::Streams;
use std::time::Duration;

use clawdbot_bus::{Claim, Completion, Publish, Published, Replayed, Stream, Turn};
use clawdbot_testkit::bus::TestBus;

const WINDOW: Duration = Duration::from_secs(60);

fn item(payload: &str, dedupe: Option<&str>) -> Publish {
    Publish {
        payload: payload.as_bytes().to_vec(),
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        dedupe_key: dedupe.map(str::to_string),
        order_key: None,
    }
}

clawdbot_testkit::bus_suite!(cases;
    a_repeated_message_id_is_appended_once_and_order_is_kept_in_a_batch,
    a_full_stream_refuses_without_remembering_the_message,
    pending_entries_are_reclaimed_with_their_delivery_count_and_acked_once,
    dead_lettering_keeps_the_entry_and_its_reason_and_acks_it,
    trimming_never_drops_what_a_group_still_needs,
    the_reply_ledger_tells_in_flight_from_done_and_leases_expire,
    a_blocked_read_wakes_up_when_an_entry_arrives,
    a_broadcast_reaches_every_subscriber_of_its_channel,
    a_rate_limit_lets_exactly_n_through_per_window_under_racing_callers,
    heartbeats_are_listed_until_they_expire,
    shared_values_expire_and_a_lease_has_one_holder,
    send_slots_queue_past_the_limit_in_order_and_refuse_past_the_longest_wait,
    a_conversation_is_numbered_in_stream_order_and_progress_never_goes_back,
    a_dead_letter_is_replayed_once_and_old_ones_are_purged,
);

mod cases {
    use super::*;

    async fn xlen(redis: &TestBus, stream: Stream) -> u64 {
        redis.bus.stats(stream).await.expect("stats").length
    }

    pub async fn a_repeated_message_id_is_appended_once_and_order_is_kept_in_a_batch(
        redis: TestBus,
    ) {
        let outcomes = redis
            .bus
            .publish(
                &[
                    item("a", Some("p:b:1")),
                    item("b", Some("p:b:2")),
                    item("a again", Some("p:b:1")),
                    item("notice", None),
                    item("notice", None),
                ],
                WINDOW,
                0,
            )
            .await
            .expect("published");
        assert!(matches!(outcomes[0], Published::Appended(_)));
        assert!(matches!(outcomes[1], Published::Appended(_)));
        assert_eq!(outcomes[2], Published::Duplicate);
        assert!(
            matches!(outcomes[3], Published::Appended(_)),
            "no dedupe key: always appended"
        );
        assert!(matches!(outcomes[4], Published::Appended(_)));
        assert_eq!(xlen(&redis, Stream::Inbound).await, 4);
        let again = redis
            .bus
            .publish(&[item("a", Some("p:b:1"))], WINDOW, 0)
            .await
            .expect("published");
        assert_eq!(again, vec![Published::Duplicate]);
    }

    pub async fn a_full_stream_refuses_without_remembering_the_message(redis: TestBus) {
        let outcomes = redis
            .bus
            .publish(
                &[
                    item("1", Some("k1")),
                    item("2", Some("k2")),
                    item("3", Some("k3")),
                ],
                WINDOW,
                2,
            )
            .await
            .expect("published");
        assert_eq!(outcomes[2], Published::Full);
        // The refused message's id was not recorded, so the platform's retry is accepted later.
        let retry = redis
            .bus
            .publish(&[item("3", Some("k3"))], WINDOW, 10)
            .await
            .expect("published");
        assert!(matches!(retry[0], Published::Appended(_)), "{retry:?}");
    }

    pub async fn pending_entries_are_reclaimed_with_their_delivery_count_and_acked_once(
        redis: TestBus,
    ) {
        redis
            .bus
            .ensure_group(Stream::Inbound, "skills")
            .await
            .expect("group");
        redis
            .bus
            .ensure_group(Stream::Inbound, "skills")
            .await
            .expect("creating it twice is fine");
        redis
            .bus
            .publish(&[item("x", Some("x")), item("y", Some("y"))], WINDOW, 0)
            .await
            .expect("published");

        let mut dying = redis
            .bus
            .consumer(Stream::Inbound, "skills", "dying")
            .await
            .expect("consumer");
        let taken = dying
            .read(10, Duration::from_millis(100))
            .await
            .expect("read");
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].payload, b"x");
        assert_eq!(taken[0].deliveries, 1);
        assert!(taken[0].traceparent.starts_with("00-4bf9"));

        let mut survivor = redis
            .bus
            .consumer(Stream::Inbound, "skills", "survivor")
            .await
            .expect("consumer");
        assert!(
            survivor
                .read(10, Duration::from_millis(50))
                .await
                .expect("read")
                .is_empty(),
            "nothing new"
        );
        assert!(
            survivor
                .reclaim(Duration::from_secs(60), 10)
                .await
                .expect("reclaim")
                .is_empty(),
            "not idle long enough"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        let reclaimed = survivor
            .reclaim(Duration::from_millis(50), 10)
            .await
            .expect("reclaim");
        assert_eq!(reclaimed.len(), 2);
        assert!(reclaimed.iter().all(|e| e.deliveries == 2), "{reclaimed:?}");
        assert_eq!(reclaimed[1].payload, b"y");

        let ids: Vec<String> = reclaimed.iter().map(|e| e.id.clone()).collect();
        redis
            .bus
            .ack(Stream::Inbound, "skills", &ids)
            .await
            .expect("ack");
        let stats = redis.bus.stats(Stream::Inbound).await.expect("stats");
        assert_eq!(stats.groups, vec![("skills".to_string(), 0, 0)]);
    }

    pub async fn dead_lettering_keeps_the_entry_and_its_reason_and_acks_it(redis: TestBus) {
        redis
            .bus
            .ensure_group(Stream::Inbound, "skills")
            .await
            .expect("group");
        redis
            .bus
            .publish(&[item("poison", Some("p"))], WINDOW, 0)
            .await
            .expect("published");
        let mut consumer = redis
            .bus
            .consumer(Stream::Inbound, "skills", "c")
            .await
            .expect("consumer");
        let entry = consumer
            .read(1, Duration::from_millis(100))
            .await
            .expect("read")
            .remove(0);
        redis
            .bus
            .dead_letter(Stream::Inbound, "skills", &entry, "undecodable envelope")
            .await
            .expect("dead letter");
        assert_eq!(xlen(&redis, Stream::Dead).await, 1);
        let stats = redis.bus.stats(Stream::Inbound).await.expect("stats");
        assert_eq!(stats.groups[0].1, 0, "acked");
        let dead = redis.bus.dead_letters("", 10).await.expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "undecodable envelope");
        assert_eq!(dead[0].payload, b"poison");
        assert_eq!(dead[0].source_id, entry.id);
        assert_eq!(dead[0].group, "skills");
        assert_eq!(dead[0].deliveries, 1);
        assert_eq!(
            redis
                .bus
                .dead_letter_by_id(&dead[0].id)
                .await
                .expect("by id")
                .map(|d| d.payload),
            Some(b"poison".to_vec())
        );
        assert_eq!(
            redis.bus.dead_letter_by_id("1-1").await.expect("by id"),
            None
        );
        assert_eq!(
            redis
                .bus
                .dead_letter_by_id("nonsense")
                .await
                .expect("by id"),
            None
        );
    }

    pub async fn a_dead_letter_is_replayed_once_and_old_ones_are_purged(redis: TestBus) {
        redis
            .bus
            .ensure_group(Stream::Inbound, "skills")
            .await
            .expect("group");
        let items: Vec<Publish> = ["a", "b", "c"].iter().map(|p| item(p, None)).collect();
        redis
            .bus
            .publish(&items, WINDOW, 0)
            .await
            .expect("published");
        let mut consumer = redis
            .bus
            .consumer(Stream::Inbound, "skills", "c")
            .await
            .expect("consumer");
        for entry in consumer
            .read(3, Duration::from_millis(100))
            .await
            .expect("read")
        {
            redis
                .bus
                .dead_letter(Stream::Inbound, "skills", &entry, "gave up")
                .await
                .expect("dead letter");
        }
        let dead = redis.bus.dead_letters("", 10).await.expect("list");
        assert_eq!(dead.len(), 3);
        let after_first = redis.bus.dead_letters(&dead[0].id, 10).await.expect("page");
        assert_eq!(after_first.len(), 2, "pages start after the id given");

        let replayed = redis.bus.replay(&dead[0].id, WINDOW).await.expect("replay");
        assert!(matches!(replayed, Replayed::Appended(_)), "{replayed:?}");
        let again = consumer
            .read(10, Duration::from_millis(100))
            .await
            .expect("read");
        assert_eq!(again.len(), 1, "back in the inbound stream");
        assert_eq!(again[0].payload, b"a");
        assert_eq!(
            redis.bus.replay(&dead[0].id, WINDOW).await.expect("replay"),
            Replayed::Missing,
            "a replayed dead letter is gone from the dead letters"
        );
        assert_eq!(xlen(&redis, Stream::Dead).await, 2);

        // Purge by age: everything written before now.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert_eq!(
            redis
                .bus
                .purge_dead_letters(now_ms - 60_000)
                .await
                .expect("purge"),
            0
        );
        assert_eq!(
            redis.bus.purge_dead_letters(now_ms).await.expect("purge"),
            2
        );
        assert_eq!(xlen(&redis, Stream::Dead).await, 0);
    }

    pub async fn trimming_never_drops_what_a_group_still_needs(redis: TestBus) {
        redis
            .bus
            .ensure_group(Stream::Inbound, "skills")
            .await
            .expect("group");
        redis
            .bus
            .ensure_group(Stream::Inbound, "history")
            .await
            .expect("group");
        let items: Vec<Publish> = (0..10).map(|i| item(&i.to_string(), None)).collect();
        redis
            .bus
            .publish(&items, WINDOW, 0)
            .await
            .expect("published");

        let mut skills = redis
            .bus
            .consumer(Stream::Inbound, "skills", "w")
            .await
            .expect("consumer");
        let read = skills
            .read(10, Duration::from_millis(100))
            .await
            .expect("read");
        let first_five: Vec<String> = read[..5].iter().map(|e| e.id.clone()).collect();
        redis
            .bus
            .ack(Stream::Inbound, "skills", &first_five)
            .await
            .expect("ack");
        // `history` has read nothing yet: nothing may go.
        assert_eq!(redis.bus.trim(Stream::Inbound).await.expect("trim"), 0);
        assert_eq!(xlen(&redis, Stream::Inbound).await, 10);

        let mut history = redis
            .bus
            .consumer(Stream::Inbound, "history", "h")
            .await
            .expect("consumer");
        let all: Vec<String> = history
            .read(10, Duration::from_millis(100))
            .await
            .expect("read")
            .iter()
            .map(|e| e.id.clone())
            .collect();
        redis
            .bus
            .ack(Stream::Inbound, "history", &all)
            .await
            .expect("ack");
        // Now only `skills`' five pending entries are needed (the in-process bus drops the rest
        // at the ack already; Redis at the trim).
        redis.bus.trim(Stream::Inbound).await.expect("trim");
        assert_eq!(xlen(&redis, Stream::Inbound).await, 5);
        let reclaimed = skills.reclaim(Duration::ZERO, 10).await.expect("reclaim");
        assert_eq!(reclaimed.len(), 5, "every unacked entry survived the trim");
        assert_eq!(reclaimed[0].payload, b"5");

        let rest: Vec<String> = reclaimed.iter().map(|e| e.id.clone()).collect();
        redis
            .bus
            .ack(Stream::Inbound, "skills", &rest)
            .await
            .expect("ack");
        redis.bus.trim(Stream::Inbound).await.expect("trim");
        assert_eq!(xlen(&redis, Stream::Inbound).await, 0);
        // A stream nobody created is left alone.
        assert_eq!(redis.bus.trim(Stream::Outbound).await.expect("trim"), 0);
    }

    async fn claim(redis: &TestBus, id: &str, lease: Duration) -> Claim {
        redis
            .bus
            .ledger()
            .claim_many(&[id.to_string()], lease)
            .await
            .expect("claim")
            .remove(0)
    }

    async fn release(redis: &TestBus, id: &str, token: &str) {
        redis
            .bus
            .ledger()
            .release_many(&[(id.to_string(), token.to_string())])
            .await
            .expect("release");
    }

    pub async fn the_reply_ledger_tells_in_flight_from_done_and_leases_expire(redis: TestBus) {
        let lease = Duration::from_secs(30);
        let Claim::Claimed(token) = claim(&redis, "r1", lease).await else {
            panic!("first claim")
        };
        assert_eq!(claim(&redis, "r1", lease).await, Claim::InFlight);
        release(&redis, "r1", "someone-else").await;
        assert_eq!(
            claim(&redis, "r1", lease).await,
            Claim::InFlight,
            "a stranger cannot release it"
        );
        let completion = Completion {
            reply_id: "r1".into(),
            token,
            result: "{\"status\":1}".into(),
            record: b"record".to_vec(),
            traceparent: String::new(),
        };
        redis
            .bus
            .ledger()
            .complete_many(&[completion], Duration::from_secs(60))
            .await
            .expect("complete");
        assert_eq!(
            claim(&redis, "r1", lease).await,
            Claim::Done("{\"status\":1}".into())
        );
        assert_eq!(
            xlen(&redis, Stream::Outbound).await,
            1,
            "one outbound record"
        );

        // A holder that dies never completes: the lease expires and a retry may deliver.
        assert!(matches!(
            claim(&redis, "r2", Duration::from_millis(100)).await,
            Claim::Claimed(_)
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(
            claim(&redis, "r2", lease).await,
            Claim::Claimed(_)
        ));

        // Released after a transient failure: claimable at once.
        let Claim::Claimed(token) = claim(&redis, "r3", lease).await else {
            panic!("claim r3")
        };
        release(&redis, "r3", &token).await;
        assert!(matches!(
            claim(&redis, "r3", lease).await,
            Claim::Claimed(_)
        ));

        // A batch answers in order.
        let ids: Vec<String> = ["r1", "r3", "r4"].iter().map(|s| s.to_string()).collect();
        let claims = redis
            .bus
            .ledger()
            .claim_many(&ids, lease)
            .await
            .expect("claims");
        assert!(matches!(claims[0], Claim::Done(_)));
        assert_eq!(claims[1], Claim::InFlight);
        assert!(matches!(claims[2], Claim::Claimed(_)));
    }

    pub async fn a_blocked_read_wakes_up_when_an_entry_arrives(redis: TestBus) {
        redis
            .bus
            .ensure_group(Stream::Inbound, "skills")
            .await
            .expect("group");
        let mut consumer = redis
            .bus
            .consumer(Stream::Inbound, "skills", "c")
            .await
            .expect("consumer");
        let bus = redis.bus.clone();
        let publisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            bus.publish(&[item("late", None)], WINDOW, 0)
                .await
                .expect("published");
        });
        let started = std::time::Instant::now();
        let entries = consumer
            .read(10, Duration::from_secs(5))
            .await
            .expect("read");
        assert_eq!(entries.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "woke up early: {:?}",
            started.elapsed()
        );
        publisher.await.expect("publisher");
        // And an empty wait ends at its deadline.
        let started = std::time::Instant::now();
        assert!(
            consumer
                .read(10, Duration::from_millis(100))
                .await
                .expect("read")
                .is_empty()
        );
        assert!(started.elapsed() >= Duration::from_millis(90));
    }

    pub async fn a_broadcast_reaches_every_subscriber_of_its_channel(redis: TestBus) {
        let mut first = redis
            .bus
            .subscribe("sandbox:default")
            .await
            .expect("subscribe");
        let mut second = redis
            .bus
            .subscribe("sandbox:default")
            .await
            .expect("subscribe");
        let mut other = redis
            .bus
            .subscribe("sandbox:other")
            .await
            .expect("subscribe");
        redis
            .bus
            .broadcast("sandbox:default", b"hello")
            .await
            .expect("broadcast");
        let wait = Duration::from_secs(2);
        assert_eq!(
            tokio::time::timeout(wait, first.recv())
                .await
                .expect("first in time"),
            Some(b"hello".to_vec())
        );
        assert_eq!(
            tokio::time::timeout(wait, second.recv())
                .await
                .expect("second in time"),
            Some(b"hello".to_vec())
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), other.recv())
                .await
                .is_err(),
            "other channel stays quiet"
        );
    }

    pub async fn a_rate_limit_lets_exactly_n_through_per_window_under_racing_callers(
        redis: TestBus,
    ) {
        let window = Duration::from_millis(400);
        let attempts = (0..40).map(|_| {
            let bus = redis.bus.clone();
            tokio::spawn(async move {
                bus.rate_limit("echo:onebot:42", 10, window)
                    .await
                    .expect("rate limit")
            })
        });
        let allowed = futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().expect("task"))
            .count();
        assert_eq!(allowed, 10);
        assert!(
            redis
                .bus
                .rate_limit("echo:onebot:43", 10, window)
                .await
                .expect("other user"),
            "per key"
        );
        tokio::time::sleep(window + Duration::from_millis(100)).await;
        assert!(
            redis
                .bus
                .rate_limit("echo:onebot:42", 10, window)
                .await
                .expect("next window"),
            "a new window"
        );
    }

    pub async fn shared_values_expire_and_a_lease_has_one_holder(redis: TestBus) {
        let bus = &redis.bus;
        let short = Duration::from_millis(300);
        bus.put_value("wecom:token:a", "t1", short)
            .await
            .expect("put");
        assert_eq!(
            bus.get_value("wecom:token:a").await.expect("get"),
            Some("t1".to_string())
        );
        // Only the value it holds is deleted: a newer token survives a stale invalidation.
        assert!(
            !bus.delete_value_if("wecom:token:a", "t0")
                .await
                .expect("cas")
        );
        assert!(
            bus.delete_value_if("wecom:token:a", "t1")
                .await
                .expect("cas")
        );
        assert_eq!(bus.get_value("wecom:token:a").await.expect("get"), None);

        let racers = (0..20).map(|i| {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.put_value_if_absent("wecom:lease:a", &format!("r{i}"), short)
                    .await
                    .expect("lease")
            })
        });
        let holders = futures::future::join_all(racers)
            .await
            .into_iter()
            .filter(|won| *won.as_ref().expect("task"))
            .count();
        assert_eq!(holders, 1, "one lease holder among racing replicas");
        tokio::time::sleep(short + Duration::from_millis(100)).await;
        assert_eq!(bus.get_value("wecom:lease:a").await.expect("get"), None);
        assert!(
            bus.put_value_if_absent("wecom:lease:a", "later", short)
                .await
                .expect("lease"),
            "an expired lease can be taken again"
        );
        // Only the holder renews; the renewal outlives the first TTL.
        assert!(
            !bus.renew_value_if("wecom:lease:a", "r0", short)
                .await
                .expect("renew")
        );
        tokio::time::sleep(short / 2).await;
        assert!(
            bus.renew_value_if("wecom:lease:a", "later", short)
                .await
                .expect("renew")
        );
        tokio::time::sleep(short / 2 + Duration::from_millis(50)).await;
        assert_eq!(
            bus.get_value("wecom:lease:a").await.expect("get"),
            Some("later".to_string()),
            "renewed past its first expiry"
        );
        let fences: Vec<u64> =
            futures::future::join_all((0..5).map(|_| bus.increment("fence:a", 1, short)))
                .await
                .into_iter()
                .map(|n| n.expect("increment"))
                .collect();
        let mut sorted = fences.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            vec![1, 2, 3, 4, 5],
            "each holder a distinct, higher fence"
        );
        tokio::time::sleep(short + Duration::from_millis(100)).await;
        assert_eq!(
            bus.increment("fence:a", 1, short).await.expect("increment"),
            1,
            "a counter starts over once it expired"
        );
    }

    pub async fn send_slots_queue_past_the_limit_in_order_and_refuse_past_the_longest_wait(
        redis: TestBus,
    ) {
        let window = Duration::from_millis(1000);
        let max_wait = Duration::from_millis(1500);
        let mut waits = Vec::new();
        for _ in 0..7 {
            waits.push(
                redis
                    .bus
                    .reserve_slot("wecom:robot:ops", 3, window, max_wait)
                    .await
                    .expect("reserve"),
            );
        }
        let ms: Vec<Option<u128>> = waits.iter().map(|w| w.map(|d| d.as_millis())).collect();
        // Three now, three one window later (queued, not dropped), the seventh would wait two
        // windows: past the longest wait, so refused.
        for wait in &ms[..3] {
            assert!(wait.is_some_and(|w| w < 100), "{ms:?}");
        }
        for wait in &ms[3..6] {
            assert!(wait.is_some_and(|w| (850..=1000).contains(&w)), "{ms:?}");
        }
        assert_eq!(ms[6], None, "{ms:?}");
        // Another schedule is independent.
        assert_eq!(
            redis
                .bus
                .reserve_slot("wecom:robot:dev", 3, window, max_wait)
                .await
                .expect("reserve")
                .map(|d| d.as_millis() < 100),
            Some(true)
        );
    }

    pub async fn heartbeats_are_listed_until_they_expire(redis: TestBus) {
        redis
            .bus
            .heartbeat(
                "worker/w1",
                r#"{"role":"worker"}"#,
                Duration::from_millis(300),
            )
            .await
            .expect("beat");
        redis
            .bus
            .heartbeat("egress/e1", r#"{"role":"egress"}"#, Duration::from_secs(30))
            .await
            .expect("beat");
        let mut alive = redis.bus.heartbeats().await.expect("list");
        alive.sort();
        assert_eq!(
            alive,
            vec![
                ("egress/e1".to_string(), r#"{"role":"egress"}"#.to_string()),
                ("worker/w1".to_string(), r#"{"role":"worker"}"#.to_string())
            ]
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let alive = redis.bus.heartbeats().await.expect("list");
        assert_eq!(alive.len(), 1, "the expired one is gone: {alive:?}");
    }

    pub async fn a_conversation_is_numbered_in_stream_order_and_progress_never_goes_back(
        redis: TestBus,
    ) {
        let ordered = |payload: &str, conversation: &str| Publish {
            order_key: Some(conversation.to_string()),
            ..item(payload, None)
        };
        redis
            .bus
            .publish(
                &[
                    ordered("a1", "p:b:1:A"),
                    ordered("b1", "p:b:1:B"),
                    ordered("a2", "p:b:1:A"),
                    item("unordered", None),
                    ordered("a3", "p:b:1:A"),
                ],
                WINDOW,
                0,
            )
            .await
            .expect("published");
        redis
            .bus
            .ensure_group(Stream::Inbound, "g")
            .await
            .expect("group");
        let mut consumer = redis
            .bus
            .consumer(Stream::Inbound, "g", "c")
            .await
            .expect("consumer");
        let entries = consumer
            .read(10, Duration::from_millis(100))
            .await
            .expect("read");
        let turns: Vec<Option<(String, u64)>> = entries
            .iter()
            .map(|e| e.turn.as_ref().map(|t| (t.key.clone(), t.seq)))
            .collect();
        let turn = |key: &str, seq| Some((key.to_string(), seq));
        assert_eq!(
            turns,
            vec![
                turn("p:b:1:A", 1),
                turn("p:b:1:B", 1),
                turn("p:b:1:A", 2),
                None,
                turn("p:b:1:A", 3)
            ]
        );
        let keys = ["p:b:1:A".to_string(), "p:b:1:B".to_string()];
        assert_eq!(
            redis.bus.finished_turns("g", &keys).await.expect("turns"),
            vec![0, 0]
        );
        let finish = |key: &str, seq| Turn {
            key: key.to_string(),
            seq,
        };
        redis
            .bus
            .finish_turns("g", &[finish("p:b:1:A", 2), finish("p:b:1:B", 1)])
            .await
            .expect("finish");
        // Never back, and never past the turns handed out.
        redis
            .bus
            .finish_turns("g", &[finish("p:b:1:A", 1), finish("p:b:1:B", 9)])
            .await
            .expect("finish");
        assert_eq!(
            redis.bus.finished_turns("g", &keys).await.expect("turns"),
            vec![2, 1]
        );
        assert_eq!(
            redis
                .bus
                .finished_turns("other group", &keys)
                .await
                .expect("turns"),
            vec![0, 0],
            "each group has its own progress"
        );
    }
}

#[tokio::test]
async fn redis_scripts_forgotten_by_the_server_are_loaded_again() {
    let redis = clawdbot_testkit::TestRedis::new().await;
    let mut conn = redis.connection();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("flush");
    let outcomes = redis
        .bus
        .publish(&[item("after flush", Some("f"))], WINDOW, 0)
        .await
        .expect("published");
    assert!(matches!(outcomes[0], Published::Appended(_)));
}
