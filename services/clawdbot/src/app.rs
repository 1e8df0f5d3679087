//! Wiring: builds the bus, the store and the platforms from the config, binds every listener
//! (before anything starts, so a taken port fails fast and by name), starts the roles the
//! command asks for, and runs the shutdown sequence on SIGTERM/SIGINT.
//!
//! Backends follow the config: `cluster.redis` set → Redis Streams, else the in-process bus
//! (`clawdbot up` only); `storage` → Postgres or SQLite, SQLite at [`DEFAULT_SQLITE_PATH`] when
//! absent. Roles, skills and platforms are the same either way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clawdbot_bus::Bus;
use clawdbot_bus::memory::MemoryBus;
use clawdbot_bus::redis::RedisBus;
use clawdbot_config::{Config, StorageConfig};
use clawdbot_core::egress::{GrpcEgress, ReplySender};
use clawdbot_core::shutdown::{self, Shutdown};
use clawdbot_egress::EgressService;
use clawdbot_platforms::PlatformServices;
use clawdbot_store::Store;
use clawdbot_store::postgres::PostgresStore;
use clawdbot_store::sqlite::SqliteStore;
use clawdbot_worker::dispatch::Dispatcher;
use clawdbot_worker::policy::{Policy, PolicyHandle};
use clawdbot_worker::policy_sync;
use clawdbot_worker::router::{Router, RouterHandle};
use tokio::net::TcpListener;

use crate::cli::{Cli, Command};
use crate::metrics_server::serve_metrics;

/// How long the roles get to finish their work after SIGTERM (Kubernetes waits 30 s by
/// default; the roles drain well within 10).
const GRACE: Duration = Duration::from_secs(10);
/// How often workers look for `clawdbot skill enable|disable` switches (a change takes effect
/// within this long, on every worker).
const SWITCH_POLL: Duration = Duration::from_millis(500);
/// How often workers look for skills loaded or rolled back (`clawdbot skill load|rollback`):
/// one small query; a new version serves within this plus its compile time.
const REGISTRY_POLL: Duration = Duration::from_millis(200);
/// How often workers look for a changed config (permissions reload).
const CONFIG_POLL: Duration = Duration::from_secs(1);
/// Where history goes when the config names no storage.
pub const DEFAULT_SQLITE_PATH: &str = "clawdbot.db";

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, Default)]
struct Roles {
    ingress: bool,
    worker: bool,
    egress: bool,
    /// All in one process (`clawdbot up`): the sandbox defaults to on and the worker calls
    /// egress directly.
    all: bool,
}

pub async fn run(
    cli: Cli,
    config: Config,
    config_env: clawdbot_config::ConfigEnv,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (roles, platform) = match &cli.command {
        Command::Up(_) => (
            Roles {
                ingress: true,
                worker: true,
                egress: true,
                all: true,
            },
            None,
        ),
        Command::Ingress { platform, .. } => (
            Roles {
                ingress: true,
                ..Roles::default()
            },
            platform.clone(),
        ),
        Command::Worker(_) => (
            Roles {
                worker: true,
                ..Roles::default()
            },
            None,
        ),
        Command::Egress(_) => (
            Roles {
                egress: true,
                ..Roles::default()
            },
            None,
        ),
        Command::Migrate(_) => return migrate(&config).await,
        Command::Probe { url } => return probe(url).await,
        Command::Status { memory, .. } => return crate::status::show(&config, *memory).await,
        Command::Admin(command) => return crate::admin_cli::run(command, &config).await,
        Command::Log(command) => return crate::log_cli::run(command, &config).await,
        Command::Skill(command) => return crate::skill_cli::run(command, &config).await,
        Command::Security(command) => return crate::security_cli::run(command, &config).await,
        Command::Config(_) => return Ok(()),
    };
    let core = &config.core;
    // Bind first: nothing connects or starts if a port is taken.
    let mut server_limits = clawdbot_ingress::ServerLimits::from_config(&core.ingress);
    server_limits.max_connections =
        crate::open_files::connection_budget(server_limits.max_connections);
    let ingress_listener = if roles.ingress {
        Some(bind(&core.ingress.listen, "ingress.listen").await?)
    } else {
        None
    };
    let egress_listener = if roles.egress {
        Some(bind(&core.egress.listen, "egress.listen").await?)
    } else {
        None
    };
    let metrics_listener = bind(&core.metrics.listen, "metrics.listen").await?;

    let bus = connect_bus(&config, roles).await?;
    // Shutdown runs in two stages, head first: `shutdown` stops intake and lets the worker
    // finish (and, on the in-process bus, drain) what is queued; then `tail` lets history write
    // the last records and stops the janitor and the metrics endpoint.
    let shutdown = Shutdown::new();
    let tail = Shutdown::new();
    serve_metrics(metrics_listener, server_limits.clone(), &tail)?;
    let instance = core
        .worker
        .consumer_name
        .clone()
        .unwrap_or_else(clawdbot_worker::default_consumer_name);
    let served = clawdbot_worker::loaded_skills::ServedVersions::default();
    tail.spawn(crate::status::beat(
        bus.clone(),
        cli.command.role_name(),
        instance.clone(),
        served.clone(),
        tail.clone(),
    ));
    let services = PlatformServices {
        // On by default in `up`, but only on loopback: the sandbox trusts whoever reaches it.
        sandbox: config
            .platforms
            .sandbox_enabled(roles.all && listens_on_loopback(&core.ingress.listen)),
        sandbox_sink: Some(Arc::new(BusSandboxSink(bus.clone()))),
        shared: Some(bus.clone()),
        issued_keys: clawdbot_platforms::IssuedKeys::default(),
    };

    // Ingress and egress on their own record their warnings in the store too, when there is
    // one (a worker attaches its own store below); without it they log to stdout only.
    if !roles.worker && config.core.storage.is_some() {
        match connect_store(&config).await {
            Ok((store, _)) => crate::log_store::attach(store, LOG_RETENTION, &tail),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "log records stay on stdout: no store"
            ),
        }
    }
    let mut local_egress = None;
    if let Some(listener) = egress_listener {
        let outbounds = clawdbot_platforms::build_outbounds(&config.platforms, &services)
            .context("building platform clients")?;
        let settings = clawdbot_egress::EgressSettings {
            lease: Duration::from_secs(core.egress.lease_secs),
            result_ttl: Duration::from_secs(core.egress.result_ttl_secs),
        };
        let service = Arc::new(EgressService::new(settings, bus.clone(), outbounds));
        shutdown.spawn(log_exit(
            "egress",
            clawdbot_egress::run(
                service.clone(),
                listener,
                crate::internal_tls::server(core.internal_tls.as_ref())?,
                shutdown.clone(),
            ),
        ));
        local_egress = Some(service);
    }
    let mut store_path = None;
    if roles.worker {
        let egress: Arc<dyn ReplySender> = match local_egress {
            Some(service) if roles.all => service,
            _ => {
                let mut endpoint =
                    tonic::transport::Channel::from_shared(core.egress.endpoint.clone())
                        .with_context(|| {
                            format!(
                                "`egress.endpoint`: `{}` is not a valid URI",
                                core.egress.endpoint
                            )
                        })?;
                if let Some(tls) = crate::internal_tls::client(core.internal_tls.as_ref())? {
                    endpoint = endpoint
                        .tls_config(tls)
                        .context("`internal_tls`: cannot configure the egress client")?;
                }
                let channel = endpoint.connect_lazy();
                let timeout = core.performance.io_timeout_secs.map_or(
                    clawdbot_worker::consumer::EGRESS_CALL_TIMEOUT,
                    Duration::from_secs,
                );
                Arc::new(GrpcEgress::new(channel, timeout))
            }
        };
        let config_path = cli.command.config_path().cloned();
        let pool = match &cli.command {
            Command::Worker(role) => role.pool.clone(),
            _ => None,
        };
        let places = Places {
            config_path,
            config_env: config_env.clone(),
            pool,
            served,
        };
        store_path = start_worker(&config, places, bus.clone(), egress, &shutdown, &tail).await?;
    }
    if let Some(listener) = ingress_listener {
        let serves_notify = platform.as_deref().is_none_or(|p| {
            clawdbot_platforms::platform_of_config_key(p) == clawdbot_platforms::notify::NAME
        });
        let notify = config
            .platforms
            .section::<clawdbot_platforms::notify::NotifyConfig>(clawdbot_platforms::notify::NAME);
        if let Some(notify) = notify.filter(|_| serves_notify) {
            watch_issued_keys(&config, notify, &services, &shutdown).await?;
        }
        let mut inbounds = clawdbot_platforms::build_inbounds(&config.platforms, &services);
        let mut connections = clawdbot_platforms::build_connections(&config.platforms, &services);
        if let Some(platform) = &platform {
            // A platform is named by its name (`wecom`), its route (`wechat`) or its config
            // key (`wechat_enterprise`, what the Helm chart passes).
            let platform = clawdbot_platforms::platform_of_config_key(platform);
            inbounds
                .retain(|inbound| inbound.platform() == platform || inbound.route() == platform);
            connections.retain(|connection| connection.platform() == platform);
            if inbounds.is_empty() && connections.is_empty() {
                bail!("`--platform {platform}`: no account of that platform is configured");
            }
        }
        let settings = clawdbot_ingress::IngressSettings {
            max_body_bytes: core.ingress.max_body_bytes,
            dedupe_window: Duration::from_secs(core.ingress.dedupe_window_secs),
            max_stream_len: core.ingress.max_stream_len,
        };
        if !connections.is_empty() {
            // Long-lived sockets (DingTalk Stream): this replica competes for each one.
            let publisher = clawdbot_ingress::Publisher::start(
                bus.clone(),
                settings.dedupe_window,
                settings.max_stream_len,
            );
            clawdbot_ingress::start_connections(
                connections,
                bus.clone(),
                publisher,
                // Unique even when replicas share a configured consumer name.
                format!("{instance}/{}", uuid::Uuid::new_v4().simple()),
                &shutdown,
            );
        }
        let mut router =
            clawdbot_ingress::router(&settings, bus.clone(), inbounds, shutdown.clone());
        let serves_sandbox = platform
            .as_deref()
            .is_none_or(|p| p == clawdbot_platforms::sandbox::NAME);
        if let Some(sandbox) = services.sandbox.as_ref().filter(|_| serves_sandbox) {
            let feed = clawdbot_ingress::SandboxFeed::start(bus.clone(), &sandbox.id)
                .await
                .context("subscribing to sandbox replies")?;
            router = router.merge(feed.routes());
            println!(
                "clawdbot: sandbox chat at http://{}/sandbox",
                browsable(&core.ingress.listen)
            );
        }
        let access = clawdbot_ingress::AccessPolicy {
            allowed: core.security.allowed_networks(),
            trust_forwarded_for: core.security.trust_forwarded_for,
        };
        let router = clawdbot_ingress::restrict(router, access);
        let tls = match &core.tls {
            Some(tls) => Some(
                clawdbot_ingress::tls::server_config(&tls.cert, &tls.key, &tls.min_version)
                    .map_err(|error| anyhow::anyhow!(error))?,
            ),
            None => None,
        };
        shutdown.spawn(log_exit(
            "ingress",
            clawdbot_ingress::run(router, listener, tls, server_limits, shutdown.clone()),
        ));
    }
    if let Some(path) = store_path {
        println!("clawdbot: history in {path}");
    }
    tracing::info!(
        role = cli.command.role_name(),
        ready_ms = started.elapsed().as_millis() as u64,
        "clawdbot running"
    );
    shutdown::signal().await;
    tracing::info!("shutting down");
    let stopping = std::time::Instant::now();
    shutdown.trigger();
    let head_done = shutdown.wait(GRACE).await;
    tail.trigger();
    let tail_grace = GRACE
        .saturating_sub(stopping.elapsed())
        .max(Duration::from_secs(1));
    let tail_done = tail.wait(tail_grace).await;
    if !(head_done && tail_done) {
        tracing::warn!(
            grace_secs = GRACE.as_secs(),
            "grace period ran out; exiting with work in flight"
        );
    }
    Ok(())
}

/// Returns true when `listen` is a loopback address (only this machine can connect).
fn listens_on_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|address| address.ip().is_loopback())
}

/// Returns an address a browser on this machine can open: `0.0.0.0:8080` → `127.0.0.1:8080`.
fn browsable(listen: &str) -> String {
    listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]")
}

/// Starts the worker, the janitor and the history writer; returns where history goes.
/// Where a worker's rules come from and which pool it serves.
struct Places {
    config_path: Option<std::path::PathBuf>,
    /// What the config's `${...}` were read from, for reloads.
    config_env: clawdbot_config::ConfigEnv,
    /// A pool of `worker.pools`; `None` is the default pool.
    pool: Option<String>,
    /// The loaded skills' versions this worker serves, for its heartbeat.
    served: clawdbot_worker::loaded_skills::ServedVersions,
}

/// Returns the consumer group of `pool` and whether a skill belongs to it: a named pool runs
/// exactly its listed skills; the default pool runs every skill no pool lists.
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

async fn start_worker(
    config: &Config,
    places: Places,
    bus: Arc<dyn Bus>,
    egress: Arc<dyn ReplySender>,
    shutdown: &Shutdown,
    tail: &Shutdown,
) -> anyhow::Result<Option<String>> {
    let core = &config.core;
    let consumer_name = core
        .worker
        .consumer_name
        .clone()
        .unwrap_or_else(clawdbot_worker::default_consumer_name);
    let (group, listed, listed_only) = pool_membership(config, places.pool.as_deref())?;
    // Every pool's group exists from the start, so that trimming keeps what a pool not yet
    // running will need.
    for pool in std::iter::once(clawdbot_bus::SKILLS_GROUP)
        .chain(core.worker.pools.keys().map(String::as_str))
    {
        bus.ensure_group(clawdbot_bus::Stream::Inbound, pool)
            .await?;
    }
    let settings = clawdbot_worker::WorkerSettings {
        group: group.clone(),
        consumer_name: consumer_name.clone(),
        batch_size: core.worker.batch_size,
        block: Duration::from_millis(core.worker.block_ms),
        reclaim_idle: Duration::from_secs(core.worker.reclaim_idle_secs),
        max_deliveries: core.worker.max_deliveries,
        concurrency: core.worker.concurrency,
    };
    let mut skills = clawdbot_skills::builtin(&core.skills)
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    let remote = clawdbot_skills::connect_remote(&core.skills).await;
    skills.extend(remote.map_err(|problems| anyhow::anyhow!(problems.join("; ")))?);
    // Every skill's name is known to the config reloader, whichever pool runs it.
    let known: Vec<String> = skills
        .iter()
        .map(|skill| skill.name().to_string())
        .collect();
    skills.retain(|skill| listed.iter().any(|name| name == skill.name()) == listed_only);
    let router =
        RouterHandle::new(Router::new(skills.clone()).map_err(|error| anyhow::anyhow!(error))?);
    let policy = PolicyHandle::new(Policy::new(core.skills.clone(), &core.permissions));
    let dispatcher = Dispatcher::new(router.clone(), policy.clone(), bus.clone(), &group);
    // The store holds the cluster-wide skill switches as well as history.
    let (store, location) = connect_store(config).await?;
    crate::log_store::attach(store.clone(), LOG_RETENTION, tail);
    let history = clawdbot_worker::dispatch::StoreHistory(store.clone());
    let auditor = clawdbot_worker::audit::Auditor::start(store.clone(), tail);
    let dispatcher = dispatcher
        .with_history(Arc::new(history))
        .with_auditor(auditor);
    // Skills loaded on the running cluster (`clawdbot skill load`) join the default pool.
    if !listed_only {
        let loader = clawdbot_worker::loaded_skills::Loader::new(
            store.clone(),
            core.worker.wasm.clone(),
            bus.clone(),
            places.served.clone(),
        );
        tail.spawn(clawdbot_worker::loaded_skills::watch_registry(
            loader,
            skills,
            router,
            REGISTRY_POLL,
            tail.clone(),
        ));
    }
    tail.spawn(policy_sync::poll_switches(
        store.clone(),
        policy.clone(),
        SWITCH_POLL,
        tail.clone(),
    ));
    if let Some(path) = places.config_path {
        tail.spawn(policy_sync::watch_config(
            path,
            places.config_env,
            known,
            policy,
            CONFIG_POLL,
            tail.clone(),
        ));
    }
    shutdown.spawn(log_exit(
        "worker",
        clawdbot_worker::run(settings, bus.clone(), dispatcher, egress, shutdown.clone()),
    ));
    tail.spawn(clawdbot_worker::run_janitor(
        bus.clone(),
        Duration::from_secs(5),
        tail.clone(),
    ));
    if !core.history.enabled {
        return Ok(None);
    }
    let settings = clawdbot_worker::HistorySettings {
        consumer_name,
        batch_size: core.history.batch_size,
        block: Duration::from_millis(core.worker.block_ms),
        linger: Duration::from_millis(core.history.linger_ms),
        reclaim_idle: Duration::from_secs(core.worker.reclaim_idle_secs),
    };
    tail.spawn(log_exit(
        "history",
        clawdbot_worker::run_history(settings, bus, store, tail.clone()),
    ));
    Ok(Some(location))
}

async fn log_exit(role: &'static str, future: impl Future<Output = anyhow::Result<()>>) {
    if let Err(error) = future.await {
        tracing::error!(
            role,
            error = format!("{error:#}"),
            "role stopped with an error"
        );
    }
}

async fn bind(address: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on `{address}` (`{key}`): is the port already in use?")
    })
}

async fn connect_bus(config: &Config, roles: Roles) -> anyhow::Result<Arc<dyn Bus>> {
    let Some(cluster) = &config.core.cluster else {
        if !roles.all {
            bail!(
                "no `cluster.redis` configured: a role running on its own reaches the others through Redis (or run everything with `clawdbot up`)"
            );
        }
        return Ok(Arc::new(MemoryBus::new()));
    };
    let bus = RedisBus::connect(&cluster.redis, &cluster.key_prefix)
        .await
        .with_context(|| {
            format!(
                "cannot reach Redis at `{}` (`cluster.redis`)",
                cluster.redis
            )
        })?;
    Ok(Arc::new(bus))
}

/// Keeps the notify inbound's issued API keys current from the store, when a master key is set
/// to open them; without one only the config's `notify.api_keys` are accepted.
async fn watch_issued_keys(
    config: &Config,
    notify: &clawdbot_platforms::notify::NotifyConfig,
    services: &PlatformServices,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    use clawdbot_store::keyring::{Keyring, KeyringError};
    match Keyring::from_env() {
        Ok(keys) => {
            let (store, _) = connect_store(config).await?;
            let vault = crate::vault::Vault::new(store, keys);
            crate::vault::refresh_issued_keys(vault, services.issued_keys.clone(), shutdown);
            Ok(())
        }
        Err(KeyringError::NoMasterKey { variable }) if !notify.api_keys.is_empty() => {
            tracing::info!(
                "notify accepts only `notify.api_keys`: `{variable}` is unset, so keys issued with `clawdbot security issue-key` cannot be read"
            );
            Ok(())
        }
        Err(error @ KeyringError::NoMasterKey { .. }) => Err(anyhow::anyhow!(error)).context(
            "`notify` has no `api_keys` of its own, so its keys are the issued ones, sealed in the store",
        ),
        Err(error) => Err(anyhow::anyhow!(error)),
    }
}

/// Opens the configured store; returns it and a description of where it is.
pub(crate) async fn connect_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, String)> {
    match &config.core.storage {
        Some(StorageConfig::Postgresql {
            dsn,
            pool_size,
            schema,
        }) => {
            let store = PostgresStore::connect(dsn, schema, *pool_size)
                .await
                .with_context(|| {
                    format!("cannot use Postgres at `{}` (`storage.dsn`)", redact(dsn))
                })?;
            Ok((
                Arc::new(store),
                format!("Postgres {} (schema {schema})", redact(dsn)),
            ))
        }
        Some(StorageConfig::Sqlite { path }) => open_sqlite(Path::new(path), "storage.path").await,
        None => open_sqlite(Path::new(DEFAULT_SQLITE_PATH), "storage").await,
    }
}

async fn open_sqlite(path: &Path, key: &str) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let store = SqliteStore::open(path)
        .await
        .with_context(|| format!("cannot use SQLite file `{}` (`{key}`)", path.display()))?;
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((Arc::new(store), shown.display().to_string()))
}

/// `clawdbot probe URL`: a health check for images without curl.
async fn probe(url: &str) -> anyhow::Result<()> {
    let client = clawdbot_core::tls::http_client_builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let status = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("`{url}` does not answer"))?
        .status();
    if !status.is_success() {
        bail!("`{url}` answered {status}");
    }
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let (_store, location) = connect_store(config).await?;
    println!("migrations applied: {location}");
    Ok(())
}

/// Hides the password of a URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Sandbox replies go out on the bus's broadcast, to every ingress process.
struct BusSandboxSink(Arc<dyn Bus>);

#[async_trait::async_trait]
impl clawdbot_platforms::sandbox::SandboxSink for BusSandboxSink {
    async fn deliver(&self, channel: &str, payload: Vec<u8>) -> Result<(), String> {
        self.0
            .broadcast(channel, &payload)
            .await
            .map_err(|error| error.to_string())
    }
}

/// How long `clawdbot log` keeps records in the store.
const LOG_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
