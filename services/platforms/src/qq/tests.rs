//! The published vectors (op 13 and event signatures, including the official one that only
//! verifies over the pretty-printed body), decoding, and the refusals.

use clawdbot_core::proto::{ConversationKind, EventKind, segment::Kind};
use serde_json::{Value, json};

use super::*;
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

const VECTORS: &str = include_str!("fixtures/qq.vectors.json");

fn vector(id: &str) -> Value {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors JSON");
    all["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("vector {id}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key}"))
}

#[test]
fn shared_vectors_copy_is_current() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/protocols/qq.vectors.json"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text, VECTORS,
            "fixtures/qq.vectors.json differs from shared/protocols"
        );
    }
}

#[test]
fn keys_derive_from_the_secret_as_documented() {
    for id in [
        "qq-op13-official",
        "qq-event-sig-official",
        "qq-event-sig-self",
    ] {
        let v = vector(id);
        let key = sign::signing_key(s(&v, "secret"));
        assert_eq!(
            hex::encode(key.to_bytes()),
            hex::encode(s(&v, "seed_ascii")),
            "{id}"
        );
        assert_eq!(
            hex::encode(key.verifying_key().to_bytes()),
            s(&v, "public_key_hex"),
            "{id}"
        );
    }
}

#[test]
fn op13_vectors_reproduce_end_to_end() {
    let v = vector("qq-op13-official");
    let config: QqConfig =
        serde_json::from_value(json!({"app_id": s(&v, "appid"), "secret": s(&v, "secret")}))
            .expect("config");
    let inbound = QqInbound::new(vec![config]);
    let mut headers = http::HeaderMap::new();
    headers.insert("x-bot-appid", http::HeaderValue::from_static("11111111"));
    headers.insert(
        "user-agent",
        http::HeaderValue::from_static("QQBot-Callback"),
    );
    let body = s(&v, "request_body").as_bytes();
    let req = WebhookRequest {
        method: &http::Method::POST,
        headers: &headers,
        query: None,
        body,
    };
    inbound.verify(&req).expect("op 13 is not signed");
    match inbound.parse(&req).expect("answered") {
        Inbox::Handshake { body, content_type } => {
            assert_eq!(content_type, "application/json");
            let answer: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(answer, v["expected_response_body"]);
        }
        other => panic!("{other:?}"),
    }
    let own = vector("qq-op13-self");
    let key = sign::signing_key(s(&own, "secret"));
    assert_eq!(
        sign::sign_hex(
            &key,
            &[
                s(&own, "event_ts").as_bytes(),
                s(&own, "plain_token").as_bytes()
            ]
        ),
        s(&own, "expected_signature_hex")
    );
}

#[test]
fn event_signatures_verify_over_the_raw_bytes_only() {
    let official = vector("qq-event-sig-official");
    let key = sign::signing_key(s(&official, "secret")).verifying_key();
    let ts = s(&official, "timestamp").as_bytes();
    let sig = s(&official, "expected_signature_hex");
    sign::verify_hex(
        &key,
        &[ts, s(&official, "body_actually_signed").as_bytes()],
        sig,
    )
    .expect("verifies over the pretty-printed body it was signed with");
    assert_eq!(
        sign::verify_hex(
            &key,
            &[ts, s(&official, "body_as_displayed_in_doc").as_bytes()],
            sig
        ),
        Err(sign::SignatureError::Mismatch),
        "re-serialized JSON does not verify"
    );
    let own = vector("qq-event-sig-self");
    let signing = sign::signing_key(s(&own, "secret"));
    let parts: [&[u8]; 2] = [s(&own, "timestamp").as_bytes(), s(&own, "body").as_bytes()];
    assert_eq!(
        sign::sign_hex(&signing, &parts),
        s(&own, "expected_signature_hex")
    );
}

const SECRET: &str = "myBotSecretForTests123";

fn bot() -> QqInbound {
    QqInbound::new(vec![
        serde_json::from_value(json!({"app_id": "102000001", "secret": SECRET})).expect("config"),
    ])
}

fn signed(body: &str, timestamp: i64) -> http::HeaderMap {
    let key = sign::signing_key(SECRET);
    let ts = timestamp.to_string();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-bot-appid", http::HeaderValue::from_static("102000001"));
    headers.insert(
        "x-signature-timestamp",
        http::HeaderValue::from_str(&ts).expect("ts"),
    );
    let sig = sign::sign_hex(&key, &[ts.as_bytes(), body.as_bytes()]);
    headers.insert(
        "x-signature-ed25519",
        http::HeaderValue::from_str(&sig).expect("sig"),
    );
    headers
}

fn run(headers: &http::HeaderMap, body: &str) -> Result<Inbox, InboundError> {
    let inbound = bot();
    let req = WebhookRequest {
        method: &http::Method::POST,
        headers,
        query: None,
        body: body.as_bytes(),
    };
    inbound.verify(&req)?;
    inbound.parse(&req)
}

fn now() -> i64 {
    clawdbot_core::now_ms() / 1000
}

fn group_at(content: &str) -> String {
    json!({"op": 0, "id": "GROUP_AT_MESSAGE_CREATE:e1", "t": "GROUP_AT_MESSAGE_CREATE", "d": {
        "id": "ROBOT1.0_m1", "content": content, "timestamp": "2026-11-25T12:00:00+08:00",
        "group_openid": "G1", "author": {"member_openid": "M1"},
        "attachments": [{"content_type": "image/png", "filename": "a.png", "url": "https://multimedia.nt.qq.com.cn/a.png"}],
    }})
    .to_string()
}

#[test]
fn a_signed_group_at_message_decodes_with_its_reply_context() {
    let body = group_at(" /echo hi");
    let envelope = match run(&signed(&body, now()), &body).expect("accepted") {
        Inbox::Envelopes(mut e) => e.remove(0),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        envelope.message_id, "GROUP_AT_MESSAGE_CREATE:e1",
        "dedupe by event id"
    );
    assert_eq!(envelope.text, "/echo hi[image]");
    assert!(matches!(&envelope.segments[1].kind, Some(Kind::Image(m)) if m.url.ends_with("a.png")));
    let conversation = envelope.conversation.clone().expect("conversation");
    assert_eq!(
        (conversation.kind(), conversation.id.as_str()),
        (ConversationKind::Group, "G1")
    );
    match crate::reply_context::open::<super::QqReplyContext>(NAME, envelope.reply_context.as_ref())
    {
        Some(c) => {
            assert_eq!(
                (c.scene.as_str(), c.target.as_str(), c.msg_id.as_str()),
                ("group", "G1", "ROBOT1.0_m1")
            );
            // 2026-11-25T12:00:00+08:00
            assert_eq!(c.message_at_ms, 1_795_579_200_000);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn c2c_and_channel_messages_and_notices() {
    let c2c = json!({"op": 0, "id": "C2C:e2", "t": "C2C_MESSAGE_CREATE", "d": {"id": "m2", "content": "hello", "timestamp": "2026-11-25T12:00:00+08:00", "author": {"user_openid": "U1"}}}).to_string();
    let Inbox::Envelopes(e) = run(&signed(&c2c, now()), &c2c).expect("c2c") else {
        panic!()
    };
    assert_eq!(
        e[0].conversation.clone().expect("c").kind(),
        ConversationKind::Private
    );
    let channel = json!({"op": 0, "id": "AT:e3", "t": "AT_MESSAGE_CREATE", "d": {"id": "m3", "content": "<@!123> /echo x", "channel_id": "C1", "guild_id": "G", "author": {"id": "A1", "username": "Ann"}, "timestamp": "2026-11-25T12:00:00+08:00"}}).to_string();
    let Inbox::Envelopes(e) = run(&signed(&channel, now()), &channel).expect("channel") else {
        panic!()
    };
    assert_eq!(e[0].text, "/echo x", "the bot's own <@!id> is stripped");
    // With `mentions[]` (as the guild API sends it): the bot's mention goes wherever it is,
    // anyone else's stays as a mention segment.
    let mentions = json!({"op": 0, "id": "AT:e4", "t": "AT_MESSAGE_CREATE", "d": {"id": "m4", "content": "<@!777> <@!123> /echo hi <@!888>", "mentions": [{"id": "777", "username": "Li", "bot": false}, {"id": "123", "username": "clawdbot", "bot": true}, {"id": "888", "username": "Wang", "bot": false}], "channel_id": "C1", "guild_id": "G", "author": {"id": "A1", "username": "Ann"}, "timestamp": "2026-11-25T12:00:00+08:00"}}).to_string();
    let Inbox::Envelopes(e) = run(&signed(&mentions, now()), &mentions).expect("mentions") else {
        panic!()
    };
    assert_eq!(e[0].text, "@777  /echo hi @888");
    let mentioned: Vec<&str> = e[0]
        .segments
        .iter()
        .filter_map(|s| match &s.kind {
            Some(clawdbot_core::proto::segment::Kind::Mention(m)) => Some(m.user_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(mentioned, ["777", "888"]);
    let addressed = json!({"op": 0, "id": "AT:e5", "t": "AT_MESSAGE_CREATE", "d": {"id": "m5", "content": "<@!123> /echo hi <@!888>", "mentions": [{"id": "123", "bot": true}, {"id": "888", "bot": false}], "channel_id": "C1", "guild_id": "G", "author": {"id": "A1", "username": "Ann"}, "timestamp": "2026-11-25T12:00:00+08:00"}}).to_string();
    let Inbox::Envelopes(e) = run(&signed(&addressed, now()), &addressed).expect("addressed")
    else {
        panic!()
    };
    assert_eq!(e[0].text, "/echo hi @888", "routes as the command");
    assert_eq!(
        e[0].conversation.clone().expect("c").kind(),
        ConversationKind::Channel
    );
    for event in ["GROUP_ADD_ROBOT", "FRIEND_ADD", "SOMETHING_NEW"] {
        let body = json!({"op": 0, "id": format!("{event}:e"), "t": event, "d": {"group_openid": "G1", "timestamp": 1}}).to_string();
        let Inbox::Envelopes(e) = run(&signed(&body, now()), &body).expect("notice") else {
            panic!()
        };
        assert_eq!(
            e[0].kind(),
            EventKind::Notice,
            "{event}: accepted, not routed"
        );
    }
    let unknown_op = json!({"op": 42, "d": {}}).to_string();
    assert!(matches!(
        run(&signed(&unknown_op, now()), &unknown_op),
        Ok(Inbox::Nothing)
    ));
}

#[test]
fn bad_signatures_and_stale_timestamps_are_401() {
    let body = group_at(" hi");
    let mut missing = signed(&body, now());
    missing.remove("x-signature-ed25519");
    assert!(matches!(
        run(&missing, &body),
        Err(InboundError::MissingSignature { .. })
    ));
    let mut short = signed(&body, now());
    short.insert(
        "x-signature-ed25519",
        http::HeaderValue::from_static("abcd"),
    );
    let error = run(&short, &body).expect_err("short");
    assert!(error.to_string().contains("2 bytes, not 64"), "{error}");
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    let tampered = body.replace("hi", "hI");
    assert!(matches!(
        run(&signed(&body, now()), &tampered),
        Err(InboundError::BadSignature)
    ));
    let stale = run(&signed(&body, now() - 3600), &body).expect_err("stale");
    assert_eq!(stale.status(), http::StatusCode::UNAUTHORIZED);
    assert!(stale.to_string().contains("s off"), "{stale}");
    let error = run(&signed("{not json", now()), "{not json").expect_err("malformed");
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
}

#[test]
fn op13_refuses_to_sign_anything_but_a_token_so_it_cannot_forge_events() {
    // Unchecked, op 13 would sign `event_ts + plain_token` = `timestamp + forged body`.
    let forged_body = group_at(" /admin grant");
    let probe =
        json!({"op": 13, "d": {"plain_token": forged_body, "event_ts": "1735704000"}}).to_string();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-bot-appid", http::HeaderValue::from_static("102000001"));
    let error = run(&headers, &probe).expect_err("refused");
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
}

/// The event examples of QQ's own documentation (see
/// `testkit/fixtures/external/qq/SOURCES.md`), each signed and decoded into what
/// `expected.json` says: conversation, text, and whether the bot was addressed.
#[test]
fn documented_events_decode_as_expected() {
    let fixtures = crate::external_fixtures::load("qq");
    assert_eq!(fixtures.len(), 5, "every collected event is listed");
    for crate::external_fixtures::Fixture { file, body, case } in fixtures {
        let envelope = match run(&signed(&body, now()), &body) {
            Ok(Inbox::Envelopes(mut envelopes)) if envelopes.len() == 1 => envelopes.remove(0),
            other => panic!("{file}: {other:?}"),
        };
        assert_eq!(case["outcome"], "message", "{file}");
        assert_eq!(envelope.kind(), EventKind::Message, "{file}");
        let conversation = envelope.conversation.clone().expect("conversation");
        let kind = match conversation.kind() {
            ConversationKind::Group => "group",
            ConversationKind::Channel => "channel",
            _ => "private",
        };
        assert_eq!(
            format!("{kind}:{}", conversation.id),
            case["conversation"].as_str().expect("conversation"),
            "{file}"
        );
        assert_eq!(
            envelope.text,
            case["text"].as_str().expect("text"),
            "{file}"
        );
        assert_eq!(
            Some(envelope.mentions_bot),
            case["mentions_bot"].as_bool(),
            "{file}"
        );
    }
}

/// In a channel's every-message feed, a leading mention is someone's, not the bot's, unless
/// `mentions[]` marks it a bot: only then is the bot addressed (and its mention taken out).
#[test]
fn a_channel_feed_message_addresses_the_bot_only_when_it_mentions_it() {
    let message = |content: &str, mentions: Value| {
        json!({"op": 0, "id": "MESSAGE_CREATE:e9", "t": "MESSAGE_CREATE", "d": {
            "id": "m9", "channel_id": "C1", "guild_id": "G1", "content": content,
            "timestamp": "2026-11-25T12:00:00+08:00", "mentions": mentions,
            "author": {"id": "U1", "username": "u", "bot": false},
        }})
        .to_string()
    };
    let decode = |body: String| match run(&signed(&body, now()), &body) {
        Ok(Inbox::Envelopes(mut envelopes)) => envelopes.remove(0),
        other => panic!("{other:?}"),
    };
    let to_someone = decode(message(
        "<@!999> /echo hi",
        json!([{"id": "999", "bot": false}]),
    ));
    assert!(!to_someone.mentions_bot);
    assert!(matches!(&to_someone.segments[0].kind, Some(Kind::Mention(m)) if m.user_id == "999"));
    let to_the_bot = decode(message(
        "<@!777> /echo hi",
        json!([{"id": "777", "bot": true}]),
    ));
    assert!(to_the_bot.mentions_bot);
    assert_eq!(to_the_bot.text, "/echo hi");
    let mut own: Value = serde_json::from_str(&message("/echo hi", json!([]))).expect("json");
    own["d"]["author"]["bot"] = true.into();
    let own = own.to_string();
    assert!(matches!(
        run(&signed(&own, now()), &own),
        Ok(Inbox::Skipped {
            reason: "own_message"
        })
    ));
}
