//! Skills loaded on the running cluster (`clawdbot skill load`): the worker watches the store's
//! registry and, when it changes, builds the new set and swaps the router in one step, between
//! messages (a message in flight finishes on the skill it started with). A loaded skill
//! replaces a built-in or configured one of the same name; `skill rollback` is just another
//! change of the registry.
//!
//! Every registered skill is checked again here, not only by the CLI that loaded it: its
//! manifest and component against the signed checksums, and its signer against
//! `worker.wasm.trusted_keys`. A skill that fails is left out, loudly; the others load.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clawdbot_config::WasmConfig;
use clawdbot_core::shared::SharedState;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::skill::Skill;
use clawdbot_core::telemetry;
use clawdbot_skills::package::{PackageManifest, RegisteredSkill};
use clawdbot_store::SkillRegistry;
use clawdbot_wasm::compiled::COMPILE_SUBCOMMAND;
use clawdbot_wasm::{Compiler, Runtime, RuntimeSettings, WasmSkill};

use crate::router::{Router, RouterHandle};

/// The version of every loaded skill this worker serves, by name (for its heartbeat, so that
/// `clawdbot skill list` shows what each worker runs).
#[derive(Debug, Clone, Default)]
pub struct ServedVersions(Arc<RwLock<BTreeMap<String, String>>>);

impl ServedVersions {
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, versions: BTreeMap<String, String>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = versions;
    }
}

/// What loading needs, kept across registry changes.
pub struct Loader {
    store: Arc<dyn SkillRegistry>,
    wasm: WasmConfig,
    kv: Arc<dyn SharedState>,
    /// Started with the first component skill: a worker with none reserves nothing.
    runtime: Option<Arc<Runtime>>,
    /// Component skills by (name, component SHA-256): re-applying an unchanged one (another
    /// skill changed, or a rollback to a version this worker ran) costs nothing.
    components: HashMap<(String, String), Arc<WasmSkill>>,
    served: ServedVersions,
}

/// The runtime settings `worker.wasm` describes (also what `skill load` compiles for).
pub fn runtime_settings(wasm: &WasmConfig) -> RuntimeSettings {
    RuntimeSettings {
        timeout: Duration::from_millis(wasm.timeout_ms),
        memory_bytes: usize::try_from(wasm.memory_mb << 20).unwrap_or(usize::MAX),
        max_instances: wasm.max_instances,
        cache_dir: (wasm.cache_dir.clone().map(std::path::PathBuf::from))
            .or_else(clawdbot_wasm::compiled::default_cache_dir),
        compiler: wasm.compile_in.clone().map(|program| Compiler {
            program,
            args: vec![COMPILE_SUBCOMMAND.to_string()],
        }),
    }
}

impl Loader {
    /// `served` is updated with each applied registry.
    pub fn new(
        store: Arc<dyn SkillRegistry>,
        wasm: WasmConfig,
        kv: Arc<dyn SharedState>,
        served: ServedVersions,
    ) -> Self {
        Self {
            store,
            wasm,
            kv,
            runtime: None,
            components: HashMap::new(),
            served,
        }
    }

    fn runtime(&mut self) -> Result<Arc<Runtime>, String> {
        if let Some(runtime) = &self.runtime {
            return Ok(runtime.clone());
        }
        let runtime = Runtime::new(runtime_settings(&self.wasm)).map_err(|e| e.to_string())?;
        self.runtime = Some(runtime.clone());
        Ok(runtime)
    }

    /// Builds one registered skill.
    async fn load(&mut self, name: &str, json: &str) -> Result<(Arc<dyn Skill>, String), String> {
        // Rows written before components existed are a bare remote manifest.
        let registered = match serde_json::from_str::<RegisteredSkill>(json) {
            Ok(registered) => registered,
            Err(_) => {
                let manifest: PackageManifest = serde_json::from_str(json)
                    .map_err(|e| format!("unreadable registry entry: {e}"))?;
                return remote(name, &manifest).await;
            }
        };
        let Some(sha) = registered.component_sha256.clone() else {
            let manifest = registered.verify(None, &[], true)?;
            return remote(name, &manifest).await;
        };
        let key = (name.to_string(), sha.clone());
        if let Some(skill) = self.components.get(&key) {
            let version = skill.manifest().version.clone();
            return Ok((skill.clone(), version));
        }
        let bytes = self
            .store
            .skill_component(&sha)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("component {sha} is not in the store"))?;
        let manifest = registered.verify(
            Some(&bytes),
            &self.wasm.trusted_keys,
            self.wasm.allows_unsigned(),
        )?;
        if self.wasm.unsigned_by_default && registered.signature.is_none() {
            tracing::info!(skill = %name, "running an unsigned skill: accepted because this deployment is one machine (no `cluster`); a cluster runs only signed ones");
        }
        let runtime = self.runtime()?;
        let skill = WasmSkill::load(
            runtime,
            name,
            &bytes,
            manifest.capabilities.clone(),
            Some(self.kv.clone()),
        )
        .await
        .map_err(|e| e.to_string())?;
        let skill = Arc::new(skill);
        self.components.insert(key, skill.clone());
        Ok((skill, manifest.version))
    }
}

async fn remote(
    name: &str,
    manifest: &PackageManifest,
) -> Result<(Arc<dyn Skill>, String), String> {
    let address = manifest.remote.clone().unwrap_or_default();
    let skill =
        clawdbot_skills::remote::RemoteSkill::connect(name, &address, &manifest.options()).await?;
    Ok((Arc::new(skill), manifest.version.clone()))
}

/// Watches the registry every `every` and swaps in a router over `base` plus the loaded
/// skills whenever it changes.
pub async fn watch_registry(
    mut loader: Loader,
    base: Vec<Arc<dyn Skill>>,
    router: RouterHandle,
    every: Duration,
    shutdown: Shutdown,
) {
    let mut seen = BTreeMap::new();
    loop {
        match loader.store.registered_skills().await {
            Ok(registered) if registered != seen => {
                let started = std::time::Instant::now();
                let mut skills = base.clone();
                let mut versions = BTreeMap::new();
                for (name, json) in &registered {
                    match loader.load(name, json).await {
                        Ok((skill, version)) => {
                            if skills.iter().any(|s| s.name() == name) {
                                tracing::info!(skill = %name, "a loaded skill replaces the built-in or configured one of its name");
                                skills.retain(|s| s.name() != name);
                            }
                            skills.push(skill);
                            versions.insert(name.clone(), version);
                        }
                        Err(reason) => {
                            telemetry::count_error("worker", "skill_load_refused");
                            tracing::error!(skill = %name, error_type = "skill_load_refused", %reason, "loaded skill not served");
                        }
                    }
                }
                match Router::new(skills) {
                    Ok(next) => {
                        router.replace(next);
                        loader.served.replace(versions);
                        tracing::info!(
                            loaded = registered.len(),
                            apply_ms = started.elapsed().as_millis() as u64,
                            "skill registry applied"
                        );
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "loaded skills rejected; keeping the skills in force")
                    }
                }
                seen = registered;
            }
            Ok(_) => {}
            Err(error) => {
                telemetry::count_error("worker", error.kind());
                tracing::warn!(error = %error, "cannot read the skill registry");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
