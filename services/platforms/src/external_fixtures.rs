//! The payloads other projects recorded (`services/testkit/fixtures/external/<platform>/`):
//! each case of its `expected.json` with the contents of the file it names. Shared by the
//! decoder tests here and the end-to-end replays (`services/clawdbot/tests/common`, included
//! by path: both crates sit in `services/`, so the directory resolves the same from either).

/// One recorded payload and what it must become.
pub struct Fixture {
    pub file: String,
    /// The payload as recorded (JSON or XML text).
    pub body: String,
    /// Its `expected.json` entry.
    pub case: serde_json::Value,
}

/// Every fixture of `platform`, in `expected.json` order.
///
/// # Panics
/// A file is missing or `expected.json` is not a JSON list (a broken checkout).
pub fn load(platform: &str) -> Vec<Fixture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/fixtures/external")
        .join(platform);
    let expected: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
    )
    .expect("expected.json is a JSON list");
    expected
        .into_iter()
        .map(|case| {
            let file = case["file"]
                .as_str()
                .expect("each case names its file")
                .to_string();
            let body = std::fs::read_to_string(dir.join(&file)).expect("the named file");
            Fixture { file, body, case }
        })
        .collect()
}
