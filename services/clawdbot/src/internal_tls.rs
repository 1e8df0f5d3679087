//! Mutual TLS between workers and egress (`internal_tls`): both sides load their certificate
//! and key, and trust only the cluster's CA — egress refuses a client without a certificate
//! that CA signed, a worker refuses an egress whose certificate does not name `server_name`.

use anyhow::Context;
use clawdbot_config::InternalTlsConfig;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

fn read(key: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("`internal_tls.{key}`: cannot read `{path}`"))
}

fn identity(config: &InternalTlsConfig) -> anyhow::Result<Identity> {
    Ok(Identity::from_pem(
        read("cert", &config.cert)?,
        read("key", &config.key)?,
    ))
}

/// The egress server's TLS: its identity, and client certificates required.
///
/// # Errors
/// A file cannot be read.
pub fn server(config: Option<&InternalTlsConfig>) -> anyhow::Result<Option<ServerTlsConfig>> {
    let Some(config) = config else {
        return Ok(None);
    };
    Ok(Some(
        ServerTlsConfig::new()
            .identity(identity(config)?)
            .client_ca_root(Certificate::from_pem(read("ca", &config.ca)?)),
    ))
}

/// A worker's TLS towards egress: the CA to trust, the name to expect, its own certificate.
///
/// # Errors
/// A file cannot be read.
pub fn client(config: Option<&InternalTlsConfig>) -> anyhow::Result<Option<ClientTlsConfig>> {
    let Some(config) = config else {
        return Ok(None);
    };
    Ok(Some(
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("ca", &config.ca)?))
            .domain_name(config.server_name.clone())
            .identity(identity(config)?),
    ))
}
