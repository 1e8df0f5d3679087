//! The pieces `app` hands the roles that come from the binary itself: what platforms need from
//! the process, how a worker reaches egress, and the notify API's issued keys.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clawdbot_bus::Bus;
use clawdbot_config::{Config, CoreConfig};
use clawdbot_core::egress::{GrpcEgress, ReplySender};
use clawdbot_core::shutdown::Shutdown;
use clawdbot_platforms::PlatformServices;
use clawdbot_store::Store;

/// What platforms need from this process. The sandbox is on by default in `clawdbot up`
/// (`sandbox_by_default`), but only on loopback: it trusts whoever reaches it.
pub fn platform_services(
    config: &Config,
    bus: &Arc<dyn Bus>,
    sandbox_by_default: bool,
) -> PlatformServices {
    let on_loopback = config
        .core
        .ingress
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|address| address.ip().is_loopback());
    PlatformServices {
        sandbox: config
            .platforms
            .sandbox_enabled(sandbox_by_default && on_loopback),
        sandbox_sink: Some(Arc::new(BusSandboxSink(bus.clone()))),
        shared: Some(bus.clone()),
        issued_keys: clawdbot_platforms::IssuedKeys::default(),
        relay: Some(Arc::new(BusRelay(bus.clone()))),
    }
}

/// Calls between processes (a OneBot socket's sends) go over the bus's broadcast.
struct BusRelay(Arc<dyn Bus>);

#[async_trait::async_trait]
impl clawdbot_platforms::relay::Relay for BusRelay {
    async fn send(&self, channel: &str, payload: &[u8]) -> Result<u64, String> {
        self.0
            .broadcast(channel, payload)
            .await
            .map_err(|error| error.to_string())
    }

    async fn listen(&self, channel: &str) -> Result<tokio::sync::mpsc::Receiver<Vec<u8>>, String> {
        self.0
            .subscribe(channel)
            .await
            .map_err(|error| error.to_string())
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
            .map(|_reached| ())
            .map_err(|error| error.to_string())
    }
}

/// A gRPC client to egress at `egress.endpoint` (mutual TLS under `internal_tls`), for a worker
/// running apart from egress.
pub fn egress_client(core: &CoreConfig) -> anyhow::Result<Arc<dyn ReplySender>> {
    let mut endpoint = tonic::transport::Channel::from_shared(core.egress.endpoint.clone())
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
    let timeout = core.performance.io_timeout_secs.map_or(
        clawdbot_worker::consumer::EGRESS_CALL_TIMEOUT,
        Duration::from_secs,
    );
    Ok(Arc::new(GrpcEgress::new(endpoint.connect_lazy(), timeout)))
}

/// Keeps the notify inbound's issued API keys current from the store (`store`, or the
/// configured one), when a master key is set to open them; without one only the config's
/// `notify.api_keys` are accepted.
pub async fn watch_issued_keys(
    config: &Config,
    store: Option<Arc<dyn Store>>,
    notify: &clawdbot_platforms::notify::NotifyConfig,
    services: &PlatformServices,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    use clawdbot_store::keyring::{Keyring, KeyringError};
    match Keyring::from_env() {
        Ok(keys) => {
            let store = match store {
                Some(store) => store,
                None => crate::backends::connect_store(config).await?.0,
            };
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
        // The notify API is served even without a section (so issued keys work everywhere);
        // with no key of its own and no master key to read issued ones, it refuses every
        // request — said once here (info: most deployments never use it), and each refusal is a 401 — rather than stopping the
        // gateway's chat traffic over an API nobody may be using.
        Err(KeyringError::NoMasterKey { variable }) => {
            tracing::info!(
                "the notify API refuses every request: no `notify.api_keys`, and `{variable}` is unset so keys issued with `clawdbot security issue-key` cannot be read"
            );
            Ok(())
        }
        Err(error) => Err(anyhow::anyhow!(error)),
    }
}
