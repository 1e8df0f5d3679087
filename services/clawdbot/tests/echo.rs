//! The spine end to end, with every role in one process (`clawdbot up`): a signed OneBot event
//! in, the echo at the mock OneBot API, rows in history — on both backends (Redis + Postgres,
//! and the in-process bus + SQLite), from one suite.

mod common;

use std::time::Duration;

use clawdbot_store::Direction;
use clawdbot_testkit::mock::onebot::Failure;
use common::{Backend, Clawdbot, Ports, SECRET, SELF_ID, Setup};

const WAIT: Duration = Duration::from_secs(10);

clawdbot_testkit::backend_suite!(Setup { cluster => Backend::Cluster, embedded => Backend::Embedded }; cases; [
    a_signed_group_message_gets_its_echo_in_the_same_group,
    a_bad_or_missing_signature_gets_401_and_no_reply,
    the_same_message_id_twice_gets_one_reply,
    a_reused_onebot_message_id_with_new_content_is_a_new_message,
    an_api_failing_twice_with_500_then_succeeding_gives_one_reply,
    inbound_and_outbound_rows_land_in_history,
    oversized_bodies_get_413_and_unknown_accounts_404,
]);

mod cases {
    use super::*;

    pub async fn a_signed_group_message_gets_its_echo_in_the_same_group(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

        let status = setup
            .post_group_message(ports.ingress, 123456, 1, "/echo 你好")
            .await;
        assert_eq!(status, 204);
        let sent = setup.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1, "one reply");
        assert_eq!(sent[0].action, "send_group_msg");
        assert_eq!(sent[0].group_id, Some(123456));
        assert_eq!(sent[0].text(), "你好");
    }

    pub async fn a_bad_or_missing_signature_gets_401_and_no_reply(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

        let body = clawdbot_testkit::onebot_group_message(SELF_ID, 1, 2, 10, "/echo forged");
        assert_eq!(setup.post(ports.ingress, &body, None).await, 401);
        let wrong = clawdbot_testkit::onebot_signature("not-the-secret", body.as_bytes());
        assert_eq!(setup.post(ports.ingress, &body, Some(&wrong)).await, 401);
        let tampered = body.replace("forged", "forgeD");
        let signed_original = clawdbot_testkit::onebot_signature(SECRET, body.as_bytes());
        assert_eq!(
            setup
                .post(ports.ingress, &tampered, Some(&signed_original))
                .await,
            401
        );

        // A valid message after them: once its echo arrived, the forged ones would have too.
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 1, 11, "/echo genuine")
                .await,
            204
        );
        setup.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let texts: Vec<String> = setup.mock.sent().iter().map(|m| m.text()).collect();
        assert_eq!(texts, vec!["genuine".to_string()]);
    }

    pub async fn the_same_message_id_twice_gets_one_reply(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

        assert_eq!(
            setup
                .post_group_message(ports.ingress, 5, 77, "/echo once")
                .await,
            204
        );
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 5, 77, "/echo once")
                .await,
            204,
            "a retry is answered"
        );
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 5, 78, "/echo after")
                .await,
            204
        );
        setup.mock.wait_for(2, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut texts: Vec<String> = setup.mock.sent().iter().map(|m| m.text()).collect();
        texts.sort();
        assert_eq!(texts, vec!["after".to_string(), "once".to_string()]);
    }

    pub async fn a_reused_onebot_message_id_with_new_content_is_a_new_message(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

        // OneBot ids are 32-bit and reused by implementations under load: the same id from
        // another sender or with other content is another message; the very same event twice
        // (the implementation's retry) is one.
        for (user, text) in [
            (42, "/echo first"),
            (42, "/echo second"),
            (43, "/echo first"),
        ] {
            assert_eq!(
                setup
                    .post_group_message_from(ports.ingress, 9, user, 500, text)
                    .await,
                204
            );
        }
        assert_eq!(
            setup
                .post_group_message_from(ports.ingress, 9, 42, 500, "/echo first")
                .await,
            204,
            "the retry is answered 2xx"
        );
        setup.mock.wait_for(3, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut texts: Vec<String> = setup.mock.sent().iter().map(|m| m.text()).collect();
        texts.sort();
        assert_eq!(texts, vec!["first", "first", "second"]);
    }

    pub async fn an_api_failing_twice_with_500_then_succeeding_gives_one_reply(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

        setup
            .mock
            .fail_next(&[Failure::Http(500), Failure::Http(500)]);
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 9, 1, "/echo persistent")
                .await,
            204
        );
        let sent = setup.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(setup.mock.failed_calls(), 2);
        assert_eq!(
            setup.mock.sent().len(),
            1,
            "delivered exactly once: {sent:?}"
        );
        assert_eq!(sent[0].text(), "persistent");
    }

    pub async fn inbound_and_outbound_rows_land_in_history(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

        let status = setup
            .post_group_message(ports.ingress, 4242, 3, "/echo remember me")
            .await;
        assert_eq!(status, 204);
        setup.mock.wait_for(1, WAIT).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let rows = loop {
            let rows = setup.history("4242").await;
            if rows.len() >= 2 || tokio::time::Instant::now() > deadline {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(rows.len(), 2, "{rows:?}");
        let inbound = rows
            .iter()
            .find(|r| r.direction == Direction::In)
            .expect("inbound row");
        let outbound = rows
            .iter()
            .find(|r| r.direction == Direction::Out)
            .expect("outbound row");
        assert_eq!(
            (inbound.platform.as_str(), inbound.text.as_str()),
            ("onebot", "/echo remember me")
        );
        assert_eq!(
            inbound.platform_message_id, "3",
            "the platform's message id"
        );
        assert_eq!(inbound.sender_id, "42");
        assert_eq!(
            (outbound.text.as_str(), outbound.skill.as_str()),
            ("remember me", "echo")
        );
        assert_eq!(outbound.status, "delivered");
        assert_eq!(
            outbound.in_reply_to, inbound.id,
            "the reply points at its message"
        );
    }

    pub async fn oversized_bodies_get_413_and_unknown_accounts_404(setup: Setup) {
        let ports = Ports::new();
        let config = setup.config(
            &setup.redis_url(),
            ports.egress,
            "ingress:\n  max_body_bytes: 2048\n",
        );
        let _bot = Clawdbot::start(&["up"], &config, &ports).await;

        let huge = "x".repeat(4096);
        let body = clawdbot_testkit::onebot_group_message(SELF_ID, 1, 2, 3, &huge);
        let signature = clawdbot_testkit::onebot_signature(SECRET, body.as_bytes());
        assert_eq!(
            setup.post(ports.ingress, &body, Some(&signature)).await,
            413
        );
        let response = setup
            .http
            .post(format!(
                "http://127.0.0.1:{}/clawdbot/onebot/nobody/callback",
                ports.ingress
            ))
            .body("{}")
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 404);
    }
}

#[tokio::test]
async fn embedded_history_survives_a_restart_of_the_process() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let config = setup.default_config(&ports);
    let mut first = Clawdbot::start(&["up"], &config, &ports).await;
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 77, 1, "/echo before restart")
            .await,
        204
    );
    setup.mock.wait_for(1, WAIT).await;
    let (_, status) = first.terminate().await;
    assert!(status.success(), "{}", first.logs());

    let _second = Clawdbot::start(&["up"], &config, &ports).await;
    let rows = setup.history("77").await;
    assert_eq!(
        rows.len(),
        2,
        "both rows written before the stop are still there: {rows:?}"
    );
    // The restarted process still dedupes nothing it has not seen and answers new messages.
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 77, 2, "/echo after restart")
            .await,
        204
    );
    let sent = setup.mock.wait_for(2, WAIT).await;
    assert_eq!(
        sent.last().map(|m| m.text()),
        Some("after restart".to_string())
    );
}

#[tokio::test]
async fn embedded_sigterm_answers_and_records_everything_accepted_before_exiting() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let mut bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
    let total = 50;
    for id in 0..total {
        assert_eq!(
            setup
                // Many senders, as in a busy group (one sender this fast reads as a bot loop).
                .post_group_message_from(ports.ingress, 55, 5000 + id, id, &format!("/echo d{id}"))
                .await,
            204
        );
    }
    // Stop at once: the in-process queue dies with the process, so it must drain first.
    let (took, status) = bot.terminate().await;
    assert!(status.success(), "{}", bot.logs());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(
        setup.mock.sent_count(),
        total as usize,
        "every accepted message was answered"
    );
    let rows = setup.history("55").await;
    assert_eq!(
        rows.len(),
        2 * total as usize,
        "every message and reply is in history:\n{}",
        bot.logs()
    );
}
