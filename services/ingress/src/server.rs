//! The HTTP(S) server behind every public listener (callbacks, notify, sandbox, metrics), with
//! the limits that keep slow or numerous clients from exhausting it:
//!
//! - **Headers** must arrive within `header_read_timeout` (hyper's own timer). hyper starts it
//!   whenever it waits for a request head, so it also closes a keep-alive connection that sits
//!   idle that long.
//! - **Bodies** must arrive within `body_read_timeout` (tower-http's body timeout): the
//!   slowest accepted rate is `max_body_bytes / body_read_timeout`. A late body is answered 408.
//! - **Connections**: at most `max_connections` are served at once; past that, new ones wait in
//!   the kernel's listen backlog (logged, at most once a minute, and counted) rather than being
//!   accepted into a process that cannot serve them. Each connection is asked to close
//!   gracefully after `max_connection_age`, so clients re-spread across replicas.
//! - **TLS handshakes** share the header timeout.
//!
//! On shutdown every connection finishes its request in flight (up to 10 s), then closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use clawdbot_core::shutdown::Shutdown;
use clawdbot_core::telemetry::HTTP_CONNECTIONS_WAITED_TOTAL;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How long connections get to finish their requests after shutdown began.
const DRAIN: Duration = Duration::from_secs(10);
/// How long to pause accepting after an accept error (out of file descriptors, say), so the
/// loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The most often "connection limit reached" is logged.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(60);

/// The limits of one listener (config: `ingress.*`, see `clawdbot-config`).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connection_age: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connection_age: Duration::from_secs(600),
        }
    }
}

impl ServerLimits {
    /// The limits `ingress.*` configures (every public listener uses them).
    pub fn from_config(ingress: &clawdbot_config::IngressConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(ingress.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(ingress.body_read_timeout_secs),
            max_connections: ingress.max_connections,
            max_connection_age: Duration::from_secs(ingress.max_connection_age_secs),
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) within `limits`, until
/// `shutdown`; then drains the connections. `name` labels logs and metrics (`ingress`,
/// `metrics`).
///
/// # Errors
/// None today once listening; the signature leaves room for fatal listener errors.
pub async fn serve(
    name: &'static str,
    router: Router,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ServerLimits,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read_timeout,
    ));
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(http_builder(&limits));
    let mut limit_logged: Option<tokio::time::Instant> = None;
    tracing::info!(
        listener = name,
        address = %listener
            .local_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string()),
        https = tls.is_some(),
        max_connections = limits.max_connections,
        "serving"
    );
    loop {
        let Some(permit) = place(name, &permits, &limits, &mut limit_logged, &shutdown).await
        else {
            break;
        };
        let Some((stream, peer)) = accept(name, &listener, &shutdown).await else {
            break;
        };
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            limits: limits.clone(),
            peer,
            shutdown: shutdown.clone(),
            _permit: permit,
        };
        match &tls {
            Some(acceptor) => {
                tokio::spawn(connection.run_tls(acceptor.clone(), stream));
            }
            None => {
                tokio::spawn(connection.run(stream));
            }
        }
    }
    // Every connection holds a permit until it closes: all of them back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after the drain period"
        );
    }
    tracing::info!(listener = name, "stopped");
    Ok(())
}

/// HTTP/1 with the header timeout (hyper's own timer); HTTP/2 (offered over TLS) with
/// keep-alive pings at the same period and at most 100 streams a connection.
fn http_builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_read_timeout))
        .max_concurrent_streams(100);
    builder
}

/// Waits for a place under `max_connections`, logging (at most once a minute) and counting
/// when there is none; `None` once shutdown begins.
async fn place(
    name: &'static str,
    permits: &Arc<Semaphore>,
    limits: &ServerLimits,
    logged: &mut Option<tokio::time::Instant>,
    shutdown: &Shutdown,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    metrics::counter!(HTTP_CONNECTIONS_WAITED_TOTAL, "listener" => name).increment(1);
    if logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_EVERY) {
        *logged = Some(tokio::time::Instant::now());
        tracing::warn!(
            listener = name,
            max_connections = limits.max_connections,
            "connection limit reached: new connections wait in the listen backlog \
             until one closes (raise max_connections, or add replicas)"
        );
    }
    tokio::select! {
        () = shutdown.cancelled() => None,
        permit = permits.clone().acquire_owned() => permit.ok(),
    }
}

/// Accepts the next connection; `None` once shutdown begins. Accept errors (out of file
/// descriptors, a connection reset before accept) pause the loop briefly: the listener itself
/// is fine.
async fn accept(
    name: &'static str,
    listener: &TcpListener,
    shutdown: &Shutdown,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(error) => {
                    tracing::warn!(listener = name, error = %error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: ServerLimits,
    peer: SocketAddr,
    shutdown: Shutdown,
    /// Returned when the connection closes, which frees a place under `max_connections`.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves the connection after its TLS handshake, which gets the header timeout.
    async fn run_tls(self, acceptor: tokio_rustls::TlsAcceptor, stream: tokio::net::TcpStream) {
        let peer = self.peer;
        let handshake =
            tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream));
        match handshake.await {
            Ok(Ok(stream)) => self.run(stream).await,
            Ok(Err(error)) => tracing::debug!(peer = %peer, error = %error, "tls handshake failed"),
            Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
        }
    }

    async fn run<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            router,
            builder,
            limits,
            peer,
            shutdown,
            _permit,
        } = self;
        // What `into_make_service_with_connect_info` would add: the access policy reads it.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let aged = tokio::time::sleep(limits.max_connection_age);
        tokio::pin!(aged);
        let mut closing = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        // Header timeouts, resets, malformed requests: the client's doing.
                        tracing::debug!(peer = %peer, error = %error, "connection ended");
                    }
                    return;
                }
                () = &mut aged, if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = shutdown.cancelled(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
