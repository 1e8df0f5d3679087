//! `clawdbot skill list|enable|disable`: skills on a running cluster. Switches are written to
//! the store, where every worker looks for them twice a second.

use std::path::Path;
use std::sync::Arc;

use anyhow::bail;
use clawdbot_config::Config;
use ed25519_dalek::SigningKey;

use crate::cli::{SigningArg, SkillCommand};

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| anyhow::anyhow!("cannot create `{}`: {error}", path.display()))?;
    writeln!(file, "{text}")?;
    Ok(())
}

/// Who the store records as having flipped a switch.
fn operator() -> String {
    format!("cli:{}", crate::admin_cli::os_user())
}

/// The signing key from `--key FILE`, else `CLAWDBOT_SKILL_SIGNING_KEY`, else none.
fn signing_key(signing: &SigningArg) -> anyhow::Result<Option<SigningKey>> {
    use clawdbot_skills::package::sign;
    if let Some(path) = &signing.key {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("`--key {}`: {error}", path.display()))?;
        let origin = format!("`--key {}`", path.display());
        return Ok(Some(
            sign::signing_key(&text, &origin).map_err(anyhow::Error::msg)?,
        ));
    }
    match std::env::var(sign::SIGNING_KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(
            sign::signing_key(&text, sign::SIGNING_KEY_ENV).map_err(anyhow::Error::msg)?,
        )),
        _ => Ok(None),
    }
}

/// What `skill build` / `skill load` was pointed at.
enum Source<'a> {
    /// A project directory with its `skill.yaml`.
    Project(&'a Path),
    /// A Python file with a `BaseSkill` subclass and no `skill.yaml` beside it.
    PythonFile(&'a Path),
    /// A built `.skill` archive, or a remote skill's bare `skill.yaml`.
    Built,
}

/// A directory is a project; so is the directory of a `.py` / `.js` source with a
/// `skill.yaml` beside it; a lone `.py` is a single-file skill.
fn source_of(path: &Path) -> Source<'_> {
    if path.is_dir() {
        return Source::Project(path);
    }
    let Some(extension) = path.extension().filter(|e| *e == "py" || *e == "js") else {
        return Source::Built;
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if extension == "py" && !dir.join(clawdbot_skills::package::MANIFEST_FILE).is_file() {
        Source::PythonFile(path)
    } else {
        Source::Project(dir)
    }
}

fn build(path: &Path, output: &Path, key: Option<&SigningKey>) -> anyhow::Result<()> {
    use clawdbot_skills::package;
    let started = std::time::Instant::now();
    let built = match source_of(path) {
        Source::PythonFile(file) => package::build_python_file(file, output, key),
        Source::Project(dir) => package::build(dir, output, key),
        Source::Built => Err(format!(
            "`{}` is neither a skill project directory nor a `.py` file",
            path.display()
        )),
    };
    let (manifest, checksum) = built.map_err(anyhow::Error::msg)?;
    crate::cli_out::say!(
        "built {} {} → {} in {:.1} s (sha256 {checksum}, {})",
        manifest.name,
        manifest.version,
        output.display(),
        started.elapsed().as_secs_f64(),
        if key.is_some() { "signed" } else { "unsigned" }
    );
    Ok(())
}

/// `skill load PATH`: a project (a directory, or its `.py` / `.js` source) or a single Python
/// file is built (and signed with the key, if any) first.
async fn load(
    path: &Path,
    signing: &SigningArg,
    config: &Config,
    store: &dyn clawdbot_store::Store,
    builtin: &[Arc<dyn clawdbot_core::skill::Skill>],
) -> anyhow::Result<()> {
    use clawdbot_skills::package;
    let built;
    let archive = if matches!(source_of(path), Source::Built) {
        path
    } else {
        built = std::env::temp_dir().join(format!("clawdbot-load-{}.skill", std::process::id()));
        build(path, &built, signing_key(signing)?.as_ref())?;
        built.as_path()
    };
    let loaded = package::load(archive).map_err(anyhow::Error::msg);
    if archive != path {
        let _removed = std::fs::remove_file(archive);
    }
    let loaded = loaded?;
    let name = &loaded.manifest.name;
    let wasm = &config.core.worker.wasm;
    let mut compiled = None;
    if let Some(component) = &loaded.component {
        // Refused here as the workers would refuse it, so the operator hears why at once.
        loaded
            .registered
            .verify(Some(component), &wasm.trusted_keys, wasm.allows_unsigned())
            .map_err(|reason| anyhow::anyhow!("`{}`: {reason}", path.display()))?;
        if wasm.unsigned_by_default && !signed_by_trusted_key(&loaded.registered, wasm) {
            eprintln!(
                "{name} is not signed by a trusted key: accepted because this deployment is one machine (no `cluster` in its config); a cluster runs only skills signed by a key in `worker.wasm.trusted_keys`"
            );
        }
        let sha = loaded
            .registered
            .component_sha256
            .clone()
            .unwrap_or_default();
        store.put_skill_component(&sha, component).await?;
        compiled = Some(compile_for_this_machine(config, &sha, component).await?);
    }
    store
        .register_skill(
            name,
            &serde_json::to_string(&loaded.registered)?,
            &operator(),
        )
        .await?;
    crate::admin_cli::record(
        store,
        "skill.load",
        &format!("{name} {}", loaded.manifest.version),
    )
    .await?;
    let replaces = if builtin.iter().any(|s| s.name() == name) {
        format!(", in place of the built-in `{name}`")
    } else {
        String::new()
    };
    let when = match compiled {
        // Measured: the registry is polled twice a second, a compiled component maps in
        // milliseconds (tests/wasm_skills.rs).
        None | Some(Compiled::Here(_)) => "every worker serves it within a second".to_string(),
        Some(Compiled::ByEachMachine) => "each worker machine compiles the component once, in a child process (a Python one: tens of seconds), then serves it within a second".to_string(),
    };
    let compile_note = match compiled {
        Some(Compiled::Here(seconds)) if seconds > 0.0 => {
            format!(" (compiled for this machine in {seconds:.1} s)")
        }
        _ => String::new(),
    };
    crate::cli_out::say!(
        "loaded {name} {} from {}{compile_note}; {when}{replaces}",
        loaded.manifest.version,
        path.display()
    );
    Ok(())
}

/// Where a component's compiled form comes from.
enum Compiled {
    /// Compiled here into the machine's cache, in this many seconds (0: it was there).
    Here(f64),
    /// Each worker machine of a cluster compiles it itself.
    ByEachMachine,
}

/// On one machine, compiles the component into the cache its `up` maps components from, so
/// that it serves the skill within a second; a cluster's workers compile on their own machines.
async fn compile_for_this_machine(
    config: &Config,
    sha: &str,
    component: &[u8],
) -> anyhow::Result<Compiled> {
    if config.core.cluster.is_some() {
        return Ok(Compiled::ByEachMachine);
    }
    let settings = clawdbot_worker::loaded_skills::runtime_settings(&config.core.worker.wasm);
    let started = std::time::Instant::now();
    let compiled_now = clawdbot_wasm::compiled::warm_cache(&settings, sha, component)
        .await
        .map_err(|error| anyhow::anyhow!("compiling the component: {error}"))?;
    Ok(Compiled::Here(if compiled_now {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    }))
}

/// Whether the registered skill carries a signature by one of the trusted keys.
fn signed_by_trusted_key(
    registered: &clawdbot_skills::package::RegisteredSkill,
    wasm: &clawdbot_config::WasmConfig,
) -> bool {
    registered.verify(None, &wasm.trusted_keys, false).is_ok()
}

pub async fn run(command: &SkillCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        SkillCommand::Check(_) => return check(config).await,
        SkillCommand::Build {
            dir,
            output,
            signing,
        } => return build(dir, output, signing_key(signing)?.as_ref()),
        SkillCommand::Keygen { output } => return keygen(output),
        SkillCommand::List { remote: true, .. } => return list_index(config).await,
        _ => {}
    }

    let skills = clawdbot_skills::builtin(&clawdbot_config::skill_options(&config.core.skills))
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    let (store, _) = crate::backends::connect_store(config).await?;
    match command {
        // Handled above, before connecting to the store they do not need.
        SkillCommand::Check(_) | SkillCommand::Build { .. } | SkillCommand::Keygen { .. } => {}
        SkillCommand::Load { path, signing, .. } => {
            load(path, signing, config, &*store, &skills).await?;
        }
        SkillCommand::Rollback { name, .. } => rollback(name, &*store).await?,
        SkillCommand::List { .. } => {
            list(config, &*store, &skills).await?;
            print_served(config).await?;
        }
        SkillCommand::Enable { name, .. } => switch(name, true, config, &*store, &skills).await?,
        SkillCommand::Disable { name, .. } => {
            switch(name, false, config, &*store, &skills).await?;
        }
    }
    Ok(())
}

/// `skill keygen`: a new signing key pair; the private half to a file only its owner reads.
fn keygen(output: &Path) -> anyhow::Result<()> {
    let (private, public) = clawdbot_skills::package::sign::keygen();
    write_private(output, &private)?;
    eprintln!(
        "private key written to {}; trust the public key on the workers (`worker.wasm.trusted_keys`):",
        output.display()
    );
    crate::cli_out::say!("{public}");
    Ok(())
}

/// `skill rollback NAME`: back to the version loaded before the current one.
async fn rollback(name: &str, store: &dyn clawdbot_store::Store) -> anyhow::Result<()> {
    let Some(json) = store.rollback_skill(name).await? else {
        bail!("`{name}` has no earlier loaded version to return to");
    };
    let version = serde_json::from_str::<clawdbot_skills::package::RegisteredSkill>(&json)
        .ok()
        .and_then(|r| r.verify(None, &[], true).ok())
        .map_or_else(|| "?".to_string(), |m| m.version);
    crate::admin_cli::record(store, "skill.rollback", &format!("{name} {version}")).await?;
    crate::cli_out::say!("{name} back to {version} on every worker (within a second)");
    Ok(())
}

/// `skill enable|disable NAME`: the switch every worker reads; refused for a name no worker
/// could serve.
async fn switch(
    name: &str,
    enabled: bool,
    config: &Config,
    store: &dyn clawdbot_store::Store,
    builtin: &[Arc<dyn clawdbot_core::skill::Skill>],
) -> anyhow::Result<()> {
    let known = builtin.iter().any(|s| s.name() == name)
        || config
            .core
            .skills
            .get(name)
            .is_some_and(|s| s.remote.is_some())
        || store.registered_skills().await?.contains_key(name);
    if !known {
        let names: Vec<&str> = builtin.iter().map(|s| s.name()).collect();
        bail!("no skill named `{name}` (known: {})", names.join(", "));
    }
    store.set_skill_state(name, enabled, &operator()).await?;
    let action = if enabled {
        "skill.enable"
    } else {
        "skill.disable"
    };
    crate::admin_cli::record(store, action, name).await?;
    crate::cli_out::say!(
        "{name} {} on every worker (within a second)",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// One row of `skill list`.
struct Row {
    name: String,
    version: String,
    enabled: bool,
    source: &'static str,
    description: String,
}

/// `skill list`: every skill a worker could serve (built-in, remote, loaded — a loaded one in
/// place of the built-in of its name), its switch and its last hour.
async fn list(
    config: &Config,
    store: &dyn clawdbot_store::Store,
    builtin: &[Arc<dyn clawdbot_core::skill::Skill>],
) -> anyhow::Result<()> {
    let rows = rows(config, store, builtin).await?;
    let hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let activity = store.skill_activity(hour_ago).await?;
    crate::cli_out::say!(
        "{:<14} {:<8} {:<8} {:<8} {:>10} {:>9}  DESCRIPTION",
        "NAME",
        "VERSION",
        "ENABLED",
        "SOURCE",
        "CALLS/1H",
        "P99"
    );
    for row in rows {
        let (calls, p99) = match activity.iter().find(|a| a.skill == row.name) {
            Some(a) => (a.calls.to_string(), format!("{:.0} ms", a.p99_ms)),
            None => ("0".to_string(), "-".to_string()),
        };
        let enabled = if row.enabled { "yes" } else { "no" };
        crate::cli_out::say!(
            "{:<14} {:<8} {enabled:<8} {:<8} {calls:>10} {p99:>9}  {}",
            row.name,
            row.version,
            row.source,
            row.description
        );
    }
    Ok(())
}

/// The rows of `skill list`, in order: built-in, remote, then loaded (a loaded skill replaces
/// the built-in of its name).
async fn rows(
    config: &Config,
    store: &dyn clawdbot_store::Store,
    builtin: &[Arc<dyn clawdbot_core::skill::Skill>],
) -> anyhow::Result<Vec<Row>> {
    let switches = store.skill_states().await?;
    let mut rows: Vec<Row> = builtin
        .iter()
        .map(|skill| {
            let manifest = skill.manifest();
            let configured = config
                .core
                .skills
                .get(&manifest.name)
                .and_then(|s| s.enabled);
            Row {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                enabled: switches
                    .get(&manifest.name)
                    .copied()
                    .or(configured)
                    .unwrap_or(manifest.enabled_by_default),
                source: "builtin",
                description: manifest.description.clone(),
            }
        })
        .collect();
    for (name, settings) in config.core.skills.iter() {
        let Some(remote) = &settings.remote else {
            continue;
        };
        rows.push(Row {
            name: name.clone(),
            version: "-".into(),
            enabled: switches
                .get(name)
                .copied()
                .or(settings.enabled)
                .unwrap_or(true),
            source: "remote",
            description: remote.clone(),
        });
    }
    for (name, json) in store.registered_skills().await? {
        let registered =
            serde_json::from_str::<clawdbot_skills::package::RegisteredSkill>(&json).ok();
        let manifest = registered
            .as_ref()
            .and_then(|r| r.verify(None, &[], true).ok());
        let source = match &registered {
            Some(r) if r.component_sha256.is_some() => "wasm",
            _ => "loaded",
        };
        rows.retain(|row| row.name != name);
        rows.push(Row {
            version: manifest.as_ref().map_or("?".into(), |m| m.version.clone()),
            enabled: switches.get(&name).copied().unwrap_or(true),
            source,
            description: manifest.map(|m| m.description).unwrap_or_default(),
            name,
        });
    }
    Ok(rows)
}

/// Which loaded skill versions each live worker serves (from their heartbeats).
async fn print_served(config: &Config) -> anyhow::Result<()> {
    let Some(beats) = crate::status::heartbeats(config).await? else {
        return Ok(());
    };
    let workers: Vec<_> = beats
        .iter()
        .filter(|b| matches!(b["role"].as_str(), Some("worker" | "up")))
        .collect();
    if workers.is_empty() {
        return Ok(());
    }
    crate::cli_out::say!();
    crate::cli_out::say!("{:<28} LOADED SKILLS SERVED", "WORKER");
    for beat in workers {
        let served: Vec<String> = beat["skills"]
            .as_object()
            .map(|skills| {
                skills
                    .iter()
                    .map(|(name, version)| format!("{name} {}", version.as_str().unwrap_or("?")))
                    .collect()
            })
            .unwrap_or_default();
        crate::cli_out::say!(
            "{:<28} {}",
            beat["instance"].as_str().unwrap_or("-"),
            if served.is_empty() {
                "-".to_string()
            } else {
                served.join(", ")
            }
        );
    }
    Ok(())
}

/// `skill check`: the config already passed validation (options, permissions, names) to get
/// here; this builds the router (patterns compile) and asks every remote skill to describe
/// itself. Fails when anything does not.
async fn check(config: &Config) -> anyhow::Result<()> {
    let mut skills = clawdbot_skills::builtin(&clawdbot_config::skill_options(&config.core.skills))
        .map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
    let builtin_count = skills.len();
    let mut failed = Vec::new();
    for (name, settings) in config.core.skills.iter() {
        let Some(address) = &settings.remote else {
            continue;
        };
        let started = std::time::Instant::now();
        let token = settings.options.get("token").and_then(|t| t.as_str());
        match clawdbot_skills::remote::RemoteSkill::probe(address, token).await {
            Ok(version) => crate::cli_out::say!(
                "ok    {name:<16} remote {address} answers (version {version}, {} ms)",
                started.elapsed().as_millis()
            ),
            Err(reason) => {
                crate::cli_out::say!("FAIL  {name:<16} remote {address}: {reason}");
                failed.push(name.clone());
            }
        }
    }
    let remote =
        clawdbot_skills::connect_remote(&clawdbot_config::remote_skills(&config.core.skills))
            .await
            .map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
    skills.extend(remote);
    if let Err(error) = clawdbot_worker::router::Router::new(skills) {
        bail!("{error}");
    }
    crate::cli_out::say!(
        "ok    {builtin_count} built-in skills: options, triggers and permissions are valid"
    );
    if !failed.is_empty() {
        bail!("remote skills not answering: {}", failed.join(", "));
    }
    Ok(())
}

/// `skill list --remote`: the skills the configured index offers.
async fn list_index(config: &Config) -> anyhow::Result<()> {
    let Some(url) = &config.core.skill_index else {
        bail!("no `skill_index` URL in the config");
    };
    let client = clawdbot_core::tls::http_client_builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let index: Vec<serde_json::Value> = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| anyhow::anyhow!("cannot fetch the skill index `{url}`: {error}"))?
        .json()
        .await
        .map_err(|error| anyhow::anyhow!("`{url}` is not a skill index (a JSON list): {error}"))?;
    crate::cli_out::say!(
        "{:<16} {:<10} {:<50} DOWNLOAD",
        "NAME",
        "VERSION",
        "DESCRIPTION"
    );
    for entry in index {
        let field = |key: &str| {
            entry
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        };
        crate::cli_out::say!(
            "{:<16} {:<10} {:<50} {}",
            field("name"),
            field("version"),
            field("description"),
            field("download")
        );
    }
    Ok(())
}
