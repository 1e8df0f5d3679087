//! A component skill on its own, apart from the network path: how long loading takes
//! (compile, link, ask its manifest) and what one call costs — an instance from the pool, the
//! call, the replies converted back — measured over many calls on one core.

use std::path::Path;
use std::time::Instant;

use clawdbot_core::proto::{Conversation, ConversationKind, Envelope, Segment};
use clawdbot_core::skill::SkillContext;
use clawdbot_wasm::{Capabilities, Runtime, RuntimeSettings, WasmSkill};

/// Loads the component at `path` as skill `name` and times `rounds` calls of `text`.
pub async fn run(path: &Path, name: &str, text: &str, rounds: u32) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("`--wasm-bench {}`: {e}", path.display()))?;
    let runtime = Runtime::new(RuntimeSettings::default())?;
    let started = Instant::now();
    let skill = WasmSkill::load(runtime, name, &bytes, Capabilities::default(), None).await?;
    let load = started.elapsed();
    let msg = Envelope {
        id: "bench".into(),
        platform: "onebot".into(),
        conversation: Some(Conversation {
            kind: ConversationKind::Group.into(),
            id: "1".into(),
        }),
        segments: vec![Segment::text(text)],
        text: text.into(),
        ..Envelope::default()
    };
    let cx = SkillContext {
        pool: "skills".into(),
        usable: Vec::new(),
        history: None,
    };
    for _ in 0..1000 {
        skill.call(&msg, &cx).await?;
    }
    let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for _ in 0..rounds {
        let one = Instant::now();
        let replies = skill.call(&msg, &cx).await?;
        anyhow::ensure!(
            replies.len() == 1,
            "expected one reply, got {}",
            replies.len()
        );
        latencies.record(one.elapsed().as_nanos() as u64)?;
    }
    let per = started.elapsed() / rounds;
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "| wasm `{name}` ({} KiB) | load {} ms | {rounds} calls | {:.1} µs per call (p50 {:.1}, p99 {:.1}) |",
        bytes.len() / 1024,
        load.as_millis(),
        per.as_nanos() as f64 / 1000.0,
        us(latencies.value_at_quantile(0.5)),
        us(latencies.value_at_quantile(0.99)),
    );
    Ok(())
}
