//! Assembles the ingress role from the config: the webhook routes of every configured account
//! (or of one platform's, for `clawdbot ingress --platform P`), the long-lived connections this
//! replica competes to hold, the sandbox page and feed, the access policy and TLS — then serves
//! them until shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clawdbot_bus::Bus;
use clawdbot_config::Config;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_platforms::PlatformServices;
use tokio::net::TcpListener;

use crate::{
    AccessPolicy, IngressSettings, Publisher, SandboxFeed, ServerLimits, restrict, router,
    start_connections,
};

/// What the ingress role is started with.
pub struct IngressStart<'a> {
    pub config: &'a Config,
    pub bus: Arc<dyn Bus>,
    pub services: &'a PlatformServices,
    pub listener: TcpListener,
    pub limits: ServerLimits,
    /// `--platform`: serve only this platform's accounts (its name, route or config key).
    pub platform: Option<&'a str>,
    /// This process among the replicas, unique even where replicas share a configured name:
    /// connection holders are told apart by it.
    pub holder: String,
    pub shutdown: &'a Shutdown,
}

/// Starts the ingress role; it serves until `shutdown`.
///
/// # Errors
/// `--platform` names a platform with no configured account, the sandbox feed cannot
/// subscribe, or the TLS files are unusable.
pub async fn start(start: IngressStart<'_>) -> anyhow::Result<()> {
    let IngressStart {
        config,
        bus,
        services,
        listener,
        limits,
        platform,
        holder,
        shutdown,
    } = start;
    let core = &config.core;
    let platform = platform.map(clawdbot_platforms::platform_of_config_key);
    let mut inbounds = clawdbot_platforms::build_inbounds(&config.platforms, services);
    let mut connections = clawdbot_platforms::build_connections(&config.platforms, services);
    if let Some(platform) = platform {
        inbounds.retain(|inbound| inbound.platform() == platform || inbound.route() == platform);
        connections.retain(|connection| connection.platform() == platform);
        if inbounds.is_empty() && connections.is_empty() {
            let mut configured: Vec<&str> =
                clawdbot_platforms::build_inbounds(&config.platforms, services)
                    .iter()
                    .map(|inbound| inbound.platform())
                    .collect();
            configured.sort_unstable();
            configured.dedup();
            bail!(
                "`--platform {platform}`: no account of that platform is configured (configured: {})",
                configured.join(", ")
            );
        }
    }
    // Each served platform's series exists from the start: a dashboard shows 0, not a gap.
    for inbound in &inbounds {
        metrics::counter!(clawdbot_core::telemetry::MESSAGES_IN_TOTAL, "platform" => inbound.platform())
            .increment(0);
    }
    let settings = IngressSettings {
        max_body_bytes: core.ingress.max_body_bytes,
        dedupe_window: Duration::from_secs(core.ingress.dedupe_window_secs),
        max_stream_len: core.ingress.max_stream_len,
    };
    if !connections.is_empty() {
        let publisher =
            Publisher::start(bus.clone(), settings.dedupe_window, settings.max_stream_len);
        start_connections(connections, bus.clone(), publisher, holder, shutdown);
    }
    let mut routes = router(&settings, bus.clone(), inbounds, shutdown.clone());
    let serves_sandbox = platform.is_none_or(|p| p == clawdbot_platforms::sandbox::NAME);
    if let Some(sandbox) = services.sandbox.as_ref().filter(|_| serves_sandbox) {
        let feed = SandboxFeed::start(bus.clone(), &sandbox.id)
            .await
            .context("subscribing to sandbox replies")?;
        routes = routes.merge(feed.routes());
        println!(
            "clawdbot: sandbox chat at http://{}/sandbox",
            browsable(&core.ingress.listen)
        );
    }
    let access = AccessPolicy {
        allowed: core.security.allowed_networks(),
        trust_forwarded_for: core.security.trust_forwarded_for,
    };
    let routes = restrict(routes, access);
    let tls = match &core.tls {
        Some(tls) => Some(
            crate::tls::server_config(&tls.cert, &tls.key, &tls.min_version)
                .map_err(|error| anyhow::anyhow!(error))?,
        ),
        None => None,
    };
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        if let Err(error) = crate::run(routes, listener, tls, limits, stop).await {
            tracing::error!(
                role = "ingress",
                error = format!("{error:#}"),
                "role stopped with an error"
            );
        }
    });
    Ok(())
}

/// Returns an address a browser on this machine can open: `0.0.0.0:8080` → `127.0.0.1:8080`.
fn browsable(listen: &str) -> String {
    listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]")
}
