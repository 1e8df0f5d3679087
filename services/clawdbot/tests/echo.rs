//! The spine end to end, with every role in one process (`clawdbot up`): a signed OneBot event
//! in, the echo at the mock OneBot API, rows in Postgres.

mod common;

use std::time::Duration;

use clawdbot_testkit::mock::onebot::Failure;
use common::{Clawdbot, Ports, SECRET, SELF_ID, Setup};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_signed_group_message_gets_its_echo_in_the_same_group() {
    let setup = Setup::new().await;
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

#[tokio::test]
async fn a_bad_or_missing_signature_gets_401_and_no_reply() {
    let setup = Setup::new().await;
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

#[tokio::test]
async fn the_same_message_id_twice_gets_one_reply() {
    let setup = Setup::new().await;
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

#[tokio::test]
async fn an_api_failing_twice_with_500_then_succeeding_gives_one_reply() {
    let setup = Setup::new().await;
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

#[tokio::test]
async fn inbound_and_outbound_rows_land_in_postgres() {
    let setup = Setup::new().await;
    let ports = Ports::new();
    let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;

    assert_eq!(
        setup
            .post_group_message(ports.ingress, 4242, 3, "/echo remember me")
            .await,
        204
    );
    setup.mock.wait_for(1, WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let rows = loop {
        let rows = setup
            .postgres
            .query("SELECT direction, platform, conversation_id, text, skill, status, platform_message_id FROM messages ORDER BY direction")
            .await;
        if rows.len() >= 2 || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rows: Vec<(String, String, String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "in");
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str(), rows[0].3.as_str()),
        ("onebot", "4242", "/echo remember me")
    );
    assert_eq!(rows[0].6, "3", "the platform's message id");
    assert_eq!(rows[1].0, "out");
    assert_eq!(
        (
            rows[1].2.as_str(),
            rows[1].3.as_str(),
            rows[1].4.as_str(),
            rows[1].5.as_str()
        ),
        ("4242", "remember me", "echo", "delivered")
    );
    // The month partition exists, and the default partition stayed empty.
    let default_rows = setup
        .postgres
        .query("SELECT count(*) FROM messages_default")
        .await;
    assert_eq!(default_rows[0].get::<_, i64>(0), 0);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_unknown_accounts_404() {
    let setup = Setup::new().await;
    let ports = Ports::new();
    let config = setup.config(
        &setup.redis.url,
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
