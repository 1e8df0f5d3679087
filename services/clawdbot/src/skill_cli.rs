//! `clawdbot skill list|enable|disable`: skills on a running cluster. Switches are written to
//! the store, where every worker looks for them twice a second.

use anyhow::bail;
use clawdbot_config::Config;

use crate::cli::SkillCommand;

/// Who the store records as having flipped a switch.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    format!("cli:{user}")
}

pub async fn run(command: &SkillCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        SkillCommand::Check(_) => return check(config).await,
        SkillCommand::Build { dir, output } => {
            let (manifest, checksum) = clawdbot_skills::package::build(dir, output)
                .map_err(|error| anyhow::anyhow!(error))?;
            println!(
                "built {} {} → {} (sha256 {checksum})",
                manifest.name,
                manifest.version,
                output.display()
            );
            return Ok(());
        }
        SkillCommand::List { remote: true, .. } => return list_index(config).await,
        _ => {}
    }

    let skills = clawdbot_skills::builtin(&config.core.skills)
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    let (store, _) = crate::app::connect_store(config).await?;
    match command {
        // Handled above, before connecting to the store it does not need.
        SkillCommand::Check(_) => {}
        SkillCommand::Load { path, .. } => {
            let manifest =
                clawdbot_skills::package::load(path).map_err(|error| anyhow::anyhow!(error))?;
            if skills.iter().any(|s| s.name() == manifest.name) {
                bail!(
                    "`{}` is a built-in skill's name; pick another in skill.yaml",
                    manifest.name
                );
            }
            store
                .register_skill(
                    &manifest.name,
                    &serde_json::to_string(&manifest)?,
                    &operator(),
                )
                .await?;
            crate::admin_cli::record(&*store, "skill.load", &manifest.name).await?;
            println!(
                "loaded {} {} from {}; every worker serves it within a second",
                manifest.name,
                manifest.version,
                path.display()
            );
        }
        SkillCommand::Build { .. } => {}
        SkillCommand::List { .. } => {
            let switches = store.skill_states().await?;
            let hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
            let activity = store.skill_activity(hour_ago).await?;
            let usage = |name: &str| match activity.iter().find(|a| a.skill == name) {
                Some(a) => (a.calls.to_string(), format!("{:.0} ms", a.p99_ms)),
                None => ("0".to_string(), "-".to_string()),
            };
            println!(
                "{:<14} {:<8} {:<8} {:<8} {:>10} {:>9}  DESCRIPTION",
                "NAME", "VERSION", "ENABLED", "SOURCE", "CALLS/1H", "P99"
            );
            let mut rows: Vec<(String, String, bool, &str, String)> = skills
                .iter()
                .map(|skill| {
                    let manifest = skill.manifest();
                    let configured = config
                        .core
                        .skills
                        .get(&manifest.name)
                        .and_then(|s| s.enabled);
                    let enabled = switches
                        .get(&manifest.name)
                        .copied()
                        .or(configured)
                        .unwrap_or(manifest.enabled_by_default);
                    (
                        manifest.name.clone(),
                        manifest.version.clone(),
                        enabled,
                        "builtin",
                        manifest.description.clone(),
                    )
                })
                .collect();
            for (name, settings) in config
                .core
                .skills
                .iter()
                .filter(|(_, s)| s.remote.is_some())
            {
                let enabled = switches
                    .get(name)
                    .copied()
                    .or(settings.enabled)
                    .unwrap_or(true);
                rows.push((
                    name.clone(),
                    "-".into(),
                    enabled,
                    "remote",
                    settings.remote.clone().unwrap_or_default(),
                ));
            }
            for (name, version, enabled, source, description) in rows {
                let (calls, p99) = usage(&name);
                let enabled = if enabled { "yes" } else { "no" };
                println!(
                    "{name:<14} {version:<8} {enabled:<8} {source:<8} {calls:>10} {p99:>9}  {description}"
                );
            }
        }
        SkillCommand::Enable { name, .. } | SkillCommand::Disable { name, .. } => {
            let known = skills.iter().any(|s| s.name() == name)
                || config
                    .core
                    .skills
                    .get(name)
                    .is_some_and(|s| s.remote.is_some());
            if !known {
                let names: Vec<&str> = skills.iter().map(|s| s.name()).collect();
                bail!("no skill named `{name}` (known: {})", names.join(", "));
            }
            let enabled = matches!(command, SkillCommand::Enable { .. });
            store.set_skill_state(name, enabled, &operator()).await?;
            let action = if enabled {
                "skill.enable"
            } else {
                "skill.disable"
            };
            crate::admin_cli::record(&*store, action, name).await?;
            println!(
                "{name} {} on every worker (within a second)",
                if enabled { "enabled" } else { "disabled" }
            );
        }
    }
    Ok(())
}

/// `skill check`: the config already passed validation (options, permissions, names) to get
/// here; this builds the router (patterns compile) and asks every remote skill to describe
/// itself. Fails when anything does not.
async fn check(config: &Config) -> anyhow::Result<()> {
    let mut skills = clawdbot_skills::builtin(&config.core.skills)
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
            Ok(version) => println!(
                "ok    {name:<16} remote {address} answers (version {version}, {} ms)",
                started.elapsed().as_millis()
            ),
            Err(reason) => {
                println!("FAIL  {name:<16} remote {address}: {reason}");
                failed.push(name.clone());
            }
        }
    }
    let remote = clawdbot_skills::connect_remote(&config.core.skills)
        .await
        .map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
    skills.extend(remote);
    if let Err(error) = clawdbot_worker::router::Router::new(skills) {
        bail!("{error}");
    }
    println!("ok    {builtin_count} built-in skills: options, triggers and permissions are valid");
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
    println!(
        "{:<16} {:<10} {:<50} DOWNLOAD",
        "NAME", "VERSION", "DESCRIPTION"
    );
    for entry in index {
        let field = |key: &str| {
            entry
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        };
        println!(
            "{:<16} {:<10} {:<50} {}",
            field("name"),
            field("version"),
            field("description"),
            field("download")
        );
    }
    Ok(())
}
