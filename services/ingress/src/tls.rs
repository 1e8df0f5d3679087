//! HTTPS for ingress (rustls with the ring provider): the certificate and key from PEM files,
//! and a minimum protocol version — with `TLSv1.3`, a TLS 1.2 client is refused at the
//! handshake.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Builds the server config.
///
/// # Errors
/// Unreadable or invalid PEM files, or a key that does not match the certificate (naming the
/// file or the reason).
pub fn server_config(
    cert: &str,
    key: &str,
    min_version: &str,
) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|error| format!("`tls.cert` `{cert}`: {error}"))?
        .collect::<Result<_, _>>()
        .map_err(|error| format!("`tls.cert` `{cert}`: {error}"))?;
    if chain.is_empty() {
        return Err(format!("`tls.cert` `{cert}` holds no certificate"));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|error| format!("`tls.key` `{key}`: {error}"))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = if min_version == "TLSv1.2" {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .map_err(|error| format!("tls: {error}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|error| format!("tls: the key does not fit the certificate: {error}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
