//! The sandbox, against real components built from `examples/skills/echo-rust` and the
//! `probe` guest: what a skill may do works, what it may not is stopped, and nothing it does
//! takes the runtime down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clawdbot_core::proto::{Conversation, ConversationKind, Envelope, Segment};
use clawdbot_core::skill::{Skill, SkillContext};
use clawdbot_wasm::{Capabilities, Runtime, RuntimeSettings, WasmError, WasmSkill};

const TIMEOUT: Duration = Duration::from_millis(500);
const MEMORY: usize = 32 << 20;

fn runtime() -> Arc<Runtime> {
    Runtime::new(RuntimeSettings {
        timeout: TIMEOUT,
        memory_bytes: MEMORY,
        max_instances: 4,
        ..RuntimeSettings::default()
    })
    .expect("runtime")
}

fn message(text: &str) -> Envelope {
    Envelope {
        id: format!("e-{}", clawdbot_testkit::random_suffix()),
        platform: "onebot".into(),
        conversation: Some(Conversation {
            kind: ConversationKind::Group.into(),
            id: "555".into(),
        }),
        segments: vec![Segment::text(text)],
        text: text.into(),
        ..Envelope::default()
    }
}

fn cx() -> SkillContext {
    SkillContext {
        pool: "skills".into(),
        usable: Vec::new(),
        history: None,
    }
}

async fn probe(runtime: &Arc<Runtime>, capabilities: Capabilities) -> WasmSkill {
    let bytes = clawdbot_testkit::guest::build("services/wasm/tests/guests/probe", &[]);
    let kv: Arc<dyn clawdbot_core::shared::SharedState> =
        Arc::new(clawdbot_bus::memory::MemoryBus::new());
    WasmSkill::load(runtime.clone(), "probe", &bytes, capabilities, Some(kv))
        .await
        .expect("probe loads")
}

async fn answer(skill: &WasmSkill, text: &str) -> Result<String, WasmError> {
    let replies = skill.call(&message(text), &cx()).await?;
    Ok(replies[0].segments[0]
        .as_text()
        .map(str::to_string)
        .unwrap_or_default())
}

#[tokio::test]
async fn the_rust_echo_example_answers_and_keeps_other_segments() {
    let runtime = runtime();
    let bytes = clawdbot_testkit::guest::build("examples/skills/echo-rust", &[]);
    let echo = WasmSkill::load(runtime, "echo", &bytes, Capabilities::default(), None)
        .await
        .expect("loads");
    assert_eq!(echo.manifest().triggers.commands, vec!["/echo".to_string()]);
    assert_eq!(echo.manifest().version, "1.0.0");
    let mut msg = message("/echo 你好 world");
    msg.segments.push(Segment::mention("42"));
    let replies = echo.handle(&msg, &cx()).await.expect("handled");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].segments[0].as_text(), Some("你好 world"));
    assert_eq!(replies[0].segments[1], Segment::mention("42"));
    assert_eq!(replies[0].conversation, msg.conversation);
    assert_eq!(replies[0].in_reply_to, msg.id);
}

#[tokio::test]
async fn a_skill_that_loops_forever_is_stopped_at_its_deadline_and_the_next_call_works() {
    let runtime = runtime();
    let skill = probe(&runtime, Capabilities::default()).await;
    let started = Instant::now();
    let stopped = answer(&skill, "/probe loop").await;
    let took = started.elapsed();
    assert!(
        matches!(stopped, Err(WasmError::Deadline(_))),
        "{stopped:?}"
    );
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(400),
        "stopped after {took:?}"
    );
    // Through the skill interface the user gets an error reply.
    let replies = skill
        .handle(&message("/probe loop"), &cx())
        .await
        .expect("answered");
    let text = replies[0].segments[0]
        .as_text()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("could not answer") && text.contains("deadline"),
        "{text}"
    );
    assert_eq!(
        answer(&skill, "/probe env").await.expect("works"),
        "v1 env: 0 variables"
    );
}

#[tokio::test]
async fn a_skill_that_allocates_past_its_cap_is_stopped() {
    let runtime = runtime();
    let skill = probe(&runtime, Capabilities::default()).await;
    let stopped = answer(&skill, "/probe hog").await;
    assert!(matches!(stopped, Err(WasmError::Memory(32))), "{stopped:?}");
    assert!(
        answer(&skill, "/probe env").await.is_ok(),
        "the runtime carries on"
    );
}

#[tokio::test]
async fn a_panic_or_an_error_is_one_failed_call_not_a_dead_worker() {
    let runtime = runtime();
    let skill = probe(&runtime, Capabilities::default()).await;
    for _ in 0..3 {
        assert!(matches!(
            answer(&skill, "/probe panic").await,
            Err(WasmError::Trap(_))
        ));
    }
    let failed = answer(&skill, "/probe fail").await;
    assert!(
        matches!(&failed, Err(WasmError::Trap(reason)) if reason.contains("asked to fail")),
        "{failed:?}"
    );
    assert_eq!(
        answer(&skill, "/probe env").await.expect("works"),
        "v1 env: 0 variables"
    );
}

#[tokio::test]
async fn no_files_no_sockets_no_environment() {
    let runtime = runtime();
    let skill = probe(&runtime, Capabilities::default()).await;
    let files = answer(&skill, "/probe files").await.expect("answers");
    assert!(
        files.starts_with("v1 files: ") && !files.contains("readable"),
        "{files}"
    );
    let redis = answer(&skill, "/probe socket 127.0.0.1:6379")
        .await
        .expect("answers");
    assert!(
        redis.starts_with("v1 socket: ") && !redis.contains("connected"),
        "{redis}"
    );
    assert_eq!(
        answer(&skill, "/probe env").await.expect("answers"),
        "v1 env: 0 variables"
    );
}

/// A local HTTP server counting its requests.
async fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "pong"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hits)
}

#[tokio::test]
async fn http_reaches_the_hosts_the_manifest_lists_and_no_other() {
    let (allowed, allowed_hits) = counting_server().await;
    let (other, other_hits) = counting_server().await;
    let runtime = runtime();
    let skill = probe(
        &runtime,
        Capabilities {
            http_hosts: vec![format!("127.0.0.1:{allowed}")],
            ..Capabilities::default()
        },
    )
    .await;
    let ok = answer(
        &skill,
        &format!("/probe fetch http://127.0.0.1:{allowed}/x"),
    )
    .await;
    assert_eq!(ok.expect("answers"), "v1 status 200 pong");
    let refused = answer(&skill, &format!("/probe fetch http://127.0.0.1:{other}/x"))
        .await
        .expect("answers");
    assert!(
        refused.contains("refused") && refused.contains("not among the hosts"),
        "{refused}"
    );
    let metadata = answer(&skill, "/probe fetch http://169.254.169.254/latest")
        .await
        .expect("answers");
    assert!(metadata.contains("refused"), "{metadata}");
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "nothing reached the unlisted host"
    );
}

#[tokio::test]
async fn the_key_value_store_needs_its_capability() {
    let runtime = runtime();
    let with = probe(
        &runtime,
        Capabilities {
            kv: true,
            ..Capabilities::default()
        },
    )
    .await;
    assert_eq!(
        answer(&with, "/probe kv set greeting hi")
            .await
            .expect("ok"),
        "v1 stored"
    );
    assert_eq!(
        answer(&with, "/probe kv get greeting").await.expect("ok"),
        "v1 value Some(\"hi\")"
    );
    let without = probe(&runtime, Capabilities::default()).await;
    let refused = answer(&without, "/probe kv get greeting").await;
    assert!(
        matches!(&refused, Err(WasmError::Trap(reason)) if reason.contains("`kv` capability")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_component_is_refused_when_it_is_not_the_skill_it_claims() {
    let runtime = runtime();
    let bytes = clawdbot_testkit::guest::build("examples/skills/echo-rust", &[]);
    let wrong = WasmSkill::load(
        runtime.clone(),
        "weather",
        &bytes,
        Capabilities::default(),
        None,
    )
    .await;
    assert!(
        matches!(&wrong, Err(WasmError::NotASkill(r)) if r.contains("calls itself `echo`")),
        "{:?}",
        wrong.err()
    );
    let garbage =
        WasmSkill::load(runtime, "echo", b"not wasm", Capabilities::default(), None).await;
    assert!(matches!(garbage, Err(WasmError::NotASkill(_))));
}

/// A component is compiled once into the cache directory and mapped from it by the next
/// runtime (another worker, a restart); a damaged artifact is compiled again, not trusted.
#[tokio::test]
async fn a_compiled_component_is_kept_on_disk_and_a_damaged_one_is_compiled_again() {
    let cache = std::env::temp_dir().join(format!(
        "clawdbot-wasm-cache-{}",
        clawdbot_testkit::random_suffix()
    ));
    let with_cache = || {
        Runtime::new(RuntimeSettings {
            timeout: TIMEOUT,
            memory_bytes: MEMORY,
            max_instances: 4,
            cache_dir: Some(cache.clone()),
            compiler: None,
        })
        .expect("runtime")
    };
    let bytes = clawdbot_testkit::guest::build("examples/skills/echo-rust", &[]);
    let load = |runtime| WasmSkill::load(runtime, "echo", &bytes, Capabilities::default(), None);
    let first = load(with_cache()).await.expect("compiled and kept");
    let artifacts: Vec<_> = std::fs::read_dir(&cache)
        .expect("the cache directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let kept = std::fs::metadata(&artifacts[0])
        .expect("artifact")
        .modified()
        .expect("mtime");

    let mapped = load(with_cache()).await.expect("mapped from the cache");
    assert_eq!(
        answer(&mapped, "/echo mapped").await.expect("answers"),
        "mapped"
    );
    let unchanged = std::fs::metadata(&artifacts[0])
        .expect("artifact")
        .modified()
        .expect("mtime");
    assert_eq!(kept, unchanged, "the second runtime did not compile again");

    // Replaced the way the cache writes (a new file renamed over it): truncating a file that
    // runtimes have mapped would pull the pages from under them.
    let damaged = cache.join("damaged.partial");
    std::fs::write(&damaged, b"not a compiled component").expect("damage it");
    std::fs::rename(&damaged, &artifacts[0]).expect("damage it");
    let recompiled = load(with_cache()).await.expect("compiled again in memory");
    assert_eq!(
        answer(&recompiled, "/echo again").await.expect("answers"),
        "again"
    );
    assert_eq!(
        answer(&first, "/echo first").await.expect("answers"),
        "first"
    );
    assert!(
        !artifacts[0].exists(),
        "the damaged artifact is removed, to be compiled anew"
    );
    let _removed = std::fs::remove_dir_all(&cache);
}
