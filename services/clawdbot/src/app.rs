//! Wiring: builds the bus, the store and the platforms from the config, binds every listener
//! (before anything starts, so a taken port fails fast and by name), starts the roles the
//! command asks for, and runs the shutdown sequence on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::routing::get;
use clawdbot_bus::Bus;
use clawdbot_bus::redis::RedisBus;
use clawdbot_config::{Config, StorageConfig};
use clawdbot_core::proto::egress_client::EgressClient;
use clawdbot_core::shutdown::{self, Shutdown};
use clawdbot_store::Store;
use clawdbot_store::postgres::PostgresStore;
use tokio::net::TcpListener;

use crate::cli::{Cli, Command};

/// How long the roles get to finish their work after SIGTERM (Kubernetes waits 30 s by
/// default; the issue asks for 10).
const GRACE: Duration = Duration::from_secs(10);

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, Default)]
struct Roles {
    ingress: bool,
    worker: bool,
    egress: bool,
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let (roles, platform) = match &cli.command {
        Command::Up(_) => (
            Roles {
                ingress: true,
                worker: true,
                egress: true,
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
        Command::Config(_) => return Ok(()),
    };
    let core = &config.core;
    // Bind first: nothing connects or starts if a port is taken.
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

    let bus = connect_bus(&config).await?;
    let shutdown = Shutdown::new();
    serve_metrics(metrics_listener, &shutdown)?;

    if let Some(listener) = egress_listener {
        let outbounds = clawdbot_platforms::build_outbounds(&config.platforms)
            .context("building platform clients")?;
        let settings = clawdbot_egress::EgressSettings {
            lease: Duration::from_secs(core.egress.lease_secs),
            result_ttl: Duration::from_secs(core.egress.result_ttl_secs),
        };
        shutdown.spawn(log_exit(
            "egress",
            clawdbot_egress::run(settings, bus.clone(), outbounds, listener, shutdown.clone()),
        ));
    }
    if roles.worker {
        start_worker(&config, bus.clone(), &shutdown).await?;
    }
    if let Some(listener) = ingress_listener {
        let mut inbounds = clawdbot_platforms::build_inbounds(&config.platforms);
        if let Some(platform) = &platform {
            inbounds.retain(|inbound| inbound.platform() == platform);
            if inbounds.is_empty() {
                bail!("`--platform {platform}`: no account of that platform is configured");
            }
        }
        let settings = clawdbot_ingress::IngressSettings {
            max_body_bytes: core.ingress.max_body_bytes,
            dedupe_window: Duration::from_secs(core.ingress.dedupe_window_secs),
            max_stream_len: core.ingress.max_stream_len,
        };
        let router = clawdbot_ingress::router(&settings, bus.clone(), inbounds, shutdown.clone());
        shutdown.spawn(log_exit(
            "ingress",
            clawdbot_ingress::run(router, listener, shutdown.clone()),
        ));
    }
    tracing::info!(role = cli.command.role_name(), "clawdbot running");
    shutdown::signal().await;
    tracing::info!("shutting down");
    shutdown.trigger();
    if !shutdown.wait(GRACE).await {
        tracing::warn!(
            grace_secs = GRACE.as_secs(),
            "grace period ran out; exiting with work in flight"
        );
    }
    Ok(())
}

async fn start_worker(
    config: &Config,
    bus: Arc<dyn Bus>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let core = &config.core;
    let consumer_name = core
        .worker
        .consumer_name
        .clone()
        .unwrap_or_else(clawdbot_worker::default_consumer_name);
    let channel = tonic::transport::Channel::from_shared(core.egress.endpoint.clone())
        .with_context(|| {
            format!(
                "`egress.endpoint`: `{}` is not a valid URI",
                core.egress.endpoint
            )
        })?
        .connect_lazy();
    let settings = clawdbot_worker::WorkerSettings {
        group: clawdbot_bus::SKILLS_GROUP.to_string(),
        consumer_name: consumer_name.clone(),
        batch_size: core.worker.batch_size,
        block: Duration::from_millis(core.worker.block_ms),
        reclaim_idle: Duration::from_secs(core.worker.reclaim_idle_secs),
        max_deliveries: core.worker.max_deliveries,
        concurrency: core.worker.concurrency,
    };
    let router = clawdbot_worker::router::Router::new(clawdbot_skills::builtin());
    shutdown.spawn(log_exit(
        "worker",
        clawdbot_worker::run(
            settings,
            bus.clone(),
            router,
            EgressClient::new(channel),
            shutdown.clone(),
        ),
    ));
    shutdown.spawn(clawdbot_worker::run_janitor(
        bus.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    if core.history.enabled {
        let store = connect_store(config).await?;
        let settings = clawdbot_worker::HistorySettings {
            consumer_name,
            batch_size: core.history.batch_size,
            block: Duration::from_millis(core.worker.block_ms),
            linger: Duration::from_millis(core.history.linger_ms),
            reclaim_idle: Duration::from_secs(core.worker.reclaim_idle_secs),
        };
        shutdown.spawn(log_exit(
            "history",
            clawdbot_worker::run_history(settings, bus, store, shutdown.clone()),
        ));
    }
    Ok(())
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

async fn connect_bus(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    let Some(cluster) = &config.core.cluster else {
        bail!("no `cluster.redis` configured: this build needs Redis for the bus");
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

async fn connect_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
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
            Ok(Arc::new(store))
        }
        Some(StorageConfig::Sqlite { path }) => {
            bail!(
                "`storage.type: sqlite` (`{path}`) is not available in this build yet; use postgresql"
            )
        }
        None => bail!(
            "history is enabled but no `storage` is configured (set `history.enabled: false` to run without)"
        ),
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = connect_store(config).await?;
    drop(store);
    println!("migrations applied");
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

fn serve_metrics(listener: TcpListener, shutdown: &Shutdown) -> anyhow::Result<()> {
    let handle = crate::telemetry::metrics_recorder()?;
    let upkeep = handle.clone();
    let token = shutdown.token();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
            }
        }
    });
    let router =
        axum::Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    let token = shutdown.token();
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(error = %error, "metrics server failed");
        }
    });
    Ok(())
}
