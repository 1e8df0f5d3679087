//! The TLS crypto provider for outgoing HTTPS (platform APIs, skills' HTTP calls). The build
//! has one provider, ring (no aws-lc C build); HTTP clients are built with
//! `rustls-no-provider` and need it installed as the process default before the first client.

/// Installs ring as the process's default crypto provider, once; later calls do nothing.
/// Call it before building an HTTP client (every `reqwest::Client` needs it, even for http).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which serves as well.
        let _already = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Returns a `reqwest` client builder with the crypto provider installed.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}
