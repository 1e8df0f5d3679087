//! What real OneBot clients send, end to end on both backends: a group member addressing the
//! bot with a mention, a group where the bot answers only when addressed, an implementation
//! that reports the bot's own sends back (NapCat `reportSelfMessage`), and another bot that
//! answers ours in a group. Events are built as the OneBot v11 spec lays them out (segment
//! arrays as NapCat posts them); the self-reports and the other bot are the mock's own.

mod common;

use std::time::Duration;

use clawdbot_testkit::mock::onebot::ReportBack;
use common::{Backend, Clawdbot, Ports, SECRET, SELF_ID, Setup};

const WAIT: Duration = Duration::from_secs(10);

clawdbot_testkit::backend_suite!(Setup { cluster => Backend::Cluster, embedded => Backend::Embedded }; cases; [
    a_command_after_a_mention_of_the_bot_is_answered,
    where_a_mention_is_required_only_addressed_messages_are_answered,
    the_bots_own_sends_reported_back_are_not_answered,
    two_bots_answering_each_other_are_cut,
    events_recorded_by_other_projects_are_accepted_and_recorded,
    a_long_answer_goes_out_as_one_forward_message,
]);

/// A group message as NapCat posts it, with `segments` as the message array.
fn group_event(message_id: i64, group: i64, user: i64, segments: serde_json::Value) -> String {
    serde_json::json!({
        "time": 1_700_000_000 + message_id, "self_id": SELF_ID, "post_type": "message",
        "message_type": "group", "sub_type": "normal", "message_id": message_id,
        "group_id": group, "user_id": user, "message": segments, "raw_message": "", "font": 0,
        "sender": {"user_id": user, "nickname": "member", "card": "", "role": "member"},
    })
    .to_string()
}

fn at(qq: i64) -> serde_json::Value {
    serde_json::json!({"type": "at", "data": {"qq": qq.to_string()}})
}

fn text(text: &str) -> serde_json::Value {
    serde_json::json!({"type": "text", "data": {"text": text}})
}

/// Waits until the mock's count of sends stops changing for `quiet`; returns it.
async fn settled_count(setup: &Setup, quiet: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    let mut last = setup.mock.sent_count();
    let mut since = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = setup.mock.sent_count();
        if now != last {
            (last, since) = (now, tokio::time::Instant::now());
        } else if since.elapsed() >= quiet {
            break;
        }
    }
    last
}

mod cases {
    use super::*;

    async fn post_signed(setup: &Setup, port: u16, body: &str) {
        let signature = clawdbot_testkit::onebot_signature(SECRET, body.as_bytes());
        assert_eq!(
            setup.post(port, body, Some(&signature)).await,
            204,
            "{body}"
        );
    }

    pub async fn a_command_after_a_mention_of_the_bot_is_answered(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
        // `@bot /echo hi @alice`: the bot's mention is not part of the command, alice's stays.
        let body = group_event(
            1,
            321,
            42,
            serde_json::json!([at(SELF_ID), text(" /echo hi "), at(777)]),
        );
        post_signed(&setup, ports.ingress, &body).await;
        // The same as a CQ string, as go-cqhttp posts it by default.
        let cq = group_event(
            2,
            321,
            42,
            serde_json::json!("[CQ:at,qq=10001] /echo again"),
        );
        post_signed(&setup, ports.ingress, &cq).await;
        let sent = setup.mock.wait_for(2, WAIT).await;
        let texts: Vec<String> = sent.iter().map(|m| m.text()).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts.contains(&"again".to_string()), "{texts:?}");
        let first = sent
            .iter()
            .find(|m| m.text() != "again")
            .expect("the first echo");
        // alice's mention goes back as a mention segment, not as text.
        assert_eq!(first.text().trim(), "hi");
        assert!(
            first.message.to_string().contains("777"),
            "{}",
            first.message
        );
    }

    pub async fn where_a_mention_is_required_only_addressed_messages_are_answered(setup: Setup) {
        let ports = Ports::new();
        let config = setup.config(
            &setup.redis_url(),
            ports.egress,
            "worker:\n  block_ms: 200\npermissions:\n  require_mention_in: [555]\n",
        );
        let _bot = Clawdbot::start(&["up"], &config, &ports).await;
        let plain = group_event(1, 555, 42, serde_json::json!([text("/echo unaddressed")]));
        post_signed(&setup, ports.ingress, &plain).await;
        let addressed = group_event(
            2,
            555,
            42,
            serde_json::json!([at(SELF_ID), text(" /echo addressed")]),
        );
        post_signed(&setup, ports.ingress, &addressed).await;
        let elsewhere = group_event(3, 556, 42, serde_json::json!([text("/echo elsewhere")]));
        post_signed(&setup, ports.ingress, &elsewhere).await;
        setup.mock.wait_for(2, WAIT).await;
        let count = settled_count(&setup, Duration::from_secs(2)).await;
        let texts: Vec<String> = setup.mock.sent().iter().map(|m| m.text()).collect();
        assert_eq!(count, 2, "{texts:?}");
        assert!(texts.contains(&"addressed".to_string()), "{texts:?}");
        assert!(texts.contains(&"elsewhere".to_string()), "{texts:?}");
    }

    pub async fn the_bots_own_sends_reported_back_are_not_answered(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
        setup.mock.report_back(
            ([127, 0, 0, 1], ports.ingress).into(),
            Some(SECRET),
            ReportBack::OwnSends { self_id: SELF_ID },
        );
        // Answered as a message, each echo would be echoed again: three sends.
        let body = group_event(1, 654, 42, serde_json::json!([text("/echo /echo /echo x")]));
        post_signed(&setup, ports.ingress, &body).await;
        setup.mock.wait_for(1, WAIT).await;
        let count = settled_count(&setup, Duration::from_secs(2)).await;
        assert_eq!(count, 1, "{:?}", setup.mock.sent());
        assert_eq!(setup.mock.sent()[0].text(), "/echo /echo x");
    }

    pub async fn two_bots_answering_each_other_are_cut(setup: Setup) {
        let ports = Ports::new();
        let config = setup.config(
            &setup.redis_url(),
            ports.egress,
            "worker:\n  block_ms: 200\n  loop_guard: { max_replies: 5, window_secs: 60, pause_secs: 300 }\n",
        );
        let bot = Clawdbot::start(&["up"], &config, &ports).await;
        // Another bot in the group repeats everything ours says after `/echo `.
        setup.mock.report_back(
            ([127, 0, 0, 1], ports.ingress).into(),
            Some(SECRET),
            ReportBack::Peer {
                self_id: SELF_ID,
                user_id: 20002,
                prefix: "/echo ".into(),
            },
        );
        let body = group_event(1, 987, 42, serde_json::json!([text("/echo ping")]));
        post_signed(&setup, ports.ingress, &body).await;
        setup.mock.wait_for(3, WAIT).await;
        let count = settled_count(&setup, Duration::from_secs(3)).await;
        // One answer to the person, five to the other bot, then the loop is cut.
        assert_eq!(count, 6, "{:?}", setup.mock.sent());
        let logs = bot.logs();
        assert_eq!(
            logs.matches("reply loop cut").count(),
            1,
            "logged once: {logs}"
        );
        // The person who started it is still answered.
        let again = group_event(2, 987, 42, serde_json::json!([text("/echo still here")]));
        post_signed(&setup, ports.ingress, &again).await;
        let sent = setup.mock.wait_for(7, WAIT).await;
        assert!(sent.iter().any(|m| m.text() == "still here"), "{sent:?}");
    }

    /// Every event of `testkit/fixtures/external/onebot` (NapCat recordings and NoneBot's test
    /// event, see SOURCES.md) through the running ingress: each accepted, the messages in
    /// history with the text `expected.json` names, the bot's own messages and the notices
    /// never answered, nothing answered at all (none is a command).
    pub async fn events_recorded_by_other_projects_are_accepted_and_recorded(setup: Setup) {
        let ports = Ports::new();
        let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
        let mut owed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for common::external_fixtures::Fixture { file, body, case } in
            common::external_fixtures::load("onebot")
        {
            let mut event: serde_json::Value = serde_json::from_str(&body).expect(&file);
            // The one change: the recording account's id becomes the test account's.
            let recorded_self = event["self_id"].clone();
            event["self_id"] = SELF_ID.into();
            if event["user_id"] == recorded_self {
                event["user_id"] = SELF_ID.into();
            }
            post_signed(&setup, ports.ingress, &event.to_string()).await;
            if case["outcome"] == "message" {
                let conversation = case["conversation"].as_str().expect("conversation");
                let id = conversation.split_once(':').expect("kind:id").1;
                owed.entry(id.to_string())
                    .or_default()
                    .push(case["text"].as_str().expect("text").to_string());
            }
        }
        for (conversation, mut texts) in owed {
            let recorded = setup
                .wait_for_history_texts("onebot", &conversation, texts.len(), |r| {
                    r.event_type.starts_with("message")
                })
                .await;
            texts.sort();
            assert_eq!(recorded, texts, "conversation {conversation}");
        }
        assert_eq!(
            settled_count(&setup, Duration::from_secs(1)).await,
            0,
            "nothing answered: {:?}",
            setup.mock.sent()
        );
    }

    pub async fn a_long_answer_goes_out_as_one_forward_message(setup: Setup) {
        let ports = Ports::new();
        let config = setup.config_with(
            &setup.redis_url(),
            ports.egress,
            "  forward_over_chars: 40\n",
            "worker:\n  block_ms: 200\n",
        );
        let _bot = Clawdbot::start(&["up"], &config, &ports).await;
        let long: String = (1..=12)
            .map(|n| format!("第{n}行: a long answer\n"))
            .collect();
        let body = group_event(
            1,
            432,
            42,
            serde_json::json!([text(&format!("/echo {long}"))]),
        );
        post_signed(&setup, ports.ingress, &body).await;
        let short = group_event(2, 432, 42, serde_json::json!([text("/echo short")]));
        post_signed(&setup, ports.ingress, &short).await;
        let sent = setup.mock.wait_for(2, WAIT).await;
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0].action, "send_group_forward_msg");
        let nodes = sent[0].message.as_array().expect("nodes");
        assert!(
            nodes.len() >= 6,
            "cut into nodes of at most 40 characters: {nodes:?}"
        );
        assert!(nodes.iter().all(|n| {
            n["type"] == "node"
                && n["data"]["uin"]
                    .as_str()
                    .and_then(|u| u.parse::<i64>().ok())
                    == Some(SELF_ID)
        }));
        assert_eq!(sent[0].text(), long, "nothing lost");
        assert_eq!(
            (sent[1].action.as_str(), sent[1].text().as_str()),
            ("send_group_msg", "short")
        );
    }
}
