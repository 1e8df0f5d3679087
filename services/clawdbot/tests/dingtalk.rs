//! DingTalk end to end: signed robot callbacks into the ingress, replies through the session
//! webhook or (once it expired) the robot OpenAPI, custom group robots with their limit, and
//! Stream mode through the mock gateway — against real clawdbot processes, Redis and Postgres
//! (or the embedded backend), and the mock DingTalk in the testkit.

mod common;

use std::time::{Duration, Instant};

use clawdbot_core::proto::egress_client::EgressClient;
use clawdbot_core::proto::{
    Conversation, ConversationKind, DeliveryStatus, Reply, Segment, SendBatchRequest, Text,
    segment::Kind, send_result,
};
use clawdbot_testkit::mock::dingtalk::{DingTalkCallbacks, MockDingTalk, MockDingTalkSettings};
use common::{Backend, Clawdbot, Ports, Setup};

const WAIT: Duration = Duration::from_secs(10);

struct DingTalk {
    setup: Setup,
    mock: MockDingTalk,
    callbacks: DingTalkCallbacks,
}

impl DingTalk {
    async fn new(backend: Backend, settings: MockDingTalkSettings) -> Self {
        let callbacks = DingTalkCallbacks::new(&settings.app_secret);
        Self {
            setup: Setup::new(backend).await,
            mock: MockDingTalk::start(settings).await,
            callbacks,
        }
    }

    /// The config: the setup's backends plus one DingTalk app at the mock in `mode`, with
    /// `app_extra` (indented keys of the app) and `extra` (top-level YAML).
    fn config(
        &self,
        ports: &Ports,
        mode: &str,
        app_extra: &str,
        extra: &str,
    ) -> std::path::PathBuf {
        let app = format!(
            "dingtalk:\n  app_key: \"dingmockkey\"\n  app_secret: \"mock-app-secret\"\n  mode: {mode}\n  api_base: \"{base}\"\n  oapi_base: \"{base}\"\n  retry_backoff_ms: 20\n  group_robots:\n    - id: hr-notice\n      access_token: \"robot-hr\"\n      secret: \"SECmockrobotsecret\"\n{app_extra}",
            base = self.mock.base()
        );
        self.setup.config(
            &self.setup.redis_url(),
            ports.egress,
            &format!("worker:\n  reclaim_idle_secs: 1\n  block_ms: 200\n{app}{extra}"),
        )
    }

    async fn post(&self, port: u16, headers: &[(&'static str, String)], body: &str) -> u16 {
        let mut request = self
            .setup
            .http
            .post(format!(
                "http://127.0.0.1:{port}/clawdbot/dingtalk/callback"
            ))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
            .send()
            .await
            .expect("ingress answers")
            .status()
            .as_u16()
    }
}

fn in_an_hour() -> i64 {
    clawdbot_core::now_ms() + 3_600_000
}

clawdbot_testkit::backend_suite!(Setup { cluster => Backend::Cluster, embedded => Backend::Embedded }; cases; [
    a_group_message_is_answered_through_its_session_webhook_once,
    an_expired_session_webhook_falls_back_to_the_robot_openapi,
    bad_callbacks_are_refused_and_a_stale_clock_is_named_in_the_log,
    a_stream_mode_message_round_trips_through_the_gateway,
    a_silent_gateway_is_replaced_and_nothing_is_lost,
    a_malformed_stream_frame_is_acked_as_failed_and_the_connection_kept,
    a_disconnect_notice_is_acked_and_the_client_reconnects,
]);

mod cases {
    use super::*;

    /// `clawdbot up` with the app in `mode` (`app_extra` under the app, `extra` top-level).
    async fn up(
        setup: Setup,
        mode: &str,
        app_extra: &str,
        extra: &str,
    ) -> (DingTalk, Ports, Clawdbot) {
        let backend = setup.backend;
        drop(setup);
        let dingtalk = DingTalk::new(backend, MockDingTalkSettings::default()).await;
        let ports = Ports::new();
        let config = dingtalk.config(&ports, mode, app_extra, extra);
        let bot = Clawdbot::start(&["up"], &config, &ports).await;
        (dingtalk, ports, bot)
    }

    async fn started(setup: Setup, extra: &str) -> (DingTalk, Ports, Clawdbot) {
        up(setup, "http", "", extra).await
    }

    pub async fn a_group_message_is_answered_through_its_session_webhook_once(setup: Setup) {
        let (dt, ports, _bot) = started(setup, "").await;
        let body = dt.callbacks.text(
            "msg-1",
            Some("cidHR"),
            "zhangsan",
            "/echo 打卡提醒",
            &dt.mock.session_webhook("s1"),
            in_an_hour(),
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &body).await,
            200
        );
        // DingTalk's retry of the same msgId.
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &body).await,
            200
        );
        let sent = dt.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(dt.mock.sent().len(), 1, "one reply: {sent:?}");
        assert_eq!(sent[0].via, "session:s1");
        assert_eq!(sent[0].body["msgtype"], "text");
        assert_eq!(sent[0].content(), "打卡提醒");
        assert_eq!(
            dt.mock.token_calls(),
            0,
            "no token needed for a session webhook"
        );
    }

    pub async fn an_expired_session_webhook_falls_back_to_the_robot_openapi(setup: Setup) {
        let (dt, ports, _bot) = started(setup, "").await;
        let expired = clawdbot_core::now_ms() - 1000;
        let group = dt.callbacks.text(
            "msg-2",
            Some("cidHR"),
            "lisi",
            "/echo late",
            &dt.mock.session_webhook("old"),
            expired,
        );
        let private = dt.callbacks.text(
            "msg-3",
            None,
            "wangwu",
            "/echo direct",
            &dt.mock.session_webhook("old2"),
            expired,
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &group)
                .await,
            200
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &private)
                .await,
            200
        );
        let mut sent = dt.mock.wait_for(2, WAIT).await;
        sent.sort_by_key(|m| m.via.clone());
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0].via, "group");
        assert_eq!(sent[0].body["openConversationId"], "cidHR");
        assert_eq!(sent[0].body["msgKey"], "sampleText");
        assert_eq!(sent[0].content(), "late");
        assert_eq!(sent[1].via, "otm");
        assert_eq!(sent[1].body["userIds"], serde_json::json!(["wangwu"]));
        assert_eq!(sent[1].content(), "direct");
        assert_eq!(dt.mock.token_calls(), 1, "one token for both");

        // DingTalk drops the token early: the next send fetches a new one and succeeds.
        dt.mock.expire_tokens();
        let again = dt.callbacks.text(
            "msg-4",
            Some("cidHR"),
            "lisi",
            "/echo again",
            &dt.mock.session_webhook("old3"),
            expired,
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &again)
                .await,
            200
        );
        let sent = dt.mock.wait_for(3, WAIT).await;
        assert_eq!(sent.len(), 3);
        assert_eq!(dt.mock.token_calls(), 2, "refreshed once");
        assert_eq!(
            dt.mock.refusals(),
            vec![(
                "groupMessages/send".to_string(),
                "InvalidAuthentication".to_string()
            )]
        );
    }

    /// Stream mode with quick failure detection: 1 s of silence means dead.
    const STREAM: &str =
        "  stream: { silence_secs: 1, backoff_min_ms: 50, backoff_max_ms: 500, lease_secs: 1.5 }\n";

    async fn streaming(setup: Setup) -> (DingTalk, Ports, Clawdbot) {
        let (dt, ports, bot) = up(setup, "stream", STREAM, "").await;
        assert_eq!(
            dt.mock.gateway.wait_opened(1, WAIT).await,
            1,
            "connected once"
        );
        (dt, ports, bot)
    }

    fn stream_message(dt: &DingTalk, msg_id: &str, text: &str) -> serde_json::Value {
        let body = dt.callbacks.text(
            msg_id,
            Some("cidOps"),
            "sunqi",
            text,
            &dt.mock.session_webhook(msg_id),
            in_an_hour(),
        );
        serde_json::from_str(&body).expect("json")
    }

    pub async fn a_stream_mode_message_round_trips_through_the_gateway(setup: Setup) {
        let (dt, _ports, _bot) = streaming(setup).await;
        let frame_id =
            dt.mock
                .gateway
                .push_message(&stream_message(&dt, "st-1", "/echo over the stream"));
        let sent = dt.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].via.as_str(), sent[0].content().as_str()),
            ("session:st-1", "over the stream")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            dt.mock.gateway.acks().contains(&(frame_id, 200)),
            "acked: {:?}",
            dt.mock.gateway.acks()
        );
        assert_eq!(
            dt.mock.gateway.connections_opened(),
            1,
            "the socket stayed up (pings answered)"
        );
    }

    pub async fn a_silent_gateway_is_replaced_and_nothing_is_lost(setup: Setup) {
        let (dt, _ports, bot) = streaming(setup).await;
        dt.mock.gateway.go_silent();
        // Pushed while the only socket is silent: it waits, unacked, for the next socket.
        dt.mock
            .gateway
            .push_message(&stream_message(&dt, "st-2", "/echo still here"));
        assert!(
            dt.mock.gateway.wait_opened(2, WAIT).await >= 2,
            "reconnected:\n{}",
            bot.logs()
        );
        let sent = dt.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1, "delivered once over the new socket");
        assert_eq!(sent[0].content(), "still here");
        assert!(
            bot.logs().contains("Silent"),
            "the log says why:\n{}",
            bot.logs()
        );
    }

    pub async fn a_disconnect_notice_is_acked_and_the_client_reconnects(setup: Setup) {
        let (dt, _ports, bot) = streaming(setup).await;
        let notice = dt.mock.gateway.disconnect_all(Duration::from_secs(2));
        assert!(
            dt.mock.gateway.wait_opened(2, WAIT).await >= 2,
            "reconnected:\n{}",
            bot.logs()
        );
        assert!(
            dt.mock.gateway.acks().contains(&(notice, 200)),
            "the notice is acked like every frame: {:?}",
            dt.mock.gateway.acks()
        );
        dt.mock
            .gateway
            .push_message(&stream_message(&dt, "st-4", "/echo on the new socket"));
        let sent = dt.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].content(), "on the new socket");
    }

    pub async fn a_malformed_stream_frame_is_acked_as_failed_and_the_connection_kept(setup: Setup) {
        let (dt, _ports, bot) = streaming(setup).await;
        let bad = dt.mock.gateway.push_data("{not json".into());
        let good =
            dt.mock
                .gateway
                .push_message(&stream_message(&dt, "st-3", "/echo after the bad one"));
        let sent = dt.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let acks = dt.mock.gateway.acks();
        assert!(acks.contains(&(bad, 400)), "{acks:?}");
        assert!(acks.contains(&(good, 200)), "{acks:?}");
        assert_eq!(dt.mock.gateway.connections_opened(), 1, "connection kept");
        assert!(
            bot.logs().contains("malformed stream frame"),
            "{}",
            bot.logs()
        );
    }

    pub async fn bad_callbacks_are_refused_and_a_stale_clock_is_named_in_the_log(setup: Setup) {
        let (dt, ports, bot) = started(setup, "ingress:\n  max_body_bytes: 4096\n").await;
        let body = dt.callbacks.text(
            "msg-9",
            Some("cidHR"),
            "zhaoliu",
            "/echo forged",
            &dt.mock.session_webhook("s9"),
            in_an_hour(),
        );
        assert_eq!(dt.post(ports.ingress, &[], &body).await, 401, "no sign");
        let wrong = DingTalkCallbacks::new("not-the-secret").headers();
        assert_eq!(
            dt.post(ports.ingress, &wrong, &body).await,
            401,
            "wrong sign"
        );
        let stale = dt
            .callbacks
            .headers_at(clawdbot_core::now_ms() - 2 * 3_600_000);
        assert_eq!(
            dt.post(ports.ingress, &stale, &body).await,
            401,
            "two hours old"
        );
        let future = dt
            .callbacks
            .headers_at(clawdbot_core::now_ms() + 2 * 3_600_000);
        assert_eq!(
            dt.post(ports.ingress, &future, &body).await,
            401,
            "two hours ahead"
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), "{not json")
                .await,
            400
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &"x".repeat(8192))
                .await,
            413
        );

        let real = dt.callbacks.text(
            "msg-10",
            Some("cidHR"),
            "zhaoliu",
            "/echo real",
            &dt.mock.session_webhook("s10"),
            in_an_hour(),
        );
        assert_eq!(
            dt.post(ports.ingress, &dt.callbacks.headers(), &real).await,
            200
        );
        dt.mock.wait_for(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let contents: Vec<String> = dt.mock.sent().iter().map(|m| m.content()).collect();
        assert_eq!(contents, vec!["real".to_string()]);
        let logs = bot.logs();
        assert!(
            logs.contains("signature timestamp is 7200 s off")
                || logs.contains("signature timestamp is 7199 s off"),
            "{logs}"
        );
        assert!(logs.contains("s off this server's clock"), "{logs}");
    }
}

fn robot_reply(n: usize) -> Reply {
    Reply {
        id: format!("notice-{n}"),
        platform: "dingtalk".into(),
        bot_id: "default".into(),
        conversation: Some(Conversation {
            kind: ConversationKind::Group.into(),
            id: "hr-notice".into(),
        }),
        segments: vec![Segment {
            kind: Some(Kind::Text(Text {
                text: format!("attendance notice {n}"),
            })),
        }],
        ..Default::default()
    }
}

/// The 21st custom-robot message in a window waits for the next one (window shortened to 2 s;
/// the mock refuses past 20 a window with 130101, like DingTalk) and every send is signed.
#[tokio::test]
async fn the_21st_group_robot_message_is_queued_and_delivered_in_the_next_window() {
    let window = Duration::from_secs(2);
    let settings = MockDingTalkSettings {
        robot_window: window,
        ..MockDingTalkSettings::default()
    };
    let dt = DingTalk::new(Backend::Cluster, settings).await;
    let ports = Ports::new();
    let limit = "  robot_limit: { count: 20, window_secs: 2, max_wait_secs: 10 }\n";
    let _egress = Clawdbot::start(&["egress"], &dt.config(&ports, "http", limit, ""), &ports).await;
    let mut client = EgressClient::connect(format!("http://127.0.0.1:{}", ports.egress))
        .await
        .expect("egress");
    let started = Instant::now();
    let results = client
        .send_batch(SendBatchRequest {
            replies: (0..21).map(robot_reply).collect(),
        })
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
    let sent = dt.mock.sent();
    assert_eq!(sent.len(), 21, "queued, never dropped");
    assert!(
        dt.mock.refusals().is_empty(),
        "signed and within the limit: {:?}",
        dt.mock.refusals()
    );
    assert!(sent.iter().all(|m| m.via == "robot:robot-hr"));
    let first = sent.iter().map(|m| m.received_at).min().expect("first");
    let last = sent.iter().map(|m| m.received_at).max().expect("last");
    assert!(
        last.duration_since(first) >= window,
        "the 21st waited for the next window"
    );
    assert!(started.elapsed() < window * 3);
}

/// Two ingress processes: exactly one holds the Stream socket; killing it (SIGKILL, no
/// handover) moves the socket to the other once the lease expires, and messages flow again.
#[tokio::test]
async fn one_of_two_ingresses_holds_the_stream_and_killing_it_moves_the_socket() {
    let dt = DingTalk::new(Backend::Cluster, MockDingTalkSettings::default()).await;
    let egress_ports = Ports::new();
    let stream =
        "  stream: { silence_secs: 2, backoff_min_ms: 50, backoff_max_ms: 500, lease_secs: 1.5 }\n";
    let config = dt.config(&egress_ports, "stream", stream, "");
    let (a, b) = (Ports::new(), Ports::new());
    let mut ingress_a = Clawdbot::start(&["ingress", "--platform", "dingtalk"], &config, &a).await;
    let mut ingress_b = Clawdbot::start(&["ingress", "--platform", "dingtalk"], &config, &b).await;
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    assert_eq!(dt.mock.gateway.wait_opened(1, WAIT).await, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        dt.mock.gateway.connections_opened(),
        1,
        "exactly one holder"
    );
    assert_eq!(dt.mock.gateway.active_connections(), 1);

    let holds = |bot: &Clawdbot| logged(bot, "holding the connection");
    let (holder, other) = if holds(&ingress_a) {
        (&mut ingress_a, &ingress_b)
    } else {
        (&mut ingress_b, &ingress_a)
    };
    assert!(!holds(other), "only one holds it");
    holder.child.kill().await.expect("kill the holder");
    let killed = Instant::now();
    assert_eq!(
        dt.mock.gateway.wait_opened(2, WAIT).await,
        2,
        "the other took over"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "within a few seconds: {:?}",
        killed.elapsed()
    );
    assert!(holds(other));

    let body = dt.callbacks.text(
        "ho-1",
        Some("cidOps"),
        "sunqi",
        "/echo after the takeover",
        &dt.mock.session_webhook("ho-1"),
        in_an_hour(),
    );
    dt.mock
        .gateway
        .push_message(&serde_json::from_str(&body).expect("json"));
    let sent = dt.mock.wait_for(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content(), "after the takeover");
}

/// A holder that is shut down (SIGTERM) hands the socket over: the other ingress connects
/// before the old socket closes.
#[tokio::test]
async fn a_holder_shutting_down_hands_the_stream_over_before_closing() {
    let dt = DingTalk::new(Backend::Cluster, MockDingTalkSettings::default()).await;
    let egress_ports = Ports::new();
    let stream = "  stream: { silence_secs: 5, lease_secs: 3 }\n";
    let config = dt.config(&egress_ports, "stream", stream, "");
    let (a, b) = (Ports::new(), Ports::new());
    let mut ingress_a = Clawdbot::start(&["ingress", "--platform", "dingtalk"], &config, &a).await;
    assert_eq!(dt.mock.gateway.wait_opened(1, WAIT).await, 1);
    let ingress_b = Clawdbot::start(&["ingress", "--platform", "dingtalk"], &config, &b).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dt.mock.gateway.connections_opened(), 1, "a holds it");

    let watcher = {
        let gateway = dt.mock.gateway.clone();
        tokio::spawn(async move {
            // The highest number of sockets open at once during the handover.
            let mut most = 0;
            for _ in 0..100 {
                most = most.max(gateway.active_connections());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        })
    };
    let (took, status) = ingress_a.terminate().await;
    assert!(status.success(), "{status:?}:\n{}", ingress_a.logs());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(dt.mock.gateway.connections_opened(), 2, "b connected");
    assert_eq!(
        watcher.await.expect("watcher"),
        2,
        "both sockets up together: new before old closed"
    );
    assert!(
        logged(&ingress_a, "connection handed over"),
        "{}",
        ingress_a.logs()
    );
    assert!(logged(&ingress_b, "holding the connection"));
}

/// Whether `bot` logged `message` about the DingTalk connection (a line naming the platform).
fn logged(bot: &Clawdbot, message: &str) -> bool {
    bot.logs()
        .lines()
        .any(|line| line.contains(message) && line.contains("\"dingtalk\""))
}
