//! Assembles the worker role from the config: the consumer of its pool's group with the skills
//! that pool runs (built-in, remote, and — in the default pool — those loaded on the running
//! cluster), permissions and their live sources (skill switches, config reloads), the janitor,
//! and the history writer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clawdbot_bus::Bus;
use clawdbot_config::{Config, ConfigEnv};
use clawdbot_core::egress::ReplySender;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_store::Store;

use crate::dispatch::{Dispatcher, StoreHistory};
use crate::loaded_skills::{Loader, ServedVersions, watch_registry};
use crate::policy::{Policy, PolicyHandle};
use crate::router::{Router, RouterHandle};
use crate::{HistorySettings, WorkerSettings, policy_sync};

/// How often workers look for `clawdbot skill enable|disable` switches (a change takes effect
/// within this long, on every worker).
const SWITCH_POLL: Duration = Duration::from_millis(500);
/// How often workers look for skills loaded or rolled back (`clawdbot skill load|rollback`):
/// one small query; a new version serves within this plus its compile time.
const REGISTRY_POLL: Duration = Duration::from_millis(200);
/// How often workers look for a changed config (permissions reload).
const CONFIG_POLL: Duration = Duration::from_secs(1);
/// How often the janitor trims the streams.
const JANITOR_EVERY: Duration = Duration::from_secs(5);

/// What the worker role is started with.
pub struct WorkerStart<'a> {
    pub config: &'a Config,
    pub bus: Arc<dyn Bus>,
    /// History, audit, skill switches and loaded skills.
    pub store: Arc<dyn Store>,
    /// Where replies go: the egress service in this process, or a gRPC client to it.
    pub egress: Arc<dyn ReplySender>,
    /// The config file or directory, watched for permission changes.
    pub config_path: Option<PathBuf>,
    /// What the config's `${...}` were read from, for reloads.
    pub config_env: ConfigEnv,
    /// A pool of `worker.pools`; `None` is the default pool.
    pub pool: Option<String>,
    /// The loaded skills' versions this worker serves, for its heartbeat.
    pub served: ServedVersions,
    /// Stops intake and the consumer.
    pub shutdown: &'a Shutdown,
    /// Stops what must outlive the consumer (history, pollers) after it.
    pub tail: &'a Shutdown,
}

/// Starts the worker, its pollers, the janitor and (when enabled) the history writer.
///
/// # Errors
/// `--pool` names no pool, a skill's settings are wrong, or the bus refuses a group.
pub async fn start(start: WorkerStart<'_>) -> anyhow::Result<()> {
    let WorkerStart {
        config,
        bus,
        store,
        egress,
        config_path,
        config_env,
        pool,
        served,
        shutdown,
        tail,
    } = start;
    let core = &config.core;
    let consumer_name = core
        .worker
        .consumer_name
        .clone()
        .unwrap_or_else(crate::default_consumer_name);
    let (group, listed, listed_only) = pool_membership(config, pool.as_deref())?;
    // Every pool's group exists from the start, so that trimming keeps what a pool not yet
    // running will need.
    for pool in std::iter::once(clawdbot_bus::SKILLS_GROUP)
        .chain(core.worker.pools.keys().map(String::as_str))
    {
        bus.ensure_group(clawdbot_bus::Stream::Inbound, pool)
            .await?;
    }
    let settings = worker_settings(config, &group, &consumer_name);
    // The group's series exist from the start: an idle worker shows 0, not a gap.
    for name in [
        clawdbot_core::telemetry::WORKER_ACKED_TOTAL,
        clawdbot_core::telemetry::DEAD_LETTERS_TOTAL,
        clawdbot_core::telemetry::WORKER_ORDER_SKIPPED_TOTAL,
    ] {
        metrics::counter!(name, "group" => group.clone()).increment(0);
    }
    let (skills, known) = pool_skills(config, &listed, listed_only).await?;
    let router =
        RouterHandle::new(Router::new(skills.clone()).map_err(|error| anyhow::anyhow!(error))?);
    let policy = PolicyHandle::new(Policy::new(core.skills.clone(), &core.permissions));
    let auditor = crate::audit::Auditor::start(store.clone(), tail);
    let dispatcher = Dispatcher::new(router.clone(), policy.clone(), bus.clone(), &group)
        .with_history(Arc::new(StoreHistory(store.clone())))
        .with_auditor(auditor)
        .with_loop_guard(crate::loop_guard::LoopGuard::new(
            bus.clone(),
            &core.worker.loop_guard,
        ));
    // Skills loaded on the running cluster (`clawdbot skill load`) join the default pool.
    if !listed_only {
        let loader = Loader::new(store.clone(), core.worker.wasm.clone(), bus.clone(), served);
        tail.spawn(watch_registry(
            loader,
            skills,
            router,
            REGISTRY_POLL,
            tail.clone(),
        ));
    }
    keep_policy_current(&store, &policy, config_path, config_env, known, tail);
    shutdown.spawn(logged(
        "worker",
        crate::run(settings, bus.clone(), dispatcher, egress, shutdown.clone()),
    ));
    tail.spawn(crate::run_janitor(bus.clone(), JANITOR_EVERY, tail.clone()));
    if core.history.enabled {
        // Validated with the config; an unreadable value cannot get here.
        // Validated with the config; an unreadable value cannot get here.
        let retention = core.history.retention().ok().flatten();
        tail.spawn(crate::history::expire_on_the_server(
            store.clone(),
            retention,
        ));
        if let Some(keep) = retention {
            tail.spawn(crate::history::keep_for(store.clone(), keep, tail.clone()));
        }
        tail.spawn(logged(
            "history",
            crate::run_history(
                history_settings(config, consumer_name),
                bus,
                store,
                tail.clone(),
            ),
        ));
    }
    Ok(())
}

/// Keeps `policy` current: the store's switches (`clawdbot skill enable|disable`) and, when
/// the worker was started from a config file, that file's permissions.
fn keep_policy_current(
    store: &Arc<dyn Store>,
    policy: &PolicyHandle,
    config_path: Option<PathBuf>,
    config_env: ConfigEnv,
    known: Vec<String>,
    tail: &Shutdown,
) {
    tail.spawn(policy_sync::poll_switches(
        store.clone(),
        policy.clone(),
        SWITCH_POLL,
        tail.clone(),
    ));
    if let Some(path) = config_path {
        tail.spawn(policy_sync::watch_config(
            path,
            config_env,
            known,
            policy.clone(),
            CONFIG_POLL,
            tail.clone(),
        ));
    }
}

fn worker_settings(config: &Config, group: &str, consumer_name: &str) -> WorkerSettings {
    let worker = &config.core.worker;
    WorkerSettings {
        group: group.to_string(),
        consumer_name: consumer_name.to_string(),
        batch_size: worker.batch_size,
        block: Duration::from_millis(worker.block_ms),
        reclaim_idle: Duration::from_secs(worker.reclaim_idle_secs),
        max_deliveries: worker.max_deliveries,
        concurrency: worker.concurrency,
        order_wait: Duration::from_secs(worker.order_wait_secs),
    }
}

fn history_settings(config: &Config, consumer_name: String) -> HistorySettings {
    let core = &config.core;
    HistorySettings {
        consumer_name,
        batch_size: core.history.batch_size,
        block: Duration::from_millis(core.worker.block_ms),
        linger: Duration::from_millis(core.history.linger_ms),
        reclaim_idle: Duration::from_secs(core.worker.reclaim_idle_secs),
    }
}

/// Returns the skills this pool runs (built-in and remote) and the name of every skill any
/// pool runs (which the config reloader must know).
async fn pool_skills(
    config: &Config,
    listed: &[String],
    listed_only: bool,
) -> anyhow::Result<(Vec<Arc<dyn clawdbot_core::skill::Skill>>, Vec<String>)> {
    let core = &config.core;
    let mut skills = clawdbot_skills::builtin(&clawdbot_config::skill_options(&core.skills))
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    let remote =
        clawdbot_skills::connect_remote(&clawdbot_config::remote_skills(&core.skills)).await;
    skills.extend(remote.map_err(|problems| anyhow::anyhow!(problems.join("; ")))?);
    let known = skills
        .iter()
        .map(|skill| skill.name().to_string())
        .collect();
    skills.retain(|skill| listed.iter().any(|name| name == skill.name()) == listed_only);
    Ok((skills, known))
}

/// Returns the consumer group of `pool`, the skills the config lists in pools, and whether
/// this pool runs exactly its listed skills (a named pool) or every skill no pool lists (the
/// default pool).
fn pool_membership(
    config: &Config,
    pool: Option<&str>,
) -> anyhow::Result<(String, Vec<String>, bool)> {
    let pools = &config.core.worker.pools;
    match pool {
        Some(name) => match pools.get(name) {
            Some(skills) => Ok((name.to_string(), skills.clone(), true)),
            None => bail!(
                "`--pool {name}`: no such pool in `worker.pools` (known: {})",
                pools.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        },
        None => Ok((
            clawdbot_bus::SKILLS_GROUP.to_string(),
            pools.values().flatten().cloned().collect(),
            false,
        )),
    }
}

/// Runs a role's future, logging the error it ends with.
async fn logged(role: &'static str, future: impl Future<Output = anyhow::Result<()>>) {
    if let Err(error) = future.await {
        tracing::error!(
            role,
            error = format!("{error:#}"),
            "role stopped with an error"
        );
    }
}
