//! The proto envelope and reply to and from the WIT records, field by field.

use clawdbot_core::proto::{
    self, ConversationKind, Envelope, EventKind, segment::Kind as SegmentKind,
};

use crate::bindings::clawdbot::skill::types as wit;

fn event_kind(kind: i32) -> wit::EventKind {
    match EventKind::try_from(kind).unwrap_or(EventKind::Unspecified) {
        EventKind::Unspecified => wit::EventKind::Unspecified,
        EventKind::Message => wit::EventKind::Message,
        EventKind::Notice => wit::EventKind::Notice,
        EventKind::Request => wit::EventKind::Request,
        EventKind::Meta => wit::EventKind::Meta,
    }
}

fn conversation_to_wit(c: &proto::Conversation) -> wit::Conversation {
    let kind = match ConversationKind::try_from(c.kind).unwrap_or(ConversationKind::Unspecified) {
        ConversationKind::Unspecified => wit::ConversationKind::Unspecified,
        ConversationKind::Private => wit::ConversationKind::Private,
        ConversationKind::Group => wit::ConversationKind::Group,
        ConversationKind::Channel => wit::ConversationKind::Channel,
    };
    wit::Conversation {
        kind,
        id: c.id.clone(),
    }
}

fn conversation_from_wit(c: wit::Conversation) -> proto::Conversation {
    let kind = match c.kind {
        wit::ConversationKind::Unspecified => ConversationKind::Unspecified,
        wit::ConversationKind::Private => ConversationKind::Private,
        wit::ConversationKind::Group => ConversationKind::Group,
        wit::ConversationKind::Channel => ConversationKind::Channel,
    };
    proto::Conversation {
        kind: kind.into(),
        id: c.id,
    }
}

fn media_to_wit(m: &proto::Media) -> wit::Media {
    wit::Media {
        url: m.url.clone(),
        file_id: m.file_id.clone(),
        name: m.name.clone(),
        mime: m.mime.clone(),
    }
}

fn media_from_wit(m: wit::Media) -> proto::Media {
    proto::Media {
        url: m.url,
        file_id: m.file_id,
        name: m.name,
        mime: m.mime,
    }
}

/// A proto segment as WIT; an empty one (no kind) has no WIT form and is skipped.
fn segment_to_wit(segment: &proto::Segment) -> Option<wit::Segment> {
    Some(match segment.kind.as_ref()? {
        SegmentKind::Text(t) => wit::Segment::Text(t.text.clone()),
        SegmentKind::Mention(m) => wit::Segment::Mention(wit::Mention {
            user_id: m.user_id.clone(),
            all: m.all,
            display_name: m.display_name.clone(),
        }),
        SegmentKind::Image(m) => wit::Segment::Image(media_to_wit(m)),
        SegmentKind::File(m) => wit::Segment::File(media_to_wit(m)),
        SegmentKind::Voice(m) => wit::Segment::Voice(media_to_wit(m)),
        SegmentKind::Video(m) => wit::Segment::Video(media_to_wit(m)),
        SegmentKind::Link(l) => wit::Segment::Link(wit::LinkCard {
            url: l.url.clone(),
            title: l.title.clone(),
            description: l.description.clone(),
            image_url: l.image_url.clone(),
        }),
        SegmentKind::Markdown(m) => wit::Segment::Markdown(m.markdown.clone()),
        SegmentKind::Quote(q) => wit::Segment::Quote(q.message_id.clone()),
        SegmentKind::Raw(r) => wit::Segment::Raw(wit::Raw {
            platform: r.platform.clone(),
            type_: r.r#type.clone(),
            data_json: r.data_json.clone(),
        }),
    })
}

fn segment_from_wit(segment: wit::Segment) -> proto::Segment {
    let kind = match segment {
        wit::Segment::Text(text) => SegmentKind::Text(proto::Text { text }),
        wit::Segment::Mention(m) => SegmentKind::Mention(proto::Mention {
            user_id: m.user_id,
            all: m.all,
            display_name: m.display_name,
        }),
        wit::Segment::Image(m) => SegmentKind::Image(media_from_wit(m)),
        wit::Segment::File(m) => SegmentKind::File(media_from_wit(m)),
        wit::Segment::Voice(m) => SegmentKind::Voice(media_from_wit(m)),
        wit::Segment::Video(m) => SegmentKind::Video(media_from_wit(m)),
        wit::Segment::Link(l) => SegmentKind::Link(proto::LinkCard {
            url: l.url,
            title: l.title,
            description: l.description,
            image_url: l.image_url,
        }),
        wit::Segment::Markdown(markdown) => SegmentKind::Markdown(proto::Markdown { markdown }),
        wit::Segment::Quote(message_id) => SegmentKind::Quote(proto::Quote { message_id }),
        wit::Segment::Raw(r) => SegmentKind::Raw(proto::Raw {
            platform: r.platform,
            r#type: r.type_,
            data_json: r.data_json,
        }),
    };
    proto::Segment { kind: Some(kind) }
}

/// The envelope as the skill sees it.
pub fn message(msg: &Envelope) -> wit::Message {
    wit::Message {
        id: msg.id.clone(),
        platform: msg.platform.clone(),
        bot_id: msg.bot_id.clone(),
        self_id: msg.self_id.clone(),
        message_id: msg.message_id.clone(),
        kind: event_kind(msg.kind),
        event_type: msg.event_type.clone(),
        conversation: msg.conversation.as_ref().map(conversation_to_wit),
        sender: msg.sender.as_ref().map(|s| wit::Sender {
            user_id: s.user_id.clone(),
            display_name: s.display_name.clone(),
            is_admin: s.is_admin,
            role: s.role.clone(),
        }),
        segments: msg.segments.iter().filter_map(segment_to_wit).collect(),
        text: msg.text.clone(),
        sent_at_ms: msg.sent_at_ms,
        received_at_ms: msg.received_at_ms,
        mentions_bot: msg.mentions_bot,
    }
}

/// The skill's replies as proto replies addressed like any skill's: to the message's
/// conversation unless the reply names another, with idempotency keys.
pub fn replies(msg: &Envelope, skill: &str, replies: Vec<wit::Reply>) -> Vec<proto::Reply> {
    replies
        .into_iter()
        .enumerate()
        .map(|(index, reply)| {
            let mut out = msg.reply(
                skill,
                index,
                reply.segments.into_iter().map(segment_from_wit).collect(),
            );
            if let Some(conversation) = reply.conversation {
                out.conversation = Some(conversation_from_wit(conversation));
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_kind_round_trips() {
        let segments = vec![
            proto::Segment::text("hi"),
            proto::Segment::mention("42"),
            proto::Segment::image("https://img/1.png"),
            proto::Segment {
                kind: Some(SegmentKind::File(proto::Media {
                    url: "u".into(),
                    file_id: "f".into(),
                    name: "n".into(),
                    mime: "m".into(),
                })),
            },
            proto::Segment {
                kind: Some(SegmentKind::Voice(proto::Media::default())),
            },
            proto::Segment {
                kind: Some(SegmentKind::Video(proto::Media::default())),
            },
            proto::Segment {
                kind: Some(SegmentKind::Link(proto::LinkCard {
                    url: "u".into(),
                    title: "t".into(),
                    description: "d".into(),
                    image_url: "i".into(),
                })),
            },
            proto::Segment {
                kind: Some(SegmentKind::Markdown(proto::Markdown {
                    markdown: "**b**".into(),
                })),
            },
            proto::Segment {
                kind: Some(SegmentKind::Quote(proto::Quote {
                    message_id: "7".into(),
                })),
            },
            proto::Segment {
                kind: Some(SegmentKind::Raw(proto::Raw {
                    platform: "wecom".into(),
                    r#type: "textcard".into(),
                    data_json: "{}".into(),
                })),
            },
        ];
        let back: Vec<proto::Segment> = segments
            .iter()
            .filter_map(segment_to_wit)
            .map(segment_from_wit)
            .collect();
        assert_eq!(back, segments);
    }

    #[test]
    fn replies_go_to_the_message_conversation_unless_they_name_one() {
        let msg = Envelope {
            id: "e1".into(),
            platform: "onebot".into(),
            conversation: Some(proto::Conversation {
                kind: ConversationKind::Group.into(),
                id: "555".into(),
            }),
            ..Envelope::default()
        };
        let out = replies(
            &msg,
            "echo",
            vec![
                wit::Reply {
                    conversation: None,
                    segments: vec![wit::Segment::Text("a".into())],
                },
                wit::Reply {
                    conversation: Some(wit::Conversation {
                        kind: wit::ConversationKind::Private,
                        id: "42".into(),
                    }),
                    segments: vec![],
                },
            ],
        );
        assert_eq!(out[0].conversation, msg.conversation);
        assert_eq!(out[0].id, "e1:echo:0");
        assert_eq!(
            out[1].conversation.as_ref().map(|c| c.id.as_str()),
            Some("42")
        );
        assert_eq!(out[1].skill, "echo");
    }
}
