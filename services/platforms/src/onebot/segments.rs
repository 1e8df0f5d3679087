//! Conversion between OneBot segments and the normalized `Segment`, both ways.

use clawdbot_core::proto::{
    LinkCard, Media, Mention, Quote, Raw, Segment, segment::Kind as SegmentKind,
};
use serde_json::{Map, Value, json};

use super::NAME;
use super::cq::{self, RawSegment};
use crate::InboundError;

/// Decodes an event's `message`, whichever form it has, into OneBot segments.
pub(super) fn decode_message(message: &Value) -> Result<Vec<RawSegment>, InboundError> {
    match message {
        Value::String(text) => Ok(cq::parse(text)),
        Value::Array(items) => items.iter().map(decode_array_item).collect(),
        other => Err(InboundError::MalformedBody(format!(
            "`message` must be a string or an array of segments, got `{other}`"
        ))),
    }
}

fn decode_array_item(item: &Value) -> Result<RawSegment, InboundError> {
    let kind = item.get("type").and_then(Value::as_str).ok_or_else(|| {
        InboundError::MalformedBody(format!("message segment without a `type`: `{item}`"))
    })?;
    let data = match item.get("data") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| (key.clone(), value_to_string(value)))
            .collect(),
        // Some implementations send `"data": null` for segments without parameters.
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            return Err(InboundError::MalformedBody(format!(
                "segment `{kind}` has non-object data `{other}`"
            )));
        }
    };
    Ok(RawSegment {
        kind: kind.to_string(),
        data,
    })
}

/// Data values are strings in the spec; numbers and booleans appear in practice.
fn value_to_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Converts a OneBot segment into the normalized model; types with no normalized form are kept
/// as `Raw` so that a reply to OneBot can send them back unchanged.
pub(super) fn to_segment(raw: &RawSegment) -> Segment {
    let get = |key: &str| raw.get(key).unwrap_or_default().to_string();
    let media = || Media {
        url: non_empty_or(get("url"), get("file")),
        file_id: get("file"),
        ..Default::default()
    };
    let kind = match raw.kind.as_str() {
        "text" => return Segment::text(get("text")),
        "at" if raw.get("qq") == Some("all") => SegmentKind::Mention(Mention {
            user_id: String::new(),
            all: true,
            display_name: String::new(),
        }),
        "at" => SegmentKind::Mention(Mention {
            user_id: get("qq"),
            all: false,
            display_name: get("name"),
        }),
        "image" => SegmentKind::Image(media()),
        "record" => SegmentKind::Voice(media()),
        "video" => SegmentKind::Video(media()),
        "file" => SegmentKind::File(Media {
            name: get("name"),
            ..media()
        }),
        "reply" => SegmentKind::Quote(Quote {
            message_id: get("id"),
        }),
        "share" => SegmentKind::Link(LinkCard {
            url: get("url"),
            title: get("title"),
            description: get("content"),
            image_url: get("image"),
        }),
        _ => {
            let data: Map<String, Value> = raw
                .data
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            SegmentKind::Raw(Raw {
                platform: NAME.to_string(),
                r#type: raw.kind.clone(),
                data_json: Value::Object(data).to_string(),
            })
        }
    };
    Segment { kind: Some(kind) }
}

fn non_empty_or(first: String, second: String) -> String {
    if first.is_empty() { second } else { first }
}

/// Encodes normalized segments as a OneBot segment array. What OneBot cannot express degrades
/// to text: markdown is sent as its source, a file as its name and link.
pub(super) fn to_onebot(segments: &[Segment]) -> Value {
    let items: Vec<Value> = segments.iter().filter_map(encode_one).collect();
    Value::Array(items)
}

fn encode_one(segment: &Segment) -> Option<Value> {
    let media_file = |media: &Media| non_empty_or(media.url.clone(), media.file_id.clone());
    Some(match segment.kind.as_ref()? {
        SegmentKind::Text(text) => json!({"type": "text", "data": {"text": text.text}}),
        SegmentKind::Mention(mention) if mention.all => {
            json!({"type": "at", "data": {"qq": "all"}})
        }
        SegmentKind::Mention(mention) => json!({"type": "at", "data": {"qq": mention.user_id}}),
        SegmentKind::Image(media) => json!({"type": "image", "data": {"file": media_file(media)}}),
        SegmentKind::Voice(media) => json!({"type": "record", "data": {"file": media_file(media)}}),
        SegmentKind::Video(media) => json!({"type": "video", "data": {"file": media_file(media)}}),
        SegmentKind::File(media) => {
            let text = format!("[{}] {}", media.name, media_file(media));
            json!({"type": "text", "data": {"text": text}})
        }
        SegmentKind::Link(link) => json!({"type": "share", "data": {
            "url": link.url, "title": link.title, "content": link.description, "image": link.image_url,
        }}),
        SegmentKind::Markdown(markdown) => {
            json!({"type": "text", "data": {"text": markdown.markdown}})
        }
        SegmentKind::Quote(quote) => json!({"type": "reply", "data": {"id": quote.message_id}}),
        SegmentKind::Raw(raw) if raw.platform == NAME => {
            let data: Value = serde_json::from_str(&raw.data_json).unwrap_or(Value::Null);
            json!({"type": raw.r#type, "data": data})
        }
        SegmentKind::Raw(raw) => {
            json!({"type": "text", "data": {"text": format!("[{}]", raw.r#type)}})
        }
    })
}
