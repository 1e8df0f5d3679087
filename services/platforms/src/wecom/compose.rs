//! Turns a reply's segments into WeCom messages, in order: consecutive text and mentions make
//! one text message, each media, markdown, link or raw WeCom segment its own. What WeCom cannot
//! express is degraded and said in a note (it ends up in the delivery result).

use clawdbot_core::proto::{Media, Segment, segment::Kind as SegmentKind};
use serde_json::{Value, json};

use super::NAME;

/// App text and markdown content limit (bytes).
pub const APP_TEXT_LIMIT: usize = 2048;
/// Group robot text limit (bytes); robot markdown takes 4096.
pub const ROBOT_TEXT_LIMIT: usize = 2048;
pub const ROBOT_MARKDOWN_LIMIT: usize = 4096;

/// Who the messages are for: an app message to members, or a group robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    App { markdown: bool },
    Robot,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Complete but for the addressing (`touser`/`agentid`, or the robot key in the URL).
    Body(Value),
    /// A media message: upload first, then send `{"msgtype": kind, kind: {"media_id"}}`.
    Media { kind: &'static str, media: Media },
    /// A robot image: sent as base64 and md5 of its bytes.
    RobotImage(Media),
}

/// The messages for `segments`, and notes on what was degraded.
pub fn compose(segments: &[Segment], channel: Channel) -> (Vec<Part>, Vec<String>) {
    let mut out = Composer {
        channel,
        parts: Vec::new(),
        notes: Vec::new(),
        text: String::new(),
        mentions: Vec::new(),
    };
    for segment in segments {
        match &segment.kind {
            Some(SegmentKind::Text(text)) => out.text.push_str(&text.text),
            Some(SegmentKind::Mention(mention)) => out.mention(mention),
            Some(SegmentKind::Quote(_)) => {
                out.note("quote dropped: WeCom messages cannot quote");
            }
            Some(SegmentKind::Markdown(markdown)) => out.markdown(&markdown.markdown),
            Some(SegmentKind::Image(media)) => out.media("image", media),
            Some(SegmentKind::Voice(media)) => out.media("voice", media),
            Some(SegmentKind::Video(media)) => out.media("video", media),
            Some(SegmentKind::File(media)) => out.media("file", media),
            Some(SegmentKind::Link(link)) => {
                out.flush_text();
                out.parts.push(Part::Body(json!({
                    "msgtype": "news",
                    "news": {"articles": [{
                        "title": link.title,
                        "description": link.description,
                        "url": link.url,
                        "picurl": link.image_url,
                    }]},
                })));
            }
            Some(SegmentKind::Raw(raw)) if raw.platform == NAME => {
                // A WeCom message a skill built itself (textcard, template_card, news...).
                match serde_json::from_str::<Value>(&raw.data_json) {
                    Ok(data) => {
                        out.flush_text();
                        out.parts.push(Part::Body(
                            json!({"msgtype": raw.r#type, raw.r#type.clone(): data}),
                        ));
                    }
                    Err(_) => out.note(&format!("raw `{}` segment dropped: not JSON", raw.r#type)),
                }
            }
            Some(SegmentKind::Raw(raw)) => out.note(&format!(
                "{} `{}` segment dropped: WeCom has no equivalent",
                raw.platform, raw.r#type
            )),
            None => {}
        }
    }
    out.flush_text();
    (out.parts, out.notes)
}

struct Composer {
    channel: Channel,
    parts: Vec<Part>,
    notes: Vec<String>,
    text: String,
    /// Robot text mentions: (user ids, mobiles are not in the model).
    mentions: Vec<String>,
}

impl Composer {
    fn note(&mut self, note: &str) {
        if !self.notes.iter().any(|n| n == note) {
            self.notes.push(note.to_string());
        }
    }

    fn mention(&mut self, mention: &clawdbot_core::proto::Mention) {
        let id = if mention.all {
            "@all".to_string()
        } else {
            mention.user_id.clone()
        };
        match self.channel {
            // Robots notify through mentioned_list; the text only names them.
            Channel::Robot => {
                if !self.mentions.contains(&id) {
                    self.mentions.push(id);
                }
            }
            Channel::App { .. } => {
                let name = if mention.display_name.is_empty() {
                    &mention.user_id
                } else {
                    &mention.display_name
                };
                self.text.push_str(&if mention.all {
                    "@all".to_string()
                } else {
                    format!("@{name}")
                });
            }
        }
    }

    fn flush_text(&mut self) {
        if self.text.trim().is_empty() && self.mentions.is_empty() {
            self.text.clear();
            return;
        }
        let text = std::mem::take(&mut self.text);
        let limit = match self.channel {
            Channel::App { .. } => APP_TEXT_LIMIT,
            Channel::Robot => ROBOT_TEXT_LIMIT,
        };
        let chunks = split_utf8(&text, limit);
        if chunks.len() > 1 {
            self.note(&format!(
                "text split into {} messages ({limit}-byte limit)",
                chunks.len()
            ));
        }
        let mentions = std::mem::take(&mut self.mentions);
        let last = chunks.len() - 1;
        for (index, chunk) in chunks.into_iter().enumerate() {
            let mut body = json!({"msgtype": "text", "text": {"content": chunk}});
            // Mentions ride on the last piece, so that the ping comes with the whole text.
            if self.channel == Channel::Robot && index == last && !mentions.is_empty() {
                body["text"]["mentioned_list"] = json!(mentions);
            }
            self.parts.push(Part::Body(body));
        }
    }

    fn markdown(&mut self, markdown: &str) {
        match self.channel {
            Channel::App { markdown: false } => {
                self.note("markdown sent as text: `markdown: false` for this app");
                self.text.push_str(markdown);
            }
            Channel::App { markdown: true } => {
                self.flush_text();
                for chunk in split_utf8(markdown, APP_TEXT_LIMIT) {
                    self.parts.push(Part::Body(
                        json!({"msgtype": "markdown", "markdown": {"content": chunk}}),
                    ));
                }
            }
            Channel::Robot => {
                self.flush_text();
                let chunks = split_utf8(markdown, ROBOT_MARKDOWN_LIMIT);
                if chunks.len() > 1 {
                    self.note("markdown split: group robots take 4096 bytes a message");
                }
                for chunk in chunks {
                    self.parts.push(Part::Body(
                        json!({"msgtype": "markdown", "markdown": {"content": chunk}}),
                    ));
                }
            }
        }
    }

    fn media(&mut self, kind: &'static str, media: &Media) {
        self.flush_text();
        match (self.channel, kind) {
            (Channel::Robot, "image") => self.parts.push(Part::RobotImage(media.clone())),
            (Channel::Robot, "voice" | "video") => {
                self.note(&format!("{kind} sent as a file: group robots send files"));
                self.parts.push(Part::Media {
                    kind: "file",
                    media: media.clone(),
                });
            }
            _ => self.parts.push(Part::Media {
                kind,
                media: media.clone(),
            }),
        }
    }
}

/// Splits `text` into pieces of at most `limit` bytes, at character boundaries.
pub fn split_utf8(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if current.len() + ch.len_utf8() > limit {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() || pieces.is_empty() {
        pieces.push(current);
    }
    pieces
}
