//! `/probe <what>`: does one thing the sandbox should allow or stop, and says what happened.
//! The reply's first word is the variant this build was made as (`PROBE_VARIANT`, for
//! rollback tests).

wit_bindgen::generate!({
    path: "../../../../../proto/wit",
    world: "skill",
});

use clawdbot::skill::host;
use clawdbot::skill::types::Segment;

const VARIANT: &str = match option_env!("PROBE_VARIANT") {
    Some(variant) => variant,
    None => "v1",
};

struct Probe;

fn text(msg: &Message) -> String {
    match msg.segments.first() {
        Some(Segment::Text(text)) => text.clone(),
        _ => String::new(),
    }
}

fn run(args: &[&str]) -> Result<String, String> {
    match args {
        ["loop"] => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        ["hog"] => {
            let mut kept: Vec<Vec<u8>> = Vec::new();
            loop {
                kept.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&kept);
            }
        }
        ["panic"] => panic!("asked to panic"),
        ["fail"] => Err("asked to fail".into()),
        ["fetch", url] => match host::http_request("GET", url, &[], &[]) {
            Ok(response) => Ok(format!(
                "status {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )),
            Err(reason) => Ok(format!("refused: {reason}")),
        },
        ["kv", "set", key, value] => host::kv_set(key, value, 60).map(|()| "stored".into()),
        ["kv", "get", key] => host::kv_get(key).map(|v| format!("value {v:?}")),
        ["history"] => host::history(10).map(|past| {
            let texts: Vec<String> = past.into_iter().map(|p| p.text).collect();
            format!("history {}", texts.join(" | "))
        }),
        ["files"] => Ok(match std::fs::read_dir("/") {
            Ok(_) => "files: readable".into(),
            Err(error) => format!("files: {error}"),
        }),
        ["socket", address] => Ok(match std::net::TcpStream::connect(address) {
            Ok(_) => "socket: connected".into(),
            Err(error) => format!("socket: {error}"),
        }),
        ["env"] => Ok(format!("env: {} variables", std::env::vars().count())),
        ["log"] => {
            host::log(host::LogLevel::Warn, "probe says hello");
            Ok("logged".into())
        }
        other => Ok(format!("unknown {other:?}")),
    }
}

impl Guest for Probe {
    fn manifest() -> Manifest {
        Manifest {
            name: "probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "misbehaves on request".into(),
            commands: vec!["/probe".into()],
            keywords: Vec::new(),
            patterns: Vec::new(),
            event_types: Vec::new(),
        }
    }

    fn handle(msg: Message) -> Result<Vec<Reply>, String> {
        let text = text(&msg);
        let args: Vec<&str> = text.split_whitespace().skip(1).collect();
        let answer = run(&args)?;
        Ok(vec![Reply {
            conversation: None,
            segments: vec![Segment::Text(format!("{VARIANT} {answer}"))],
        }])
    }
}

export!(Probe);
