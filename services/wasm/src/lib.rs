//! clawdbot-wasm: skills compiled to WebAssembly components (`proto/wit/skill.wit`), run in
//! the worker beside built-in and remote gRPC skills.
//!
//! A component runs sandboxed: WASI with no files, sockets or environment; a deadline per
//! call (epoch interruption: a skill that loops forever is stopped); a memory cap (a skill that
//! allocates past it traps); and only the host functions its manifest's capabilities allow
//! (HTTP to listed hosts, its own key-value store, the conversation's history, logging). A
//! trap ends that call only: the user gets an apology, the worker carries on.
//!
//! Speed: components are compiled once per machine (compiled.rs: kept on disk, compiled in a
//! child process, mapped in by every worker) and cached by checksum, instances come from
//! wasmtime's pooling allocator through a pre-linked `SkillPre`, so a call costs an
//! instantiation from the pool and the call itself.

mod bindings;
mod capabilities;
pub mod compiled;
mod convert;
mod host;
mod runtime;
mod skill;

pub use capabilities::Capabilities;
pub use compiled::Compiler;
pub use runtime::{Runtime, RuntimeSettings, WasmError};
pub use skill::WasmSkill;
