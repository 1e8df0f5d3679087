//! WeCom end to end: encrypted callbacks into the ingress, answers through the mock WeCom API
//! (`message/send`, `webhook/send`), the access token shared through Redis, and the send
//! limits — against real clawdbot processes, a real Redis and Postgres (or the embedded
//! backend), and the mock WeCom server in the testkit.

mod common;

use std::time::{Duration, Instant};

use clawdbot_core::proto::egress_client::EgressClient;
use clawdbot_core::proto::{
    Conversation, ConversationKind, DeliveryStatus, Markdown, Media, Reply, Segment,
    SendBatchRequest, SendRequest, Text, segment::Kind, send_result,
};
use clawdbot_testkit::mock::wecom::{Callback, MockWeCom, MockWeComSettings, WeComCallbacks};
use common::{Backend, Clawdbot, Ports, Setup};

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "OPENCLAW";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC";
const AGENT_ID: i64 = 1_000_002;

struct WeCom {
    setup: Setup,
    mock: MockWeCom,
    callbacks: WeComCallbacks,
}

impl WeCom {
    async fn new(backend: Backend, settings: MockWeComSettings) -> Self {
        let callbacks = WeComCallbacks::new(TOKEN, AES_KEY, &settings.corp_id, AGENT_ID);
        Self {
            setup: Setup::new(backend).await,
            mock: MockWeCom::start(settings).await,
            callbacks,
        }
    }

    /// The config: the setup's backends plus one WeCom app at the mock, with `app_extra`
    /// (indented YAML keys of the app) and `extra` (top-level YAML).
    fn config(&self, ports: &Ports, app_extra: &str, extra: &str) -> std::path::PathBuf {
        let app = format!(
            "wechat_enterprise:\n  corp_id: \"wwmockcorp0000001\"\n  secret: \"mock-secret\"\n  agent_id: {AGENT_ID}\n  token: \"{TOKEN}\"\n  encoding_aes_key: \"{AES_KEY}\"\n  api_base: \"{}\"\n  retry_backoff_ms: 20\n{app_extra}",
            self.mock.api_base()
        );
        self.setup.config(
            &self.setup.redis_url(),
            ports.egress,
            &format!("worker:\n  reclaim_idle_secs: 1\n  block_ms: 200\n{app}{extra}"),
        )
    }

    async fn post(&self, port: u16, callback: &Callback) -> (u16, String) {
        let response = self
            .setup
            .http
            .post(format!(
                "http://127.0.0.1:{port}/clawdbot/wechat/callback?{}",
                callback.query
            ))
            .header("content-type", "text/xml")
            .body(callback.body.clone())
            .send()
            .await
            .expect("ingress answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

fn private_reply(id: &str, user: &str, segments: Vec<Segment>) -> Reply {
    Reply {
        id: id.to_string(),
        platform: "wecom".into(),
        bot_id: "default".into(),
        conversation: Some(Conversation {
            kind: ConversationKind::Private.into(),
            id: user.to_string(),
        }),
        segments,
        ..Default::default()
    }
}

fn text(text: &str) -> Segment {
    Segment {
        kind: Some(Kind::Text(Text { text: text.into() })),
    }
}

async fn egress_client(port: u16) -> EgressClient<tonic::transport::Channel> {
    EgressClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("egress connects")
}

clawdbot_testkit::backend_suite!(Setup { cluster => Backend::Cluster, embedded => Backend::Embedded }; cases; [
    the_url_verification_answers_the_bare_echostr_within_a_second,
    a_text_message_gets_its_echo_through_message_send,
    a_callback_and_three_retries_give_one_reply,
    an_expired_token_is_refreshed_once_and_the_send_succeeds,
    bad_callbacks_are_refused_with_their_status_and_nothing_is_answered,
    callbacks_from_other_projects_are_accepted_and_recorded,
]);

mod cases {
    use super::*;

    async fn started(setup: Setup) -> (WeCom, Ports, Clawdbot) {
        started_with(setup, "").await
    }

    async fn started_with(setup: Setup, extra: &str) -> (WeCom, Ports, Clawdbot) {
        let backend = setup.backend;
        drop(setup);
        let wecom = WeCom::new(backend, MockWeComSettings::default()).await;
        let ports = Ports::new();
        let bot = Clawdbot::start(&["up"], &wecom.config(&ports, "", extra), &ports).await;
        (wecom, ports, bot)
    }

    pub async fn the_url_verification_answers_the_bare_echostr_within_a_second(setup: Setup) {
        let (wecom, ports, _bot) = started(setup).await;
        let callback = wecom.callbacks.verification("1616140317555161061");
        let started = Instant::now();
        let response = wecom
            .setup
            .http
            .get(format!(
                "http://127.0.0.1:{}/clawdbot/wechat/callback?{}",
                ports.ingress, callback.query
            ))
            .send()
            .await
            .expect("answers");
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "1616140317555161061");
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    }

    pub async fn a_text_message_gets_its_echo_through_message_send(setup: Setup) {
        let (wecom, ports, _bot) = started(setup).await;
        let (status, body) = wecom
            .post(
                ports.ingress,
                &wecom.callbacks.text("zhangsan", 1001, "/echo 你好 WeCom"),
            )
            .await;
        assert_eq!((status, body.as_str()), (200, ""), "200 with an empty body");
        let sent = wecom.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1, "one reply");
        assert_eq!(sent[0].via, "app");
        assert_eq!(sent[0].touser, "zhangsan");
        assert_eq!(sent[0].body["agentid"], AGENT_ID);
        assert_eq!(sent[0].msgtype, "text");
        assert_eq!(sent[0].content(), "你好 WeCom");
        assert_eq!(wecom.mock.gettoken_calls(), 1);
    }

    pub async fn a_callback_and_three_retries_give_one_reply(setup: Setup) {
        let (wecom, ports, _bot) = started(setup).await;
        let callback = wecom.callbacks.text("lisi", 2002, "/echo once");
        for _ in 0..4 {
            // WeCom's retries repeat the message (new nonce and signature, same MsgId).
            let retry = wecom.callbacks.text("lisi", 2002, "/echo once");
            assert_eq!(wecom.post(ports.ingress, &retry).await.0, 200);
        }
        assert_eq!(wecom.post(ports.ingress, &callback).await.0, 200);
        wecom.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let contents: Vec<String> = wecom.mock.sent().iter().map(|m| m.content()).collect();
        assert_eq!(contents, vec!["once".to_string()]);
    }

    pub async fn an_expired_token_is_refreshed_once_and_the_send_succeeds(setup: Setup) {
        let (wecom, ports, _bot) = started(setup).await;
        wecom
            .post(
                ports.ingress,
                &wecom.callbacks.text("wangwu", 3001, "/echo first"),
            )
            .await;
        wecom.mock.wait_for(1, WAIT).await;
        assert_eq!(wecom.mock.gettoken_calls(), 1);

        wecom.mock.expire_tokens();
        wecom
            .post(
                ports.ingress,
                &wecom.callbacks.text("wangwu", 3002, "/echo second"),
            )
            .await;
        let sent = wecom.mock.wait_for(2, WAIT).await;
        let contents: Vec<String> = sent.iter().map(|m| m.content()).collect();
        assert_eq!(contents, vec!["first".to_string(), "second".to_string()]);
        assert_eq!(wecom.mock.gettoken_calls(), 2, "one refresh");
        assert_eq!(
            wecom.mock.refusals(),
            vec![("message/send".to_string(), 42001)]
        );
    }

    pub async fn bad_callbacks_are_refused_with_their_status_and_nothing_is_answered(setup: Setup) {
        // A small body limit, so that the oversized body fits the socket buffers and the 413
        // is read rather than racing the upload.
        let (wecom, ports, bot) = started_with(setup, "ingress:\n  max_body_bytes: 4096\n").await;
        let genuine = wecom.callbacks.text("zhaoliu", 4001, "/echo forged");
        let tampered = Callback {
            query: genuine.query.replace("msg_signature=", "msg_signature=f"),
            body: genuine.body.clone(),
        };
        assert_eq!(wecom.post(ports.ingress, &tampered).await.0, 401);
        let other_corp = WeComCallbacks::new(TOKEN, AES_KEY, "ww-another-corp", AGENT_ID).text(
            "zhaoliu",
            4002,
            "/echo forged",
        );
        assert_eq!(wecom.post(ports.ingress, &other_corp).await.0, 401);
        let no_nonce = Callback {
            query: genuine
                .query
                .split('&')
                .filter(|p| !p.starts_with("nonce"))
                .collect::<Vec<_>>()
                .join("&"),
            body: genuine.body.clone(),
        };
        let (status, reason) = wecom.post(ports.ingress, &no_nonce).await;
        assert_eq!(status, 400);
        assert!(reason.contains("nonce"), "{reason}");
        let bomb = wecom.callbacks.post(
            r#"<!DOCTYPE xml [<!ENTITY a "aaaaaaaa">]><xml><MsgType>text</MsgType><Content>&a;</Content></xml>"#,
        );
        assert_eq!(wecom.post(ports.ingress, &bomb).await.0, 400);
        let huge = Callback {
            query: genuine.query.clone(),
            body: "x".repeat(8192),
        };
        assert_eq!(wecom.post(ports.ingress, &huge).await.0, 413);

        // A genuine message after them: once its echo arrived, the refused ones would have too.
        assert_eq!(
            wecom
                .post(
                    ports.ingress,
                    &wecom.callbacks.text("zhaoliu", 4003, "/echo real")
                )
                .await
                .0,
            200
        );
        wecom.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let contents: Vec<String> = wecom.mock.sent().iter().map(|m| m.content()).collect();
        assert_eq!(contents, vec!["real".to_string()]);
        let logs = bot.logs();
        for reason in [
            "signature verification failed",
            "addressed to `ww-another-corp`",
            "DOCTYPE",
        ] {
            assert!(logs.contains(reason), "the log names `{reason}`:\n{logs}");
        }
    }

    /// Every callback of `testkit/fixtures/external/wecom` (wechatpy's test suite, see
    /// SOURCES.md), encrypted and signed as WeCom does and posted to the running ingress: each
    /// accepted with 200, each message in history with the text `expected.json` names, nothing
    /// answered (none is a command).
    pub async fn callbacks_from_other_projects_are_accepted_and_recorded(setup: Setup) {
        let (wecom, ports, _bot) = started(setup).await;
        let mut owed: Vec<String> = Vec::new();
        for common::external_fixtures::Fixture {
            file,
            body: xml,
            case,
        } in common::external_fixtures::load("wecom")
        {
            let (status, body) = wecom.post(ports.ingress, &wecom.callbacks.post(&xml)).await;
            assert_eq!((status, body.as_str()), (200, ""), "{file}");
            if case["outcome"] == "message" {
                owed.push(case["text"].as_str().expect("text").to_string());
            }
        }
        owed.sort();
        let recorded = wecom
            .setup
            .wait_for_history_texts("wecom", "fromUser", owed.len(), |r| {
                r.event_type.starts_with("message.") && r.text != "[notsure]"
            })
            .await;
        assert_eq!(recorded, owed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(wecom.mock.sent_count(), 0, "nothing answered");
    }
}

/// Two egress replicas on one Redis: both deliver, one `gettoken`.
#[tokio::test]
async fn two_egress_processes_sharing_redis_call_gettoken_once() {
    let wecom = WeCom::new(Backend::Cluster, MockWeComSettings::default()).await;
    let (a, b) = (Ports::new(), Ports::new());
    let config = wecom.config(&a, "", "");
    let _egress_a = Clawdbot::start(&["egress"], &config, &a).await;
    let _egress_b = Clawdbot::start(&["egress"], &config, &b).await;
    let mut clients = [egress_client(a.egress).await, egress_client(b.egress).await];
    let sends = clients
        .iter_mut()
        .enumerate()
        .map(|(i, client)| async move {
            let replies = (0..5)
                .map(|n| {
                    private_reply(
                        &format!("r-{i}-{n}"),
                        &format!("user{i}{n}"),
                        vec![text("hi")],
                    )
                })
                .collect();
            client
                .send_batch(SendBatchRequest { replies })
                .await
                .expect("batch")
                .into_inner()
        });
    let results = futures::future::join_all(sends).await;
    for batch in results {
        for result in batch.results {
            match result.result {
                Some(send_result::Result::Response(response)) => {
                    assert_eq!(response.status(), DeliveryStatus::Delivered);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(wecom.mock.sent().len(), 10);
    assert_eq!(
        wecom.mock.gettoken_calls(),
        1,
        "one fetch for both replicas"
    );
}

/// The robot limit queues the 21st message into the next window (shortened to 2 s here; the
/// mock refuses anything past 20 per window, like WeCom).
#[tokio::test]
async fn the_group_robot_limit_queues_the_21st_message_into_the_next_window() {
    let window = Duration::from_secs(2);
    let settings = MockWeComSettings {
        robot_window: window,
        ..MockWeComSettings::default()
    };
    let wecom = WeCom::new(Backend::Cluster, settings).await;
    let ports = Ports::new();
    let app = "  robots:\n    ops:\n      key: \"robot-key-ops\"\n  robot_limit:\n    count: 20\n    window_secs: 2\n    max_wait_secs: 10\n";
    let _egress = Clawdbot::start(&["egress"], &wecom.config(&ports, app, ""), &ports).await;
    let mut client = egress_client(ports.egress).await;
    let replies = (0..21)
        .map(|n| Reply {
            conversation: Some(Conversation {
                kind: ConversationKind::Group.into(),
                id: "ops".into(),
            }),
            ..private_reply(&format!("alert-{n}"), "", vec![text(&format!("alert {n}"))])
        })
        .collect();
    let started = Instant::now();
    let results = client
        .send_batch(SendBatchRequest { replies })
        .await
        .expect("batch")
        .into_inner();
    for result in results.results {
        match result.result {
            Some(send_result::Result::Response(response)) => {
                assert_eq!(response.status(), DeliveryStatus::Delivered, "{response:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    let sent = wecom.mock.sent();
    assert_eq!(sent.len(), 21, "queued, not dropped");
    assert!(
        wecom.mock.refusals().is_empty(),
        "never past the limit: {:?}",
        wecom.mock.refusals()
    );
    let first = sent.iter().map(|m| m.received_at).min().expect("first");
    let last = sent.iter().map(|m| m.received_at).max().expect("last");
    assert!(
        last.duration_since(first) >= window - Duration::from_millis(50),
        "the 21st waited for the next window"
    );
    assert!(started.elapsed() < window * 3);
    assert!(sent.iter().all(|m| m.via == "robot-key-ops"));
    let metrics = metrics_of(&wecom, &ports).await;
    assert!(
        metrics.contains("clawdbot_send_queue_waiting{limit=\"wecom:robot\"} 0"),
        "the queue gauge exists and drained: {metrics}"
    );

    // An unknown robot is named in the error.
    let unknown = Reply {
        conversation: Some(Conversation {
            kind: ConversationKind::Group.into(),
            id: "dev".into(),
        }),
        ..private_reply("to-dev", "", vec![text("x")])
    };
    let error = client
        .send(SendRequest {
            reply: Some(unknown),
        })
        .await
        .expect_err("invalid");
    assert!(
        error.message().contains("no group robot `dev`"),
        "{}",
        error.message()
    );
}

/// What WeCom cannot render or deliver is said in the result: markdown as text where the app
/// says so, members WeCom did not know; an image is uploaded once and its media id reused.
#[tokio::test]
async fn degraded_content_and_unknown_members_are_reported_and_media_is_uploaded_once() {
    let settings = MockWeComSettings {
        known_users: Some(["alice".to_string()].into_iter().collect()),
        ..MockWeComSettings::default()
    };
    let wecom = WeCom::new(Backend::Cluster, settings).await;
    let ports = Ports::new();
    let _egress = Clawdbot::start(
        &["egress"],
        &wecom.config(&ports, "  markdown: false\n", ""),
        &ports,
    )
    .await;
    let mut client = egress_client(ports.egress).await;

    let markdown = Segment {
        kind: Some(Kind::Markdown(Markdown {
            markdown: "**disk full**".into(),
        })),
    };
    let response = client
        .send(SendRequest {
            reply: Some(private_reply("md-1", "alice|ghost", vec![markdown])),
        })
        .await
        .expect("send")
        .into_inner();
    assert_eq!(response.status(), DeliveryStatus::Delivered);
    assert!(
        response
            .notes
            .iter()
            .any(|n| n.contains("markdown sent as text")),
        "{:?}",
        response.notes
    );
    assert!(
        response.notes.contains(&"invaliduser: ghost".to_string()),
        "{:?}",
        response.notes
    );
    let sent = wecom.mock.sent();
    assert_eq!(
        (sent[0].msgtype.as_str(), sent[0].content().as_str()),
        ("text", "**disk full**")
    );

    let image = || {
        Segment {
        kind: Some(Kind::Image(Media { url: "base64://iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==".into(), mime: "image/png".into(), ..Default::default() })),
    }
    };
    for id in ["img-1", "img-2"] {
        let response = client
            .send(SendRequest {
                reply: Some(private_reply(id, "alice", vec![image()])),
            })
            .await
            .expect("send")
            .into_inner();
        assert_eq!(response.status(), DeliveryStatus::Delivered, "{response:?}");
    }
    assert_eq!(
        wecom.mock.uploads().len(),
        1,
        "uploaded once: {:?}",
        wecom.mock.uploads()
    );
    let images: Vec<_> = wecom
        .mock
        .sent()
        .into_iter()
        .filter(|m| m.msgtype == "image")
        .collect();
    assert_eq!(images.len(), 2);
    assert_eq!(
        images[0].body["image"]["media_id"],
        images[1].body["image"]["media_id"]
    );

    // All members unknown: WeCom's 81013 is a refusal, named.
    let response = client
        .send(SendRequest {
            reply: Some(private_reply("nobody", "ghost", vec![text("x")])),
        })
        .await
        .expect("send")
        .into_inner();
    assert_eq!(response.status(), DeliveryStatus::Failed);
    assert!(response.error.contains("81013"), "{}", response.error);
}

/// The split cluster, started the way the Helm chart starts it (`ingress --platform
/// wechat_enterprise`): an encrypted callback in, its echo out through another process.
#[tokio::test]
async fn the_split_cluster_answers_a_wecom_message() {
    let wecom = WeCom::new(Backend::Cluster, MockWeComSettings::default()).await;
    let (ingress, egress) = (Ports::new(), Ports::new());
    let config = wecom.config(&egress, "", "");
    let _ingress = Clawdbot::start(
        &["ingress", "--platform", "wechat_enterprise"],
        &config,
        &ingress,
    )
    .await;
    let _egress = Clawdbot::start(&["egress"], &config, &egress).await;
    let _worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let callback = wecom.callbacks.text("sunqi", 5001, "/echo split");
    assert_eq!(wecom.post(ingress.ingress, &callback).await.0, 200);
    let sent = wecom.mock.wait_for(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].touser.as_str(), sent[0].content().as_str()),
        ("sunqi", "split")
    );
}

/// Ops' use: an Alertmanager alert forwarded into a WeCom group through its robot, as markdown.
#[tokio::test]
async fn an_alert_reaches_a_wecom_group_through_its_robot() {
    const ALERT: &str = r#"{"receiver":"clawdbot","status":"firing","version":"4","groupKey":"k","groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","team":"ops"},"commonAnnotations":{"summary":"disk 95% full"},"externalURL":"http://am:9093","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","instance":"db-1","team":"ops"},"annotations":{"summary":"disk 95% full"},"startsAt":"2026-11-25T08:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f1"}]}"#;
    let wecom = WeCom::new(Backend::Embedded, MockWeComSettings::default()).await;
    let ports = Ports::new();
    let extra = "alertmanager:\n  token: \"am-token\"\nskills:\n  alert_forward:\n    routes:\n      - match: { team: ops }\n        targets: [{ platform: wecom, group: ops }]\n";
    let robots = "  robots:\n    ops: { key: \"robot-key-ops\" }\n";
    let _bot = Clawdbot::start(&["up"], &wecom.config(&ports, robots, extra), &ports).await;
    let status = wecom
        .setup
        .http
        .post(format!(
            "http://127.0.0.1:{}/clawdbot/alertmanager/callback",
            ports.ingress
        ))
        .bearer_auth("am-token")
        .header("content-type", "application/json")
        .body(ALERT)
        .send()
        .await
        .expect("answer")
        .status();
    assert_eq!(status, 204);
    let sent = wecom.mock.wait_for(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].via, "robot-key-ops");
    assert_eq!(sent[0].msgtype, "markdown");
    assert!(
        sent[0].content().contains("DiskFull") && sent[0].content().contains("db-1"),
        "{}",
        sent[0].content()
    );
}

/// A token close to its expiry is replaced before WeCom would reject it: no 42001 is ever seen.
#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_wecom_rejects_it() {
    let settings = MockWeComSettings {
        token_lifetime: Duration::from_secs(3),
        ..MockWeComSettings::default()
    };
    let wecom = WeCom::new(Backend::Cluster, settings).await;
    let ports = Ports::new();
    let config = wecom.config(&ports, "  token_refresh_before_secs: 2\n", "");
    let _egress = Clawdbot::start(&["egress"], &config, &ports).await;
    let mut client = egress_client(ports.egress).await;
    for (n, pause) in [(0, 0), (1, 1500), (2, 100)] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let response = client
            .send(SendRequest {
                reply: Some(private_reply(&format!("t-{n}"), "alice", vec![text("hi")])),
            })
            .await
            .expect("send")
            .into_inner();
        assert_eq!(response.status(), DeliveryStatus::Delivered);
    }
    assert_eq!(
        wecom.mock.gettoken_calls(),
        2,
        "fetched, then refreshed once"
    );
    assert!(
        wecom.mock.refusals().is_empty(),
        "{:?}",
        wecom.mock.refusals()
    );
    let metrics = metrics_of(&wecom, &ports).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("clawdbot_token_refreshes_total{")
                && l.contains("outcome=\"ok\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
}

async fn metrics_of(wecom: &WeCom, ports: &Ports) -> String {
    wecom
        .setup
        .http
        .get(format!("http://127.0.0.1:{}/metrics", ports.metrics))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}
