//! The echo skill as a WebAssembly component: `/echo <text>` answers `<text>`, and mentions,
//! images and other segments after the command come back as they came.

wit_bindgen::generate!({
    path: "../../../proto/wit",
    world: "skill",
});

use clawdbot::skill::types::Segment;

const COMMAND: &str = "/echo";

struct Echo;

impl Guest for Echo {
    fn manifest() -> Manifest {
        Manifest {
            name: "echo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "/echo <text>: repeats the text".into(),
            commands: vec![COMMAND.into()],
            keywords: Vec::new(),
            patterns: Vec::new(),
            event_types: Vec::new(),
        }
    }

    fn handle(msg: Message) -> Result<Vec<Reply>, String> {
        let mut segments = msg.segments.into_iter();
        let mut out = Vec::new();
        if let Some(Segment::Text(first)) = segments.next() {
            let after = first.trim_start().strip_prefix(COMMAND).unwrap_or(&first);
            let after = after.strip_prefix(' ').unwrap_or(after);
            if !after.trim().is_empty() {
                out.push(Segment::Text(after.to_string()));
            }
        }
        out.extend(segments);
        if out.is_empty() {
            out.push(Segment::Text("usage: /echo <text>".into()));
        }
        Ok(vec![Reply {
            conversation: None,
            segments: out,
        }])
    }
}

export!(Echo);
