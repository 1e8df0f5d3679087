//! The store contract on both backends (Postgres and SQLite), and what is particular to each.

use clawdbot_store::HistoryStore;
use clawdbot_store::{Direction, HistoryQuery, HistoryRecord, Store};
use clawdbot_testkit::TestPostgres;
use clawdbot_testkit::store::TestStore;
use time::macros::datetime;

fn record(
    id: &str,
    direction: Direction,
    conversation: &str,
    at: time::OffsetDateTime,
) -> HistoryRecord {
    HistoryRecord {
        id: id.to_string(),
        direction,
        platform: "onebot".into(),
        bot_id: "default".into(),
        conversation_kind: "group".into(),
        conversation_id: conversation.into(),
        sender_id: "42".into(),
        platform_message_id: "7".into(),
        event_type: "message.group.normal".into(),
        skill: String::new(),
        in_reply_to: String::new(),
        status: String::new(),
        text: format!("text of {id}"),
        payload: vec![1, 2, 3],
        created_at: at,
    }
}

clawdbot_testkit::store_suite!(cases;
    a_replayed_batch_writes_nothing_twice,
    a_conversation_reads_back_in_order_and_limited_to_the_latest,
    skill_switches_persist_and_the_last_one_wins,
    skill_activity_counts_replies_and_their_latency,
    loaded_skills_are_registered_and_replaced_by_name,
    audit_records_are_kept_newest_first_and_purged_by_retention,
    log_records_are_filtered_newest_first_summarized_and_purged,
    sealed_secrets_round_trip_reseal_only_if_unchanged_and_expire,
    loaded_skills_roll_back_one_version_at_a_time_and_components_are_kept_by_checksum,
    history_pages_filter_and_resume_after_the_last_row,
    history_past_retention_is_deleted_and_the_rest_kept,
);

mod cases {
    use super::*;

    /// `history show|export` read in pages: filters by conversation, time and text (any
    /// case); each page resumes strictly after the previous page's last row, so rows with the
    /// same timestamp are neither skipped nor repeated.
    pub async fn history_pages_filter_and_resume_after_the_last_row(fixture: TestStore) {
        let same = datetime!(2026-11-25 09:00 UTC);
        let mut batch: Vec<HistoryRecord> = (0..7)
            .map(|n| record(&format!("p{n}"), Direction::In, "g1", same))
            .collect();
        batch.push(record(
            "early",
            Direction::In,
            "g1",
            datetime!(2026-11-25 07:00 UTC),
        ));
        batch.push(record("elsewhere", Direction::In, "g2", same));
        let mut shouting = record(
            "loud",
            Direction::Out,
            "g1",
            datetime!(2026-11-25 10:00 UTC),
        );
        shouting.text = "THE Answer".into();
        batch.push(shouting);
        fixture.store.write_history(&batch).await.expect("write");

        let mut query = HistoryQuery {
            conversation_id: Some("g1".into()),
            since: Some(datetime!(2026-11-25 08:00 UTC)),
            limit: 3,
            ..HistoryQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = fixture.store.history_page(&query).await.expect("page");
            let Some(last) = page.last() else { break };
            query.after = Some((last.created_at, last.id.clone()));
            seen.extend(page.iter().map(|r| r.id.clone()));
        }
        let mut expected: Vec<String> = (0..7).map(|n| format!("p{n}")).collect();
        expected.push("loud".into());
        assert_eq!(seen, expected, "every row once, in time then id order");

        let grep = HistoryQuery {
            grep: Some("the answer".into()),
            limit: 10,
            ..HistoryQuery::default()
        };
        let found = fixture.store.history_page(&grep).await.expect("grep");
        assert_eq!(
            found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["loud"]
        );
        let percent = HistoryQuery {
            grep: Some("%".into()),
            limit: 10,
            ..HistoryQuery::default()
        };
        assert!(
            fixture
                .store
                .history_page(&percent)
                .await
                .expect("grep")
                .is_empty(),
            "a % in the text searched for is a literal %, not a wildcard"
        );
    }

    pub async fn history_past_retention_is_deleted_and_the_rest_kept(fixture: TestStore) {
        let batch = vec![
            record("old", Direction::In, "g1", datetime!(2026-01-01 00:00 UTC)),
            record(
                "old-reply",
                Direction::Out,
                "g1",
                datetime!(2026-01-01 00:00:01 UTC),
            ),
            record("new", Direction::In, "g1", datetime!(2026-11-25 08:00 UTC)),
        ];
        fixture.store.write_history(&batch).await.expect("write");
        let deleted = fixture
            .store
            .delete_history_before(datetime!(2026-06-01 00:00 UTC))
            .await
            .expect("delete");
        assert_eq!(deleted, 2);
        let left = fixture
            .store
            .conversation("onebot", "default", "g1", 100)
            .await
            .expect("read");
        assert_eq!(
            left.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
    }

    pub async fn a_replayed_batch_writes_nothing_twice(fixture: TestStore) {
        let batch = vec![
            record("a", Direction::In, "g1", datetime!(2026-11-25 08:00 UTC)),
            record("a", Direction::Out, "g1", datetime!(2026-11-25 08:00 UTC)),
            record("b", Direction::In, "g1", datetime!(2026-11-25 08:01 UTC)),
        ];
        assert_eq!(fixture.store.write_history(&batch).await.expect("write"), 3);
        assert_eq!(
            fixture.store.write_history(&batch).await.expect("replay"),
            0
        );
        let rows = fixture
            .store
            .conversation("onebot", "default", "g1", 100)
            .await
            .expect("read");
        assert_eq!(rows.len(), 3);
    }

    pub async fn a_conversation_reads_back_in_order_and_limited_to_the_latest(fixture: TestStore) {
        let batch = vec![
            record("m3", Direction::In, "g1", datetime!(2026-11-25 08:03 UTC)),
            record("m1", Direction::In, "g1", datetime!(2026-11-25 08:01 UTC)),
            record(
                "other",
                Direction::In,
                "g2",
                datetime!(2026-11-25 08:02 UTC),
            ),
            record("m2", Direction::In, "g1", datetime!(2026-11-25 08:02 UTC)),
        ];
        fixture.store.write_history(&batch).await.expect("write");
        let rows = fixture
            .store
            .conversation("onebot", "default", "g1", 2)
            .await
            .expect("read");
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["m2", "m3"]);
        assert_eq!(rows[0], batch[3], "every column reads back as written");
        fixture.store.ping().await.expect("ping");
    }

    pub async fn skill_activity_counts_replies_and_their_latency(fixture: TestStore) {
        let at = datetime!(2026-11-25 08:00 UTC);
        let ms = |n: i64| time::Duration::milliseconds(n);
        let reply = |id: &str, to: &str, skill: &str, after: i64| {
            let mut row = record(id, Direction::Out, "g", at + ms(after));
            row.in_reply_to = to.to_string();
            row.skill = skill.to_string();
            row
        };
        let batch = vec![
            record("m1", Direction::In, "g", at),
            record("m2", Direction::In, "g", at + ms(1000)),
            reply("m1:echo:0", "m1", "echo", 20),
            reply("m2:echo:0", "m2", "echo", 1100),
            reply("m2:faq:0", "m2", "faq", 1005),
            record("old", Direction::Out, "g", at - time::Duration::hours(2)),
        ];
        fixture.store.write_history(&batch).await.expect("write");
        let activity = fixture
            .store
            .skill_activity(at - time::Duration::minutes(1))
            .await
            .expect("activity");
        assert_eq!(activity.len(), 2, "{activity:?}");
        assert_eq!((activity[0].skill.as_str(), activity[0].calls), ("echo", 2));
        assert!((activity[0].p99_ms - 100.0).abs() < 1.0, "{activity:?}");
        assert_eq!((activity[1].skill.as_str(), activity[1].calls), ("faq", 1));
        assert!((activity[1].p99_ms - 5.0).abs() < 1.0, "{activity:?}");
    }

    pub async fn loaded_skills_are_registered_and_replaced_by_name(fixture: TestStore) {
        fixture
            .store
            .register_skill("weather", r#"{"version":"1"}"#, "ops")
            .await
            .expect("register");
        fixture
            .store
            .register_skill("weather", r#"{"version":"2"}"#, "ops")
            .await
            .expect("replace");
        let registered = fixture.store.registered_skills().await.expect("registry");
        assert_eq!(registered.len(), 1);
        assert_eq!(registered["weather"], r#"{"version":"2"}"#);
    }

    pub async fn log_records_are_filtered_newest_first_summarized_and_purged(fixture: TestStore) {
        use clawdbot_store::{LogGroup, LogQuery, LogRecord};
        let now = time::OffsetDateTime::now_utc();
        let log = |minutes_ago: i64,
                   level: &str,
                   platform: &str,
                   skill: &str,
                   error: &str,
                   message: &str,
                   count: i64| LogRecord {
            at: now - time::Duration::minutes(minutes_ago),
            level: level.into(),
            role: "worker".into(),
            instance: "w1".into(),
            platform: platform.into(),
            skill: skill.into(),
            error_type: error.into(),
            message: message.into(),
            fields: format!("reason=\"{message} 100%\""),
            count,
        };
        fixture
            .store
            .write_logs(&[
                log(
                    3 * 24 * 60,
                    "ERROR",
                    "onebot",
                    "",
                    "bus_unavailable",
                    "ancient failure",
                    1,
                ),
                log(
                    30,
                    "WARN",
                    "wecom",
                    "",
                    "bad_signature",
                    "callback rejected: signature verification failed",
                    1,
                ),
                log(
                    20,
                    "ERROR",
                    "onebot",
                    "ai",
                    "skill_retryable",
                    "skill failed",
                    1,
                ),
                log(10, "INFO", "onebot", "echo", "", "skill calls", 40),
                log(
                    5,
                    "ERROR",
                    "wecom",
                    "",
                    "platform_refused",
                    "platform refused the reply",
                    1,
                ),
            ])
            .await
            .expect("write");
        let day_ago = now - time::Duration::hours(24);
        let query = |levels: &[&str], grep: Option<&str>| LogQuery {
            levels: levels.iter().map(|l| l.to_string()).collect(),
            grep: grep.map(str::to_string),
            platform: None,
            skill: None,
            since: day_ago,
            limit: 10,
        };
        let errors = fixture
            .store
            .logs(&query(&["ERROR"], None))
            .await
            .expect("errors");
        let messages: Vec<&str> = errors.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages,
            vec!["platform refused the reply", "skill failed"],
            "newest first, within the last day"
        );
        let grepped = fixture
            .store
            .logs(&query(&["ERROR", "WARN", "INFO"], Some("SIGNATURE")))
            .await
            .expect("grep");
        assert_eq!(grepped.len(), 1, "case-insensitive grep: {grepped:?}");
        assert_eq!(grepped[0].platform, "wecom");
        let literal = fixture
            .store
            .logs(&query(&["ERROR", "WARN", "INFO"], Some("100%")))
            .await
            .expect("grep %");
        assert_eq!(literal.len(), 4, "`%` is matched literally");
        let none = fixture
            .store
            .logs(&query(&["ERROR", "WARN", "INFO"], Some("1_0")))
            .await
            .expect("grep _");
        assert!(none.is_empty(), "`_` is matched literally");
        let mut by_platform = query(&["ERROR", "WARN", "INFO"], None);
        by_platform.platform = Some("onebot".into());
        by_platform.limit = 1;
        let onebot = fixture.store.logs(&by_platform).await.expect("platform");
        assert_eq!(onebot.len(), 1);
        assert_eq!(onebot[0].skill, "echo");

        let by_skill = fixture
            .store
            .log_summary(LogGroup::Skill, day_ago)
            .await
            .expect("summary");
        let rows: Vec<(&str, i64, i64, i64)> = by_skill
            .iter()
            .map(|s| (s.key.as_str(), s.errors, s.warnings, s.total))
            .collect();
        assert_eq!(rows, vec![("echo", 0, 0, 40), ("ai", 1, 0, 1)]);
        let by_error = fixture
            .store
            .log_summary(LogGroup::Error, day_ago)
            .await
            .expect("summary");
        assert_eq!(by_error.len(), 3, "{by_error:?}");

        let purged = fixture
            .store
            .purge_logs(now - time::Duration::days(1))
            .await
            .expect("purge");
        assert_eq!(purged, 1);
    }

    pub async fn audit_records_are_kept_newest_first_and_purged_by_retention(fixture: TestStore) {
        use clawdbot_store::AuditRecord;
        assert_eq!(
            fixture.store.audit_settings().await.expect("settings"),
            None
        );
        fixture.store.set_audit(true, 90).await.expect("enable");
        assert_eq!(
            fixture.store.audit_settings().await.expect("settings"),
            Some((true, 90))
        );
        let now = time::OffsetDateTime::now_utc();
        let record = |days_ago: i64, action: &str| AuditRecord {
            at: now - time::Duration::days(days_ago),
            actor: "cli:ops".into(),
            action: action.into(),
            target: "echo".into(),
            decision: "done".into(),
            reason: String::new(),
        };
        fixture
            .store
            .record_audit(&[
                record(100, "skill.disable"),
                record(1, "skill.enable"),
                record(0, "skill.load"),
            ])
            .await
            .expect("record");
        let purged = fixture
            .store
            .purge_audit(now - time::Duration::days(90))
            .await
            .expect("purge");
        assert_eq!(purged, 1, "only the record past the retention");
        let actions: Vec<String> = fixture
            .store
            .audit_records(10)
            .await
            .expect("read")
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, vec!["skill.load", "skill.enable"], "newest first");
    }

    pub async fn sealed_secrets_round_trip_reseal_only_if_unchanged_and_expire(fixture: TestStore) {
        use clawdbot_store::SecretRecord;
        let secret = |name: &str, sealed: &[u8], expires| SecretRecord {
            name: name.into(),
            kind: clawdbot_store::secret_kind::API_KEY.into(),
            scope: "notify".into(),
            key_id: "aaaa0000".into(),
            sealed: sealed.to_vec(),
            created_at: datetime!(2026-11-25 08:00 UTC),
            expires_at: expires,
        };
        let store = &fixture.store;
        store
            .put_secret(&secret("notify/hr", b"v1", None))
            .await
            .expect("put");
        let old = secret(
            "notify/hr@old",
            b"v0",
            Some(datetime!(2026-11-26 08:00 UTC)),
        );
        store.put_secret(&old).await.expect("put");
        let all = store.secrets().await.expect("read");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], old, "bytes and both times read back as written");

        // A reseal against a stale value changes nothing; against the current one it applies.
        assert!(
            !store
                .reseal_secret("notify/hr", b"stale", "bbbb1111", b"v2")
                .await
                .expect("cas")
        );
        assert!(
            store
                .reseal_secret("notify/hr", b"v1", "bbbb1111", b"v2")
                .await
                .expect("cas")
        );
        let hr = store.secrets().await.expect("read").remove(0);
        assert_eq!(
            (hr.key_id.as_str(), hr.sealed.as_slice()),
            ("bbbb1111", b"v2".as_slice())
        );

        // Replacing by name keeps one row.
        store
            .put_secret(&secret("notify/hr", b"v3", None))
            .await
            .expect("replace");
        assert_eq!(store.secrets().await.expect("read").len(), 2);

        assert_eq!(
            store
                .purge_expired_secrets(datetime!(2026-11-26 07:59 UTC))
                .await
                .expect("purge"),
            0
        );
        assert_eq!(
            store
                .purge_expired_secrets(datetime!(2026-11-26 08:00 UTC))
                .await
                .expect("purge"),
            1
        );
        assert!(store.delete_secret("notify/hr").await.expect("delete"));
        assert!(
            !store
                .delete_secret("notify/hr")
                .await
                .expect("delete twice")
        );
        assert!(store.secrets().await.expect("read").is_empty());
    }

    pub async fn loaded_skills_roll_back_one_version_at_a_time_and_components_are_kept_by_checksum(
        fixture: TestStore,
    ) {
        let store = &fixture.store;
        for version in ["v1", "v2", "v3"] {
            store
                .register_skill("echo", version, "cli:test")
                .await
                .expect("register");
        }
        store
            .register_skill("other", "o1", "cli:test")
            .await
            .expect("register");
        let current = |store: std::sync::Arc<dyn Store>| async move {
            store
                .registered_skills()
                .await
                .expect("read")
                .get("echo")
                .cloned()
        };
        assert_eq!(current(store.clone()).await.as_deref(), Some("v3"));
        assert_eq!(
            store.rollback_skill("echo").await.expect("back").as_deref(),
            Some("v2")
        );
        assert_eq!(current(store.clone()).await.as_deref(), Some("v2"));
        assert_eq!(
            store.rollback_skill("echo").await.expect("back").as_deref(),
            Some("v1")
        );
        assert_eq!(
            store.rollback_skill("echo").await.expect("no earlier"),
            None
        );
        assert_eq!(
            current(store.clone()).await.as_deref(),
            Some("v1"),
            "unchanged"
        );
        assert_eq!(store.rollback_skill("missing").await.expect("none"), None);
        assert_eq!(
            store
                .registered_skills()
                .await
                .expect("read")
                .get("other")
                .map(String::as_str),
            Some("o1"),
            "other skills untouched"
        );

        store
            .put_skill_component("abc", b"\0asm one")
            .await
            .expect("put");
        store
            .put_skill_component("abc", b"\0asm one")
            .await
            .expect("put twice");
        assert_eq!(
            store.skill_component("abc").await.expect("get").as_deref(),
            Some(b"\0asm one".as_slice())
        );
        assert_eq!(store.skill_component("nope").await.expect("get"), None);
    }

    pub async fn skill_switches_persist_and_the_last_one_wins(fixture: TestStore) {
        assert!(
            fixture
                .store
                .skill_states()
                .await
                .expect("states")
                .is_empty()
        );
        fixture
            .store
            .set_skill_state("echo", false, "ops")
            .await
            .expect("disable");
        fixture
            .store
            .set_skill_state("faq", true, "ops")
            .await
            .expect("enable");
        fixture
            .store
            .set_skill_state("echo", true, "ops")
            .await
            .expect("enable again");
        let states = fixture.store.skill_states().await.expect("states");
        assert_eq!(states.get("echo"), Some(&true));
        assert_eq!(states.get("faq"), Some(&true));
    }
}

#[tokio::test]
async fn postgres_rows_go_to_month_partitions_created_on_demand() {
    let pg = TestPostgres::new().await;
    let batch = vec![
        record(
            "oct",
            Direction::In,
            "g",
            datetime!(2026-10-31 23:59:59 UTC),
        ),
        record("nov", Direction::In, "g", datetime!(2026-11-01 00:00 UTC)),
        record("jan", Direction::In, "g", datetime!(2027-01-15 12:00 UTC)),
    ];
    pg.store.write_history(&batch).await.expect("write");
    for (partition, id) in [
        ("messages_y2026m10", "oct"),
        ("messages_y2026m11", "nov"),
        ("messages_y2027m01", "jan"),
    ] {
        let rows = pg.query(&format!("SELECT id FROM {partition}")).await;
        assert_eq!(rows.len(), 1, "{partition}");
        assert_eq!(rows[0].get::<_, String>(0), id);
    }
    let default_rows: i64 = pg.query("SELECT count(*) FROM messages_default").await[0].get(0);
    assert_eq!(default_rows, 0);
}

#[tokio::test]
async fn postgres_migrations_run_once() {
    let pg = TestPostgres::new().await;
    assert!(
        pg.store.migrate().await.expect("migrate").is_empty(),
        "already applied by connect"
    );
    let versions: Vec<i32> = pg
        .query("SELECT version FROM clawdbot_migrations")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7]);
}

#[tokio::test]
async fn sqlite_history_survives_reopening_the_file() {
    let fixture = TestStore::new(clawdbot_testkit::store::StoreBackend::Sqlite).await;
    let batch = vec![record(
        "kept",
        Direction::In,
        "g",
        datetime!(2026-11-25 08:00 UTC),
    )];
    fixture.store.write_history(&batch).await.expect("write");
    let reopened = fixture.reopen_sqlite().await;
    let rows = reopened
        .conversation("onebot", "default", "g", 10)
        .await
        .expect("read");
    assert_eq!(rows, batch);
    assert_eq!(
        reopened
            .write_history(&batch)
            .await
            .expect("replay after reopen"),
        0
    );
}
