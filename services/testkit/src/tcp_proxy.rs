//! A TCP proxy in front of a shared service, to take it away on purpose: `cut` drops every
//! connection and refuses new ones (as a stopped server would), `restore` lets them through
//! again. Tests use it to stop "Postgres" for a while without touching the server other tests
//! share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    cut: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

/// The running proxy; it stops when dropped.
pub struct TcpProxy {
    pub port: u16,
    state: Arc<State>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding 127.0.0.1:`port` (a free one) to `target`.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State::default());
        let accepting = tokio::spawn(accept(listener, target, state.clone()));
        Self {
            port,
            state,
            accepting,
        }
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Ok(mut connections) = self.state.connections.lock() {
            for connection in connections.drain(..) {
                connection.abort();
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, state: Arc<State>) {
    while let Ok((mut client, _)) = listener.accept().await {
        if state.cut.load(Ordering::SeqCst) {
            // Refused: closed at once, like a connection to a stopped server.
            drop(client);
            continue;
        }
        let forwarding = tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(target).await {
                let _copied = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        if let Ok(mut connections) = state.connections.lock() {
            connections.retain(|c| !c.is_finished());
            connections.push(forwarding.abort_handle());
        }
    }
}
