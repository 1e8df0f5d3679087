//! The sandbox's decoding and reply format.

use clawdbot_core::proto::{ConversationKind, Reply, Segment};

use super::*;
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

fn parse(body: &str) -> Result<Inbox, InboundError> {
    let inbound = SandboxInbound::new(SandboxConfig::default());
    let headers = http::HeaderMap::new();
    let req = WebhookRequest {
        method: &http::Method::POST,
        headers: &headers,
        query: None,
        body: body.as_bytes(),
    };
    inbound.verify(&req)?;
    inbound.parse(&req)
}

#[test]
fn a_group_message_becomes_an_envelope_with_the_chosen_identity() {
    let inbox = parse(r#"{"user_id":"alice","is_admin":true,"conversation":{"kind":"group","id":"1001"},"text":"/echo hi","message_id":"m1"}"#)
        .expect("parses");
    let Inbox::Envelopes(envelopes) = inbox else {
        panic!("envelopes")
    };
    let envelope = &envelopes[0];
    assert_eq!(envelope.platform, NAME);
    assert_eq!(envelope.text, "/echo hi");
    assert_eq!(envelope.message_id, "m1");
    let conversation = envelope.conversation.clone().expect("conversation");
    assert_eq!(
        (conversation.kind(), conversation.id.as_str()),
        (ConversationKind::Group, "1001")
    );
    let sender = envelope.sender.clone().expect("sender");
    assert!(sender.is_admin);
    assert_eq!(sender.display_name, "alice");
}

#[test]
fn a_private_chat_is_the_users_own_conversation() {
    let Ok(Inbox::Envelopes(envelopes)) =
        parse(r#"{"user_id":"bob","conversation":{"kind":"private"},"text":"x"}"#)
    else {
        panic!("parses")
    };
    let conversation = envelopes[0].conversation.clone().expect("conversation");
    assert_eq!(
        (conversation.kind(), conversation.id.as_str()),
        (ConversationKind::Private, "bob")
    );
}

#[test]
fn bad_messages_are_refused_with_the_reason() {
    for (body, reason) in [
        ("nope", "not a sandbox message"),
        (
            r#"{"user_id":"","conversation":{"kind":"private"},"text":"x"}"#,
            "user_id",
        ),
        (
            r#"{"user_id":"a","conversation":{"kind":"group"},"text":"x"}"#,
            "needs an `id`",
        ),
        (
            r#"{"user_id":"a","conversation":{"kind":"channel","id":"1"},"text":"x"}"#,
            "expected `private` or `group`",
        ),
        (
            r#"{"user_id":"a","conversation":{"kind":"private"},"text":"  "}"#,
            "`text`",
        ),
    ] {
        let error = parse(body).expect_err(body);
        assert!(error.to_string().contains(reason), "{error}");
    }
}

#[test]
fn replies_carry_conversation_and_typed_segments() {
    let reply = Reply {
        id: "r1".into(),
        bot_id: "default".into(),
        conversation: Some(clawdbot_core::proto::Conversation {
            kind: ConversationKind::Group.into(),
            id: "1001".into(),
        }),
        segments: vec![
            Segment::text("hi"),
            Segment {
                kind: Some(clawdbot_core::proto::segment::Kind::Markdown(
                    clawdbot_core::proto::Markdown {
                        markdown: "**b**".into(),
                    },
                )),
            },
            Segment::image("https://example.invalid/cat.png"),
        ],
        ..Default::default()
    };
    let json = reply_json(&reply);
    assert_eq!(
        json["conversation"],
        serde_json::json!({"kind": "group", "id": "1001"})
    );
    assert_eq!(
        json["segments"][0],
        serde_json::json!({"type": "text", "text": "hi"})
    );
    assert_eq!(json["segments"][1]["type"], "markdown");
    assert_eq!(
        json["segments"][2],
        serde_json::json!({"type": "image", "url": "https://example.invalid/cat.png"})
    );
    assert_eq!(channel("default"), "sandbox:default");
}
