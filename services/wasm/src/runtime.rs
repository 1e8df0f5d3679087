//! The wasmtime engine a worker runs every component skill on: compiled components cached by
//! checksum, instances from a pool, a deadline and a memory cap per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::clawdbot::skill::types as wit;
use crate::bindings::{Skill as SkillWorld, SkillPre};
use crate::compiled::{self, Compiler};
use crate::host::CallState;

/// The epoch clock's resolution: deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits every call runs under.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// How long one call may run (guest code and host calls together).
    pub timeout: Duration,
    /// The most linear memory one instance may have.
    pub memory_bytes: usize,
    /// Instances that may run at once on this worker (the pool's size); more calls wait.
    pub max_instances: u32,
    /// Where compiled components are kept for every process on the machine (none: compiled in
    /// memory at every start).
    pub cache_dir: Option<std::path::PathBuf>,
    /// The child process that compiles (none: a blocking thread of this process).
    pub compiler: Option<Compiler>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            max_instances: 32,
            cache_dir: None,
            compiler: None,
        }
    }
}

/// Why a component could not be loaded or a call did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("cannot start the WebAssembly runtime: {0}")]
    Engine(String),
    #[error("not a skill component: {0}")]
    NotASkill(String),
    #[error("stopped after {0:?}: the skill ran past its deadline")]
    Deadline(Duration),
    #[error("stopped: the skill needed more than its {0} MiB of memory")]
    Memory(usize),
    #[error("the skill trapped: {0}")]
    Trap(String),
}

impl WasmError {
    /// The error kind, for the `error_type` label.
    pub fn kind(&self) -> &'static str {
        match self {
            WasmError::Engine(_) => "wasm_engine",
            WasmError::NotASkill(_) => "wasm_not_a_skill",
            WasmError::Deadline(_) => "wasm_deadline",
            WasmError::Memory(_) => "wasm_memory",
            WasmError::Trap(_) => "wasm_trap",
        }
    }
}

/// The engine of these limits. Compiled code fits only an engine of the same settings, so the
/// compiler child process builds its engine here too.
///
/// # Errors
/// The engine cannot reserve its instance pool.
pub(crate) fn engine(memory_bytes: usize, max_instances: u32) -> Result<Engine, WasmError> {
    let n = max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 4)
        .total_tables(n * 8)
        .total_stacks(n)
        .max_memory_size(memory_bytes);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| WasmError::Engine(format!("{e:#}")))
}

/// One per worker process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    /// Compiled and pre-linked components by SHA-256, so a reload or a rollback to a version
    /// seen before costs nothing.
    prepared: Mutex<HashMap<String, SkillPre<CallState>>>,
    settings: RuntimeSettings,
    slots: Semaphore,
}

impl Runtime {
    /// Starts the engine and its epoch clock.
    ///
    /// # Errors
    /// The engine cannot reserve its instance pool.
    pub fn new(settings: RuntimeSettings) -> Result<Arc<Self>, WasmError> {
        let engine_error = |e: wasmtime::Error| WasmError::Engine(format!("{e:#}"));
        let n = settings.max_instances.max(1);
        let engine = engine(settings.memory_bytes, n)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        SkillWorld::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(engine_error)?;
        let clock = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            // Ends with the engine (it holds only a weak reference).
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    match clock.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| WasmError::Engine(format!("epoch clock: {e}")))?;
        Ok(Arc::new(Self {
            engine,
            linker,
            prepared: Mutex::new(HashMap::new()),
            slots: Semaphore::new(n as usize),
            settings,
        }))
    }

    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    /// Compiles `bytes` (or takes it from the caches by `sha256`: this process's, then the
    /// machine's compiled components) and links it against the host; fails when it is not a
    /// component of the skill world. The compile never runs on the async runtime's threads.
    ///
    /// # Errors
    /// Not WebAssembly, not a component, or imports the host does not offer.
    pub async fn prepare(
        &self,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<SkillPre<CallState>, WasmError> {
        if let Some(pre) = self.prepared().get(sha256) {
            return Ok(pre.clone());
        }
        let component = self.component(sha256, bytes).await?;
        let not_a_skill = |e: wasmtime::Error| WasmError::NotASkill(format!("{e:#}"));
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(not_a_skill)?;
        let pre = SkillPre::new(instance_pre).map_err(not_a_skill)?;
        self.prepared().insert(sha256.to_string(), pre.clone());
        Ok(pre)
    }

    fn prepared(&self) -> std::sync::MutexGuard<'_, HashMap<String, SkillPre<CallState>>> {
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The compiled component: mapped from the machine's cache (compiled into it first when
    /// missing), or compiled on a blocking thread where there is no cache.
    async fn component(&self, sha256: &str, bytes: &[u8]) -> Result<Component, WasmError> {
        let in_memory = || async {
            let engine = self.engine.clone();
            let bytes = bytes.to_vec();
            tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
                .await
                .map_err(|e| WasmError::Engine(format!("the compile thread: {e}")))?
                .map_err(|e| WasmError::NotASkill(format!("{e:#}")))
        };
        let Some(dir) = &self.settings.cache_dir else {
            return in_memory().await;
        };
        let path = compiled::artifact_path(dir, sha256, &self.engine);
        if !path.exists() {
            let limits = (self.settings.memory_bytes, self.settings.max_instances);
            let compiler = self.settings.compiler.as_ref();
            if let Err(error) =
                compiled::compile_to(&self.engine, compiler, limits, bytes, &path).await
            {
                if matches!(error, WasmError::NotASkill(_)) {
                    return Err(error);
                }
                tracing::warn!(cache = %dir.display(), %error, "cannot keep the compiled component; compiling in memory");
                return in_memory().await;
            }
        }
        let engine = self.engine.clone();
        let artifact = path.clone();
        let mapped = tokio::task::spawn_blocking(move || compiled::map(&engine, &artifact))
            .await
            .map_err(|e| WasmError::Engine(format!("the mapping thread: {e}")))?;
        match mapped {
            Ok(component) => Ok(component),
            Err(error) => {
                // Unlinked, not rewritten: processes that mapped it keep their pages, and the
                // next start compiles it anew.
                let _removed = std::fs::remove_file(&path);
                tracing::warn!(artifact = %path.display(), %error, "a compiled component in the cache does not load; removed it and compiling in memory");
                in_memory().await
            }
        }
    }

    fn store(&self, state: CallState) -> Store<CallState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        // One more tick than the timeout: the current tick may be about to end.
        let ticks = self.settings.timeout.as_millis() / EPOCH_TICK.as_millis() + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store
    }

    fn classify(&self, error: &wasmtime::Error) -> WasmError {
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => WasmError::Deadline(self.settings.timeout),
            // What `StoreLimits` says when `trap_on_grow_failure` turns a refused growth into a
            // trap (wasmtime has no typed error for it).
            _ if format!("{error:#}").contains("forcing trap when growing memory") => {
                WasmError::Memory(self.settings.memory_bytes >> 20)
            }
            _ => WasmError::Trap(format!("{error:#}")),
        }
    }

    /// Runs one call of `f` on a fresh instance of `pre`, within the deadline and the
    /// memory cap. The instance is dropped afterwards (its slot goes back to the pool).
    async fn run<T>(
        &self,
        pre: &SkillPre<CallState>,
        state: CallState,
        f: impl AsyncFnOnce(&SkillWorld, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Result<T, WasmError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| WasmError::Engine("runtime closed".into()))?;
        let mut store = self.store(state);
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            f(&instance, &mut store).await
        };
        // The epoch deadline stops guest code; this also bounds time spent in host calls.
        match tokio::time::timeout(self.settings.timeout + EPOCH_TICK * 4, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(&error)),
            Err(_) => Err(WasmError::Deadline(self.settings.timeout)),
        }
    }

    /// Asks the component for its manifest.
    ///
    /// # Errors
    /// It traps or runs past the deadline.
    pub async fn manifest(
        &self,
        pre: &SkillPre<CallState>,
        state: CallState,
    ) -> Result<wit::Manifest, WasmError> {
        self.run(pre, state, async |skill, store| {
            skill.call_manifest(store).await
        })
        .await
    }

    /// Hands `message` to the component; the inner `Err` is the skill's own error.
    ///
    /// # Errors
    /// It traps, runs past the deadline or past its memory.
    pub async fn handle(
        &self,
        pre: &SkillPre<CallState>,
        state: CallState,
        message: &wit::Message,
    ) -> Result<Result<Vec<wit::Reply>, String>, WasmError> {
        self.run(pre, state, async |skill, store| {
            skill.call_handle(store, message).await
        })
        .await
    }
}
