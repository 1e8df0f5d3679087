//! Graceful shutdown: one cancellation token that every long-running task selects on, and a
//! task tracker that `main` waits on (bounded by the grace period) before exiting.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shutdown signal and the tasks that must finish before the process exits.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// Returns a fresh, untriggered shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the token tasks select on; it is cancelled when shutdown starts.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Starts shutdown: every task selecting on the token stops taking new work.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Returns true once shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when shutdown has started.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Spawns a task that shutdown waits for.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(future)
    }

    /// Waits for every spawned task, at most `grace`. Returns false if the grace ran out.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Resolves on SIGTERM (what Kubernetes sends before killing a pod) or SIGINT (Ctrl-C in a
/// terminal). If the handlers cannot be installed it resolves never, and logs why.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
