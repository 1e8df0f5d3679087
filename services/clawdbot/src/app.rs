//! Wiring: which roles the command runs, every listener bound first (a taken port fails fast
//! and by name), each backend opened once (`backends`), each role started by its own crate
//! (`clawdbot_{egress,worker,ingress}::start`), then the two-stage shutdown on SIGTERM/SIGINT.
//! Admin commands go to `commands`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clawdbot_config::Config;
use clawdbot_core::egress::ReplySender;
use clawdbot_core::shutdown::{self, Shutdown};
use tokio::net::TcpListener;

use crate::cli::{Cli, Command};

/// How long the roles get to finish their work after SIGTERM (Kubernetes waits 30 s by
/// default; the roles drain well within 10).
const GRACE: Duration = Duration::from_secs(10);
/// How long `clawdbot log` keeps records in the store.
const LOG_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// Which roles this process runs; `all` is `clawdbot up` (the sandbox defaults to on, the
/// in-process bus is allowed, and the worker calls egress directly).
#[derive(Debug, Clone, Copy, Default)]
struct Roles {
    ingress: bool,
    worker: bool,
    egress: bool,
    all: bool,
}

impl Roles {
    fn of(command: &Command) -> Self {
        let all = matches!(command, Command::Up(_));
        Self {
            ingress: all || matches!(command, Command::Ingress { .. }),
            worker: all || matches!(command, Command::Worker(_)),
            egress: all || matches!(command, Command::Egress(_)),
            all,
        }
    }
}

pub async fn run(
    cli: Cli,
    config: Config,
    config_env: clawdbot_config::ConfigEnv,
) -> anyhow::Result<()> {
    if let Some(done) = crate::commands::run(&cli.command, &config).await {
        return done;
    }
    let started = std::time::Instant::now();
    let config_notes = config.core.notes();
    let (roles, core) = (Roles::of(&cli.command), &config.core);
    let mut limits = clawdbot_ingress::ServerLimits::from_config(&core.ingress);
    limits.max_connections = crate::open_files::connection_budget(limits.max_connections);
    let ingress_listener = bind_if(roles.ingress, &core.ingress.listen, "ingress.listen").await?;
    let egress_listener = bind_if(roles.egress, &core.egress.listen, "egress.listen").await?;
    let metrics_listener = bind(&core.metrics.listen, "metrics.listen").await?;

    let bus = crate::backends::connect_bus(&config, roles.all).await?;
    let store = open_store(&config, roles.worker).await?;
    // Two stages, head first: `shutdown` stops intake and lets the worker finish (and, on the
    // in-process bus, drain) what is queued; then `tail` lets history write the last records
    // and stops the pollers, the janitor and the metrics endpoint.
    let (shutdown, tail) = (Shutdown::new(), Shutdown::new());
    if let Some((store, _)) = &store {
        crate::log_store::attach(store.clone(), LOG_RETENTION, &tail);
    }
    crate::metrics_server::serve_metrics(metrics_listener, limits.clone(), bus.clone(), &tail)?;
    let instance =
        (core.worker.consumer_name.clone()).unwrap_or_else(clawdbot_worker::default_consumer_name);
    let served = clawdbot_worker::loaded_skills::ServedVersions::default();
    let role = cli.command.role_name();
    tail.spawn(crate::status::beat(
        bus.clone(),
        role,
        instance.clone(),
        served.clone(),
        tail.clone(),
    ));
    let services = crate::wiring::platform_services(&config, &bus, roles.all);

    let local_egress = match egress_listener {
        Some(listener) => {
            let outbounds = clawdbot_platforms::build_outbounds(&config.platforms, &services)
                .context("building platform clients")?;
            let settings = clawdbot_egress::EgressSettings {
                lease: Duration::from_secs(core.egress.lease_secs),
                result_ttl: Duration::from_secs(core.egress.result_ttl_secs),
            };
            let tls = crate::internal_tls::server(core.internal_tls.as_ref())?;
            let service =
                clawdbot_egress::start(settings, bus.clone(), outbounds, listener, tls, &shutdown);
            Some(service)
        }
        None => None,
    };
    let role_start = RoleStart {
        cli: &cli,
        config: &config,
        bus: &bus,
        store: store.as_ref(),
        services: &services,
        shutdown: &shutdown,
    };
    if roles.worker {
        let egress: Arc<dyn ReplySender> = match local_egress {
            Some(service) if roles.all => service,
            _ => crate::wiring::egress_client(core)?,
        };
        start_worker(&role_start, egress, config_env, served, &tail).await?;
    }
    if let Some(listener) = ingress_listener {
        start_ingress(&role_start, listener, limits, &instance).await?;
    }
    let ready_ms = started.elapsed().as_millis() as u64;
    tracing::info!(role, ready_ms, "clawdbot running");
    for note in config_notes {
        tracing::info!(role, %note, "config note");
    }
    shutdown::signal().await;
    stop(&shutdown, &tail).await;
    Ok(())
}

/// What every role of this process is started with.
struct RoleStart<'a> {
    cli: &'a Cli,
    config: &'a Config,
    bus: &'a Arc<dyn clawdbot_bus::Bus>,
    store: Option<&'a (Arc<dyn clawdbot_store::Store>, String)>,
    services: &'a clawdbot_platforms::PlatformServices,
    shutdown: &'a Shutdown,
}

/// Starts the worker role (its store is always open: `open_store` requires it for workers).
async fn start_worker(
    start: &RoleStart<'_>,
    egress: Arc<dyn ReplySender>,
    config_env: clawdbot_config::ConfigEnv,
    served: clawdbot_worker::loaded_skills::ServedVersions,
    tail: &Shutdown,
) -> anyhow::Result<()> {
    let (store, location) = start.store.context("a worker needs the store")?;
    let pool = match &start.cli.command {
        Command::Worker(args) => args.worker.pool.clone(),
        Command::Up(args) => args.worker.pool.clone(),
        _ => None,
    };
    clawdbot_worker::start(clawdbot_worker::WorkerStart {
        config: start.config,
        bus: start.bus.clone(),
        store: store.clone(),
        egress,
        config_path: start.cli.command.config_path().cloned(),
        config_env,
        pool,
        served,
        shutdown: start.shutdown,
        tail,
    })
    .await?;
    if start.config.core.history.enabled {
        println!("clawdbot: history in {location}");
    }
    Ok(())
}

/// Starts the ingress role (and, when it serves the notify API, the issued keys' refresh).
async fn start_ingress(
    start: &RoleStart<'_>,
    listener: TcpListener,
    limits: clawdbot_ingress::ServerLimits,
    instance: &str,
) -> anyhow::Result<()> {
    let platform = match &start.cli.command {
        Command::Ingress { platform, .. } => platform.as_deref(),
        _ => None,
    };
    let notify_name = clawdbot_platforms::notify::NAME;
    let serves_notify =
        platform.is_none_or(|p| clawdbot_platforms::platform_of_config_key(p) == notify_name);
    let notify = start
        .config
        .platforms
        .section::<clawdbot_platforms::notify::NotifyConfig>(notify_name)
        .filter(|_| serves_notify);
    if let Some(notify) = notify {
        let store = start.store.map(|(store, _)| store.clone());
        crate::wiring::watch_issued_keys(
            start.config,
            store,
            notify,
            start.services,
            start.shutdown,
        )
        .await?;
    }
    clawdbot_ingress::start(clawdbot_ingress::IngressStart {
        config: start.config,
        bus: start.bus.clone(),
        services: start.services,
        listener,
        limits,
        platform,
        holder: format!("{instance}/{}", uuid::Uuid::new_v4().simple()),
        shutdown: start.shutdown,
    })
    .await
}

/// Opens the store once for the whole process: a worker needs it (history, switches, loaded
/// skills); ingress and egress on their own use it for their log records when one is configured,
/// and log to stdout only when it cannot be opened.
async fn open_store(
    config: &Config,
    required: bool,
) -> anyhow::Result<Option<(Arc<dyn clawdbot_store::Store>, String)>> {
    if required {
        return crate::backends::connect_store(config).await.map(Some);
    }
    if config.core.storage.is_none() {
        return Ok(None);
    }
    match crate::backends::connect_store(config).await {
        Ok(store) => Ok(Some(store)),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "log records stay on stdout: no store"
            );
            Ok(None)
        }
    }
}

/// Binds `address`, naming the config key when the port is taken.
async fn bind(address: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on `{address}` (`{key}`): is the port already in use?")
    })
}

/// Binds `address` when `wanted`.
async fn bind_if(wanted: bool, address: &str, key: &str) -> anyhow::Result<Option<TcpListener>> {
    if wanted {
        bind(address, key).await.map(Some)
    } else {
        Ok(None)
    }
}

/// Runs the two-stage shutdown within [`GRACE`].
async fn stop(shutdown: &Shutdown, tail: &Shutdown) {
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
}
