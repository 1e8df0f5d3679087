//! Compiled components kept on disk, so that a component is compiled once per machine rather
//! than once per worker and per start.
//!
//! Compiling is the expensive part of loading a skill: a Python component carries an
//! interpreter (tens of MiB of code), which Cranelift takes seconds and hundreds of MiB to
//! compile. Its compiled form, written to the cache directory, is mapped back in milliseconds
//! with the pages shared between the processes that use it. The compile itself runs in a child
//! process when a [`Compiler`] is configured (the worker's memory never sees it and its async
//! runtime keeps serving), else on a blocking thread.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::runtime::WasmError;

/// The clawdbot subcommand that compiles a component: `clawdbot compile-wasm …`.
pub const COMPILE_SUBCOMMAND: &str = "compile-wasm";

/// A program that compiles a component for this engine: invoked as
/// `program args… --memory-bytes N --max-instances N INPUT.wasm OUTPUT`, it writes the
/// compiled artifact to OUTPUT (see [`compile_file`]). The clawdbot binary is one
/// (`clawdbot compile-wasm`).
#[derive(Debug, Clone)]
pub struct Compiler {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Where compiled components live: `$CLAWDBOT_WASM_CACHE`, else `$XDG_CACHE_HOME/clawdbot/wasm`,
/// else `$HOME/.cache/clawdbot/wasm`; none when none of them is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("CLAWDBOT_WASM_CACHE").map(PathBuf::from).or_else(|| {
        var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .map(|cache| cache.join("clawdbot/wasm"))
    })
}

/// A fingerprint of what makes compiled code fit an engine (wasmtime's version, the target's
/// features, the settings that shape code): part of every artifact's file name.
pub fn engine_fingerprint(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The artifact of the component `sha256` for `engine` in `dir`.
pub fn artifact_path(dir: &Path, sha256: &str, engine: &Engine) -> PathBuf {
    dir.join(format!("{sha256}-{}.cwasm", engine_fingerprint(engine)))
}

fn io_error(what: &str, path: &Path, error: &std::io::Error) -> WasmError {
    WasmError::Engine(format!("{what} `{}`: {error}", path.display()))
}

/// Compiles `bytes` for `engine` into the artifact at `path`, through `compiler` when given.
/// Written to a temporary name and renamed, so no process ever maps a half-written artifact.
///
/// # Errors
/// Not a component (the compiler's own words), or the cache directory cannot be written.
pub async fn compile_to(
    engine: &Engine,
    compiler: Option<&Compiler>,
    limits: (usize, u32),
    bytes: &[u8],
    path: &Path,
) -> Result<(), WasmError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let temporary = path.with_extension(format!("{}.partial", rand_suffix()));
    match compiler {
        Some(compiler) => {
            let input = temporary.with_extension("wasm");
            tokio::fs::write(&input, bytes)
                .await
                .map_err(|e| io_error("cannot write", &input, &e))?;
            let output = tokio::process::Command::new(&compiler.program)
                .args(&compiler.args)
                .arg("--memory-bytes")
                .arg(limits.0.to_string())
                .arg("--max-instances")
                .arg(limits.1.to_string())
                .arg(&input)
                .arg(&temporary)
                .kill_on_drop(true)
                .output()
                .await;
            let _removed = tokio::fs::remove_file(&input).await;
            let output = output.map_err(|e| io_error("cannot run", &compiler.program, &e))?;
            if !output.status.success() {
                let _removed = tokio::fs::remove_file(&temporary).await;
                return Err(WasmError::NotASkill(
                    String::from_utf8_lossy(&output.stderr).trim().to_string(),
                ));
            }
        }
        None => {
            let engine = engine.clone();
            let bytes = bytes.to_vec();
            let compiled = tokio::task::spawn_blocking(move || engine.precompile_component(&bytes))
                .await
                .map_err(|e| WasmError::Engine(format!("the compile thread: {e}")))?
                .map_err(|e| WasmError::NotASkill(format!("{e:#}")))?;
            tokio::fs::write(&temporary, compiled)
                .await
                .map_err(|e| io_error("cannot write", &temporary, &e))?;
        }
    }
    tokio::fs::rename(&temporary, path)
        .await
        .map_err(|e| io_error("cannot write", path, &e))
}

/// Maps the artifact at `path` into `engine`.
///
/// # Errors
/// The artifact is unreadable, damaged or made for another engine.
pub fn map(engine: &Engine, path: &Path) -> Result<Component, WasmError> {
    // SAFETY: wasmtime runs deserialized code as native code without checking it, so the bytes
    // must be what wasmtime itself compiled. They are: the only writer of this directory is
    // `compile_to` (this binary's compiler, in this process or its own child), it is created
    // readable and writable by this user only, artifacts appear by rename when whole, and the
    // file name carries the engine's fingerprint, which wasmtime checks again on load. Anyone
    // who could replace them could replace this binary too. Artifacts are never rewritten in
    // place (a truncated mapped file is SIGBUS): written whole under another name, renamed in,
    // unlinked when bad.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.map_err(|e| WasmError::Engine(format!("{e:#}")))
}

/// Compiles `bytes` into the machine's cache for workers of `settings`, unless it is there
/// already: what `skill load` does on a one-machine deployment, so that its `up` maps the
/// component in milliseconds instead of compiling it. Returns whether it compiled now.
///
/// # Errors
/// Not a component, or the cache cannot be written.
pub async fn warm_cache(
    settings: &crate::RuntimeSettings,
    sha256: &str,
    bytes: &[u8],
) -> Result<bool, WasmError> {
    let Some(dir) = &settings.cache_dir else {
        return Ok(false);
    };
    let engine = crate::runtime::engine(settings.memory_bytes, settings.max_instances.max(1))?;
    let path = artifact_path(dir, sha256, &engine);
    if path.exists() {
        return Ok(false);
    }
    let limits = (settings.memory_bytes, settings.max_instances);
    compile_to(&engine, settings.compiler.as_ref(), limits, bytes, &path).await?;
    Ok(true)
}

/// Compiles the component file `input` into the artifact `output` with an engine of these
/// limits: what a [`Compiler`] child process runs.
///
/// # Errors
/// Unreadable input, not a component, or the output cannot be written.
pub fn compile_file(
    memory_bytes: usize,
    max_instances: u32,
    input: &Path,
    output: &Path,
) -> Result<(), WasmError> {
    let engine = crate::runtime::engine(memory_bytes, max_instances)?;
    let bytes = std::fs::read(input).map_err(|e| io_error("cannot read", input, &e))?;
    let compiled = engine
        .precompile_component(&bytes)
        .map_err(|e| WasmError::NotASkill(format!("{e:#}")))?;
    std::fs::write(output, compiled).map_err(|e| io_error("cannot write", output, &e))
}

fn create_private_dir(dir: &Path) -> Result<(), WasmError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("cannot create", dir, &e))
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}
