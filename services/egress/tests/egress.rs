//! The egress service over real gRPC (127.0.0.1), delivering to the mock OneBot API, with its
//! ledger on a real Redis.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_bus::Bus;
use clawdbot_core::proto::egress_client::EgressClient;
use clawdbot_core::proto::{
    Conversation, ConversationKind, DeliveryStatus, Reply, Segment, SendRequest,
};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_egress::EgressSettings;
use clawdbot_platforms::onebot::OneBotConfig;
use clawdbot_platforms::{OneOrMany, PlatformsConfig};
use clawdbot_testkit::TestRedis;
use clawdbot_testkit::mock::onebot::{Failure, MockOneBot};
use tonic::transport::Channel;

struct Harness {
    _redis: TestRedis,
    mock: MockOneBot,
    client: EgressClient<Channel>,
    _shutdown: Shutdown,
}

async fn harness(max_attempts: u32) -> Harness {
    let redis = TestRedis::new().await;
    let mock = MockOneBot::start(Some("tok")).await;
    let platforms = PlatformsConfig::single(
        "onebot",
        OneOrMany::many(vec![OneBotConfig {
            id: "default".into(),
            self_id: 10001,
            secret: None,
            access_token: Some("tok".into()),
            api_root: mock.api_root(),
            transport: Default::default(),
            ws_url: None,
            ws_lease_secs: 10,
            forward_over_chars: 0,
            forward_name: "clawdbot".into(),
            timeout_secs: 2,
            max_attempts,
            retry_backoff_ms: 10,
            max_in_flight: 8,
            late_answer_secs: 2,
            unknown_outcome: Default::default(),
        }]),
    );
    let outbounds =
        clawdbot_platforms::build_outbounds(&platforms, &Default::default()).expect("outbounds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = Shutdown::new();
    let bus: Arc<dyn Bus> = redis.bus.clone();
    let settings = EgressSettings {
        lease: Duration::from_secs(30),
        result_ttl: Duration::from_secs(600),
    };
    let service = Arc::new(clawdbot_egress::EgressService::new(
        settings, bus, outbounds, &shutdown,
    ));
    tokio::spawn(clawdbot_egress::run(
        service,
        listener,
        None,
        shutdown.clone(),
    ));
    let client = EgressClient::connect(format!("http://{address}"))
        .await
        .expect("connect");
    Harness {
        _redis: redis,
        mock,
        client,
        _shutdown: shutdown,
    }
}

fn reply(id: &str, text: &str) -> SendRequest {
    SendRequest {
        reply: Some(Reply {
            id: id.into(),
            platform: "onebot".into(),
            bot_id: "default".into(),
            conversation: Some(Conversation {
                kind: ConversationKind::Private.into(),
                id: "42".into(),
            }),
            segments: vec![Segment::text(text)],
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn a_second_send_with_the_same_key_returns_the_first_result_without_delivering() {
    let mut h = harness(3).await;
    let first = h
        .client
        .send(reply("e1:echo:0", "hi"))
        .await
        .expect("send")
        .into_inner();
    assert_eq!(first.status, DeliveryStatus::Delivered as i32);
    assert!(!first.duplicate);
    let second = h
        .client
        .send(reply("e1:echo:0", "hi"))
        .await
        .expect("send")
        .into_inner();
    assert!(second.duplicate);
    assert_eq!(second.platform_message_id, first.platform_message_id);
    assert_eq!(h.mock.sent_count(), 1);
    let sent = h.mock.sent();
    assert_eq!(
        (sent[0].action.as_str(), sent[0].user_id),
        ("send_private_msg", Some(42))
    );
}

#[tokio::test]
async fn concurrent_sends_of_one_reply_deliver_it_once() {
    let h = harness(3).await;
    let calls = (0..8).map(|_| {
        let mut client = h.client.clone();
        async move { client.send(reply("same", "x")).await }
    });
    let results = futures::future::join_all(calls).await;
    let delivered = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| !r.get_ref().duplicate))
        .count();
    assert_eq!(delivered, 1, "{results:?}");
    assert!(results.iter().all(|r| match r {
        Ok(_) => true,
        Err(status) => status.code() == tonic::Code::Unavailable,
    }));
    assert_eq!(h.mock.sent_count(), 1);
}

#[tokio::test]
async fn a_nonzero_retcode_is_a_failure_with_its_message_and_is_not_retried() {
    let mut h = harness(3).await;
    h.mock.fail_next(&[Failure::Retcode(100)]);
    let response = h
        .client
        .send(reply("r", "x"))
        .await
        .expect("send")
        .into_inner();
    assert_eq!(response.status, DeliveryStatus::Failed as i32);
    assert!(
        response.error.contains("retcode 100") && response.error.contains("mock refusal"),
        "{}",
        response.error
    );
    assert_eq!(response.attempts, 1);
    assert_eq!(h.mock.failed_calls(), 1);
}

#[tokio::test]
async fn transport_failures_are_unavailable_and_a_later_retry_delivers() {
    let mut h = harness(2).await;
    h.mock.fail_next(&[Failure::Http(502), Failure::Http(503)]);
    let status = h
        .client
        .send(reply("t", "x"))
        .await
        .expect_err("unavailable");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let response = h
        .client
        .send(reply("t", "x"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(response.status, DeliveryStatus::Delivered as i32);
    assert_eq!(h.mock.sent_count(), 1);
}

#[tokio::test]
async fn bad_replies_are_invalid_arguments() {
    let mut h = harness(1).await;
    let mut unknown = reply("u", "x");
    if let Some(r) = unknown.reply.as_mut() {
        r.bot_id = "ghost".into();
    }
    assert_eq!(
        h.client
            .send(unknown)
            .await
            .expect_err("unknown bot")
            .code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        h.client
            .send(reply("", "x"))
            .await
            .expect_err("no key")
            .code(),
        tonic::Code::InvalidArgument
    );
    let mut bad_target = reply("b", "x");
    if let Some(r) = bad_target.reply.as_mut() {
        r.conversation = Some(Conversation {
            kind: ConversationKind::Group.into(),
            id: "not-a-number".into(),
        });
    }
    assert_eq!(
        h.client
            .send(bad_target)
            .await
            .expect_err("bad target")
            .code(),
        tonic::Code::InvalidArgument
    );
}
