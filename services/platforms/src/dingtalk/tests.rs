//! The sign vectors, decoding of each message type, and the refusals.

use clawdbot_core::proto::{ConversationKind, EventKind, segment::Kind};
use serde_json::{Value, json};

use super::compose::{compose, openapi_form};
use super::*;
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

const VECTORS: &str = include_str!("fixtures/dingtalk.vectors.json");
const SECRET: &str = "app-secret-for-tests";

fn vectors() -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors JSON");
    all["vectors"].as_array().expect("vectors").clone()
}

#[test]
fn shared_vectors_copy_is_current() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/protocols/dingtalk.vectors.json"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text, VECTORS,
            "fixtures/dingtalk.vectors.json differs from shared/protocols"
        );
    }
}

#[test]
fn the_sign_vectors_reproduce_and_the_legacy_algorithm_is_not_ours() {
    let mut checked = 0;
    for v in vectors() {
        let timestamp = v["timestamp"].as_str().expect("timestamp");
        if let Some(expected) = v.get("expected_sign_base64").and_then(Value::as_str) {
            let secret = v["secret"].as_str().expect("secret");
            assert_eq!(sign::sign(secret, timestamp), expected, "{}", v["id"]);
            assert!(sign::verify(secret, timestamp, expected));
            assert_eq!(
                sign::url_encode(expected),
                v["expected_sign_urlencoded"].as_str().expect("urlencoded"),
                "{}",
                v["id"]
            );
            checked += 1;
        } else {
            // The login-free OAPI signature signs the timestamp alone: a different function.
            let secret = v["app_secret"].as_str().expect("app_secret");
            assert_ne!(
                sign::sign(secret, timestamp),
                v["expected_base64"].as_str().expect("b64")
            );
        }
    }
    assert_eq!(checked, 2);
}

fn app(mode: &str) -> DingTalkConfig {
    serde_json::from_value(json!({
        "app_key": "dingkey", "app_secret": SECRET, "robot_code": "dingrobot", "mode": mode,
    }))
    .expect("config")
}

fn group_message() -> Value {
    json!({
        "msgtype": "text", "text": {"content": " /echo hi"},
        "msgId": "msgAbC123", "createAt": 1774080994334i64,
        "conversationType": "2", "conversationId": "cidXYZ==", "conversationTitle": "HR",
        "senderId": "$:LWCP_v1:$abc", "senderNick": "Zhang San", "senderStaffId": "manager123",
        "chatbotUserId": "$:LWCP_v1:$bot", "robotCode": "dingrobot", "isAdmin": true,
        "isInAtList": true,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}, {"dingtalkId": "$:LWCP_v1:$li", "staffId": "lisi01"}],
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s1",
        "sessionWebhookExpiredTime": 1774086394522i64,
    })
}

fn request(headers: &[(&str, String)], body: &[u8]) -> Result<Inbox, InboundError> {
    let inbound = DingTalkInbound::new(app("http"));
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    let req = WebhookRequest {
        method: &http::Method::POST,
        headers: &map,
        query: None,
        body,
    };
    inbound.verify(&req)?;
    inbound.parse(&req)
}

fn signed_at(timestamp_ms: i64) -> Vec<(&'static str, String)> {
    let timestamp = timestamp_ms.to_string();
    vec![
        ("sign", sign::sign(SECRET, &timestamp)),
        ("timestamp", timestamp),
    ]
}

fn now_signed() -> Vec<(&'static str, String)> {
    signed_at(clawdbot_core::now_ms())
}

fn single(inbox: Inbox) -> clawdbot_core::Envelope {
    match inbox {
        Inbox::Envelopes(mut envelopes) if envelopes.len() == 1 => envelopes.remove(0),
        other => panic!("expected one envelope, got {other:?}"),
    }
}

#[test]
fn a_signed_group_message_decodes_with_its_admin_flag_and_session_webhook() {
    let body = group_message().to_string();
    let envelope = single(request(&now_signed(), body.as_bytes()).expect("accepted"));
    assert_eq!(envelope.platform, NAME);
    assert_eq!(envelope.message_id, "msgAbC123");
    assert_eq!(envelope.kind(), EventKind::Message);
    assert_eq!(envelope.text, "/echo hi");
    assert!(envelope.mentions_bot);
    let conversation = envelope.conversation.clone().expect("conversation");
    assert_eq!(
        (conversation.kind(), conversation.id.as_str()),
        (ConversationKind::Group, "cidXYZ==")
    );
    let sender = envelope.sender.clone().expect("sender");
    assert_eq!(
        (sender.user_id.as_str(), sender.is_admin),
        ("manager123", true)
    );
    match crate::reply_context::open::<super::DingTalkReplyContext>(
        NAME,
        envelope.reply_context.as_ref(),
    ) {
        Some(context) => {
            assert_eq!(
                context.session_webhook,
                "https://oapi.dingtalk.com/robot/sendBySession?session=s1"
            );
            assert_eq!(context.session_webhook_expires_at_ms, 1774086394522);
            assert_eq!(context.conversation_id, "cidXYZ==");
            assert_eq!(context.sender_staff_id, "manager123");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_command_after_the_robots_mention_routes_in_every_shape_dingtalk_sends() {
    let config = app("http");
    let decoded = |extra: Value| {
        let mut message = group_message();
        for (key, value) in extra.as_object().expect("object") {
            message[key] = value.clone();
        }
        decode(&config, message.to_string().as_bytes()).expect("decodes")
    };
    let only_robot = json!([{"dingtalkId": "$:LWCP_v1:$bot"}]);
    // Text: DingTalk already took the @robot out and left its space.
    let text = decoded(json!({"atUsers": only_robot}));
    assert_eq!(text.text, "/echo hi");
    assert!(text.mentions_bot);
    // Rich text keeps `@机器人` as its first part.
    let rich = decoded(json!({
        "msgtype": "richText", "atUsers": only_robot,
        "content": {"richText": [{"text": "@sop测试机器人"}, {"text": " /echo hi"}]},
    }));
    assert_eq!(rich.text, "/echo hi");
    let rich_inline = decoded(json!({
        "msgtype": "richText", "atUsers": only_robot,
        "content": {"richText": [{"text": "@机器人 /echo 你好"}]},
    }));
    assert_eq!(rich_inline.text, "/echo 你好");
    // Someone else mentioned too: a leading @ may be theirs, so the text stays as written.
    let others = decoded(json!({
        "text": {"content": "@李四 /echo hi"},
    }));
    assert_eq!(others.text, "@李四 /echo hi");
}

#[test]
fn each_message_type_becomes_its_segments() {
    let config = app("http");
    let with = |extra: Value| {
        let mut message = group_message();
        for (key, value) in extra.as_object().expect("object") {
            message[key] = value.clone();
        }
        message["atUsers"] = json!([]);
        decode(&config, message.to_string().as_bytes()).expect("decodes")
    };
    let picture = with(
        json!({"msgtype": "picture", "content": {"downloadCode": "dc1", "pictureDownloadCode": "p1"}}),
    );
    assert!(matches!(&picture.segments[0].kind, Some(Kind::Image(m)) if m.file_id == "dc1"));
    let file =
        with(json!({"msgtype": "file", "content": {"downloadCode": "dc2", "fileName": "a.pdf"}}));
    assert!(matches!(&file.segments[0].kind, Some(Kind::File(m)) if m.name == "a.pdf"));
    let audio = with(
        json!({"msgtype": "audio", "content": {"downloadCode": "dc3", "recognition": "/echo spoken"}}),
    );
    assert_eq!(audio.text, "[voice]/echo spoken");
    let rich = with(
        json!({"msgtype": "richText", "content": {"richText": [{"text": "look "}, {"pictureDownloadCode": "p2", "downloadCode": "dc4", "type": "picture"}]}}),
    );
    assert_eq!(rich.text, "look [image]");
    let private = with(json!({"conversationType": "1", "isInAtList": false}));
    let conversation = private.conversation.clone().expect("conversation");
    assert_eq!(
        (conversation.kind(), conversation.id.as_str()),
        (ConversationKind::Private, "manager123")
    );
    assert!(
        private.mentions_bot,
        "one-to-one messages are addressed to the robot"
    );
    let unknown = with(json!({"msgtype": "interactiveCard"}));
    assert_eq!(unknown.kind(), EventKind::Notice);
}

#[test]
fn a_missing_or_wrong_sign_is_401() {
    let body = group_message().to_string();
    let error = request(
        &[("timestamp", clawdbot_core::now_ms().to_string())],
        body.as_bytes(),
    )
    .expect_err("no sign");
    assert!(matches!(
        error,
        InboundError::MissingSignature { header: "sign" }
    ));
    let mut headers = now_signed();
    headers[0].1 = sign::sign("another-secret", &headers[1].1);
    let error = request(&headers, body.as_bytes()).expect_err("wrong sign");
    assert!(matches!(error, InboundError::BadSignature));
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
}

#[test]
fn a_stale_or_future_timestamp_is_401_naming_the_skew() {
    let body = group_message().to_string();
    let two_hours = 2 * 3600 * 1000;
    let stale = request(
        &signed_at(clawdbot_core::now_ms() - two_hours),
        body.as_bytes(),
    )
    .expect_err("stale");
    assert_eq!(stale.status(), http::StatusCode::UNAUTHORIZED);
    let text = stale.to_string();
    assert!(
        text.contains("signature") && text.contains("7200 s off"),
        "{text}"
    );
    let future = request(
        &signed_at(clawdbot_core::now_ms() + two_hours),
        body.as_bytes(),
    )
    .expect_err("future");
    assert!(
        future.to_string().contains("-7200 s off") || future.to_string().contains("-7199 s off"),
        "{future}"
    );
    // Inside the hour is fine.
    request(
        &signed_at(clawdbot_core::now_ms() - 3000 * 1000),
        body.as_bytes(),
    )
    .expect("within the window");
}

#[test]
fn malformed_json_is_400() {
    let error = request(&now_signed(), b"{not json").expect_err("malformed");
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    let error = request(&now_signed(), br#"{"msgtype":"text"}"#).expect_err("no msgId");
    assert!(error.to_string().contains("msgId"), "{error}");
}

#[test]
fn replies_compose_mentions_in_the_text_and_markdown_titles() {
    use clawdbot_core::proto::{Markdown, Mention, Segment, Text};
    let segments = vec![
        Segment {
            kind: Some(Kind::Mention(Mention {
                user_id: "lisi01".into(),
                ..Default::default()
            })),
        },
        Segment {
            kind: Some(Kind::Mention(Mention {
                user_id: "13800138000".into(),
                ..Default::default()
            })),
        },
        Segment {
            kind: Some(Kind::Text(Text {
                text: " please check".into(),
            })),
        },
    ];
    let (messages, notes) = compose(&segments);
    assert!(notes.is_empty());
    assert_eq!(
        messages[0].0,
        json!({
            "msgtype": "text", "text": {"content": "@lisi01@13800138000 please check"},
            "at": {"atUserIds": ["lisi01"], "atMobiles": ["13800138000"], "isAtAll": false},
        })
    );
    let (messages, _) = compose(&[Segment {
        kind: Some(Kind::Markdown(Markdown {
            markdown: "## Attendance\n- 9:00".into(),
        })),
    }]);
    assert_eq!(messages[0].0["markdown"]["title"], "Attendance");
    let (key, param) = openapi_form(&messages[0]).expect("template");
    assert_eq!(key, "sampleMarkdown");
    let param: Value = serde_json::from_str(&param).expect("msgParam is a JSON string");
    assert_eq!(param["text"], "## Attendance\n- 9:00");
}

#[test]
fn the_issue_config_loads_and_bad_keys_are_named() {
    let yaml = r#"
app_key: "k"
app_secret: "s"
robot_code: "dingxxxx"
mode: stream
group_robots:
  - id: hr-notice
    access_token: "t"
    secret: "SECabc"
"#;
    let config: DingTalkConfig = serde_saphyr::from_str(yaml).expect("loads");
    assert!(
        config.validate("dingtalk").is_empty(),
        "{:?}",
        config.validate("dingtalk")
    );
    assert_eq!(config.mode, Mode::Stream);
    assert_eq!(config.api_base, "https://api.dingtalk.com");
    assert_eq!(config.oapi_base, "https://oapi.dingtalk.com");
    assert_eq!(config.robot_limit.count, 20);
    let bad: DingTalkConfig =
        serde_saphyr::from_str(&yaml.replace("id: hr-notice", "id: \"hr notice\"")).expect("loads");
    let problems = bad.validate("dingtalk");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`dingtalk.group_robots[0].id`")),
        "{problems:?}"
    );
}

#[test]
fn errors_are_told_apart_into_retryable_and_permanent() {
    use super::api::CallError;
    let api = |status: u16, code: &str| CallError::Api {
        status,
        code: code.into(),
        message: String::new(),
    };
    // Throttled or busy: try again later.
    assert!(api(200, "130101").is_retryable(), "send too fast");
    assert!(api(200, "410100").is_retryable());
    assert!(api(429, "Throttling.Api").is_retryable());
    assert!(
        CallError::Unavailable {
            reason: "timeout".into()
        }
        .is_retryable()
    );
    // Permanent: a sign mismatch, an unknown robot token, bad parameters.
    assert!(!api(200, "310000").is_retryable(), "sign not match");
    assert!(!api(200, "300001").is_retryable());
    assert!(!api(400, "invalidParameter.msgParam.invalid").is_retryable());
    // A rejected access token: fetch a new one.
    assert!(api(401, "InvalidAuthentication").is_token_rejected());
    assert!(api(400, "token.notExisted").is_token_rejected());
    assert!(!api(200, "310000").is_token_rejected());
}
