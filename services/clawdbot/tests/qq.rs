//! The official QQ bot API end to end: Ed25519-signed events into the ingress, passive replies
//! at the mock open platform with msg_id and msg_seq, and QQ's reply rules held by egress —
//! against real clawdbot processes, Redis and Postgres (or the embedded backend).

mod common;

use std::time::Duration;

use clawdbot_core::proto::egress_client::EgressClient;
use clawdbot_core::proto::{
    Conversation, ConversationKind, DeliveryStatus, Reply, Segment, SendRequest, Text,
    segment::Kind,
};
use clawdbot_platforms::qq::QqReplyContext;
use clawdbot_testkit::mock::qq::{MockQq, QqEvents};
use common::{Backend, Clawdbot, Ports, Setup};

const WAIT: Duration = Duration::from_secs(10);
const APP_ID: &str = "102000001";
const SECRET: &str = "myBotSecretForTests123";

struct Qq {
    setup: Setup,
    mock: MockQq,
    events: QqEvents,
}

impl Qq {
    async fn new(backend: Backend) -> Self {
        Self {
            setup: Setup::new(backend).await,
            mock: MockQq::start(APP_ID, SECRET).await,
            events: QqEvents::new(APP_ID, SECRET),
        }
    }

    fn config(&self, ports: &Ports, extra: &str) -> std::path::PathBuf {
        let qq = format!(
            "qq:\n  app_id: \"{APP_ID}\"\n  secret: \"{SECRET}\"\n  api_base: \"{}\"\n  token_url: \"{}\"\n  retry_backoff_ms: 20\n",
            self.mock.api_base(),
            self.mock.token_url()
        );
        self.setup.config(
            &self.setup.redis_url(),
            ports.egress,
            &format!("worker:\n  reclaim_idle_secs: 1\n  block_ms: 200\n{qq}{extra}"),
        )
    }

    async fn post(
        &self,
        port: u16,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> (u16, String) {
        let mut request = self
            .setup
            .http
            .post(format!("http://127.0.0.1:{port}/clawdbot/qq/callback"))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("ingress answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

fn reply(id: &str, msg_id: &str, age: Duration, text: &str) -> Reply {
    Reply {
        id: id.to_string(),
        platform: "qq".into(),
        bot_id: "default".into(),
        conversation: Some(Conversation {
            kind: ConversationKind::Group.into(),
            id: "G1".into(),
        }),
        segments: vec![Segment {
            kind: Some(Kind::Text(Text { text: text.into() })),
        }],
        reply_context: Some(clawdbot_platforms::reply_context::seal(
            "qq",
            &QqReplyContext {
                app_id: APP_ID.into(),
                scene: "group".into(),
                target: "G1".into(),
                msg_id: msg_id.into(),
                event_id: String::new(),
                message_at_ms: clawdbot_core::now_ms() - age.as_millis() as i64,
            },
        )),
        ..Default::default()
    }
}

async fn egress_client(port: u16) -> EgressClient<tonic::transport::Channel> {
    EgressClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("egress connects")
}

clawdbot_testkit::backend_suite!(Setup { cluster => Backend::Cluster, embedded => Backend::Embedded }; cases; [
    the_callback_url_validates_and_a_group_at_message_gets_its_passive_reply_once,
    bad_events_are_refused_with_their_status,
    a_button_click_is_acknowledged_once_it_is_in_the_stream,
    documented_events_are_accepted_and_recorded,
]);

mod cases {
    use super::*;

    async fn started(setup: Setup, extra: &str) -> (Qq, Ports, Clawdbot) {
        let backend = setup.backend;
        drop(setup);
        let qq = Qq::new(backend).await;
        let ports = Ports::new();
        let bot = Clawdbot::start(&["up"], &qq.config(&ports, extra), &ports).await;
        (qq, ports, bot)
    }

    pub async fn the_callback_url_validates_and_a_group_at_message_gets_its_passive_reply_once(
        setup: Setup,
    ) {
        let (qq, ports, _bot) = started(setup, "").await;
        let validation =
            r#"{"d":{"plain_token":"Arq0D5A61EgUu4OxUvOp","event_ts":"1725442341"},"op":13}"#;
        let headers = [("x-bot-appid", APP_ID.to_string())];
        let (status, body) = qq.post(ports.ingress, &headers, validation).await;
        assert_eq!(status, 200);
        let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(answer["plain_token"], "Arq0D5A61EgUu4OxUvOp");
        assert_eq!(
            answer["signature"].as_str(),
            Some(
                qq.events
                    .validation_signature("1725442341", "Arq0D5A61EgUu4OxUvOp")
                    .as_str()
            ),
            "signed as the QQ docs say, checked by the mock's own Ed25519"
        );

        let event = qq.events.group_at(
            "GROUP_AT_MESSAGE_CREATE:ev1",
            "ROBOT1.0_m1",
            "G1",
            "/echo 你好 QQ",
            Duration::ZERO,
        );
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers(&event), &event)
                .await
                .0,
            200
        );
        // QQ delivers the same event again.
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers(&event), &event)
                .await
                .0,
            200
        );
        let sent = qq.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(qq.mock.sent_count(), 1, "one reply: {sent:?}");
        assert_eq!(sent[0].target, "groups/G1");
        assert_eq!(sent[0].body["msg_id"], "ROBOT1.0_m1");
        assert_eq!(sent[0].msg_seq(), 1);
        assert_eq!(sent[0].body["msg_type"], 0);
        assert_eq!(sent[0].content(), "你好 QQ");
        assert!(qq.mock.refusals().is_empty(), "{:?}", qq.mock.refusals());
    }

    pub async fn a_button_click_is_acknowledged_once_it_is_in_the_stream(setup: Setup) {
        let (qq, ports, _bot) = started(setup, "").await;
        // A group button click as the QQ bot API documents INTERACTION_CREATE.
        let click = serde_json::json!({
            "op": 0, "id": "INTERACTION_CREATE:click-1", "t": "INTERACTION_CREATE",
            "d": {
                "id": "interaction-1", "application_id": APP_ID, "type": 11, "scene": "group",
                "chat_type": 1, "timestamp": "2026-12-03T12:00:00+08:00",
                "group_openid": "G1", "group_member_openid": "M1", "version": 1,
                "data": {"type": 11, "resolved": {"button_data": "yes", "button_id": "1"}},
            },
        })
        .to_string();
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers(&click), &click)
                .await
                .0,
            200
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        while qq.mock.interaction_acks().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never acknowledged; refusals {:?}",
                qq.mock.refusals()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            qq.mock.interaction_acks(),
            vec![("interaction-1".to_string(), 0)]
        );
    }

    pub async fn bad_events_are_refused_with_their_status(setup: Setup) {
        let (qq, ports, _bot) = started(setup, "ingress:\n  max_body_bytes: 4096\n").await;
        let event = qq
            .events
            .group_at("E:bad", "m-bad", "G1", "/echo forged", Duration::ZERO);
        let mut headers = qq.events.headers(&event);
        assert_eq!(
            qq.post(ports.ingress, &headers[..2], &event).await.0,
            401,
            "unsigned"
        );
        headers[3].1 = "00".repeat(63);
        assert_eq!(
            qq.post(ports.ingress, &headers, &event).await.0,
            401,
            "63-byte signature"
        );
        let tampered = event.replace("forged", "forgeD");
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers(&event), &tampered)
                .await
                .0,
            401,
            "tampered"
        );
        let old = qq
            .events
            .headers_at(&event, clawdbot_core::now_ms() / 1000 - 3600);
        assert_eq!(
            qq.post(ports.ingress, &old, &event).await.0,
            401,
            "replayed an hour later"
        );
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers("{oops"), "{oops")
                .await
                .0,
            400
        );
        let unknown = r#"{"op":0,"id":"X:1","t":"SOMETHING_NEW","d":{}}"#;
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers(unknown), unknown)
                .await
                .0,
            200,
            "accepted, not routed"
        );
        let huge = "x".repeat(8192);
        assert_eq!(
            qq.post(ports.ingress, &qq.events.headers(&huge), &huge)
                .await
                .0,
            413
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(qq.mock.sent_count(), 0, "nothing answered");
    }

    /// Every event of `testkit/fixtures/external/qq` (the examples of QQ's bot documentation,
    /// see SOURCES.md), signed as QQ does and posted to the running ingress: each accepted,
    /// each in its conversation's history with the text `expected.json` names, nothing
    /// answered (none is a command).
    pub async fn documented_events_are_accepted_and_recorded(setup: Setup) {
        let (qq, ports, _bot) = started(setup, "").await;
        let mut owed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for common::external_fixtures::Fixture { file, body, case } in
            common::external_fixtures::load("qq")
        {
            let (status, answer) = qq
                .post(ports.ingress, &qq.events.headers(&body), &body)
                .await;
            assert!((200..300).contains(&status), "{file}: {status} {answer}");
            let conversation = case["conversation"].as_str().expect("conversation");
            let id = conversation.split_once(':').expect("kind:id").1;
            owed.entry(id.to_string())
                .or_default()
                .push(case["text"].as_str().expect("text").to_string());
        }
        let mut wrong = Vec::new();
        for (conversation, mut texts) in owed {
            texts.sort();
            let recorded = qq
                .setup
                .wait_for_history_texts("qq", &conversation, texts.len(), |_| true)
                .await;
            if recorded != texts {
                wrong.push(format!(
                    "{conversation}: recorded {recorded:?}, sent {texts:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(qq.mock.sent_count(), 0, "nothing answered");
    }
}

/// Two replies to one message get msg_seq 1 and 2; the sixth and a late one are refused before
/// any API call; a proactive send is refused with the reason.
#[tokio::test]
async fn replies_follow_qqs_rules_before_any_api_call() {
    let qq = Qq::new(Backend::Cluster).await;
    let ports = Ports::new();
    let _egress = Clawdbot::start(&["egress"], &qq.config(&ports, ""), &ports).await;
    let mut client = egress_client(ports.egress).await;
    let mut statuses = Vec::new();
    for n in 1..=6 {
        let response = client
            .send(SendRequest {
                reply: Some(reply(
                    &format!("r{n}"),
                    "m-rules",
                    Duration::ZERO,
                    &format!("answer {n}"),
                )),
            })
            .await
            .expect("send")
            .into_inner();
        statuses.push((response.status(), response.error.clone()));
    }
    let seqs: Vec<u64> = qq.mock.sent().iter().map(|m| m.msg_seq()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert!(
        statuses[..5]
            .iter()
            .all(|(s, _)| *s == DeliveryStatus::Delivered),
        "{statuses:?}"
    );
    assert_eq!(statuses[5].0, DeliveryStatus::Failed);
    assert!(
        statuses[5].1.contains("5 replies per message"),
        "{}",
        statuses[5].1
    );

    let late = client
        .send(SendRequest {
            reply: Some(reply(
                "late",
                "m-late",
                Duration::from_secs(301),
                "too late",
            )),
        })
        .await
        .expect("send")
        .into_inner();
    assert_eq!(late.status(), DeliveryStatus::Failed);
    assert!(late.error.contains("300 s"), "{}", late.error);
    let mut proactive = reply("push", "", Duration::ZERO, "push");
    proactive.reply_context = None;
    let pushed = client
        .send(SendRequest {
            reply: Some(proactive),
        })
        .await
        .expect("send")
        .into_inner();
    assert_eq!(pushed.status(), DeliveryStatus::Failed);
    assert!(pushed.error.contains("2025-04-21"), "{}", pushed.error);
    assert_eq!(qq.mock.sent_count(), 5, "the refused ones never reached QQ");
    assert!(
        qq.mock.refusals().is_empty(),
        "QQ never had to refuse: {:?}",
        qq.mock.refusals()
    );
}

/// Two egress processes answering one message concurrently never reuse a msg_seq.
#[tokio::test]
async fn two_egress_processes_never_reuse_a_msg_seq() {
    let qq = Qq::new(Backend::Cluster).await;
    let (a, b) = (Ports::new(), Ports::new());
    let config = qq.config(&a, "");
    let _egress_a = Clawdbot::start(&["egress"], &config, &a).await;
    let _egress_b = Clawdbot::start(&["egress"], &config, &b).await;
    let clients = [egress_client(a.egress).await, egress_client(b.egress).await];
    let sends = (0..5).map(|n| {
        let mut client = clients[n % 2].clone();
        async move {
            client
                .send(SendRequest {
                    reply: Some(reply(&format!("c{n}"), "m-shared", Duration::ZERO, "hi")),
                })
                .await
                .expect("send")
                .into_inner()
        }
    });
    let responses = futures::future::join_all(sends).await;
    assert!(
        responses
            .iter()
            .all(|r| r.status() == DeliveryStatus::Delivered),
        "{responses:?}"
    );
    let mut seqs: Vec<u64> = qq.mock.sent().iter().map(|m| m.msg_seq()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert!(qq.mock.refusals().is_empty(), "{:?}", qq.mock.refusals());
    assert_eq!(qq.mock.token_calls(), 1, "one token for both replicas");
}

/// An image reply is uploaded through the files endpoint, then sent as msg_type 7 with its
/// file_info; text and image each take a msg_seq.
#[tokio::test]
async fn an_image_reply_is_uploaded_then_sent_as_media() {
    let qq = Qq::new(Backend::Cluster).await;
    let ports = Ports::new();
    let _egress = Clawdbot::start(&["egress"], &qq.config(&ports, ""), &ports).await;
    let mut client = egress_client(ports.egress).await;
    let mut with_image = reply("img", "m-img", Duration::ZERO, "the chart:");
    with_image.segments.push(Segment {
        kind: Some(Kind::Image(clawdbot_core::proto::Media {
            url: "https://example.com/chart.png".into(),
            ..Default::default()
        })),
    });
    let response = client
        .send(SendRequest {
            reply: Some(with_image),
        })
        .await
        .expect("send")
        .into_inner();
    assert_eq!(response.status(), DeliveryStatus::Delivered, "{response:?}");
    assert_eq!(qq.mock.uploads(), 1);
    let sent = qq.mock.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].body["msg_type"].as_u64(), sent[0].msg_seq()),
        (Some(0), 1)
    );
    assert_eq!(
        (sent[1].body["msg_type"].as_u64(), sent[1].msg_seq()),
        (Some(7), 2)
    );
    assert_eq!(sent[1].body["media"]["file_info"], "fileinfo-groups-G1");
}
