//! A throwaway redis-server of one's own, for tests that stop Redis on purpose.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How a private Redis persists what it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing survives a restart.
    None,
    /// Append-only file, fsync once a second (Redis's default when AOF is on).
    AofEverySec,
    /// Append-only file, fsync before every answer.
    AofAlways,
}

/// A redis-server child process on a free port, killed on drop; its data directory is removed
/// then too.
pub struct PrivateRedis {
    pub port: u16,
    persistence: Persistence,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts `redis-server` (from PATH) with persistence off and waits until it answers.
    ///
    /// # Panics
    /// `redis-server` is not installed or does not come up.
    pub async fn start() -> Self {
        Self::start_with(Persistence::None).await
    }

    /// Starts `redis-server` persisting as `persistence`.
    ///
    /// # Panics
    /// `redis-server` is not installed or does not come up.
    pub async fn start_with(persistence: Persistence) -> Self {
        let dir = std::env::temp_dir().join(format!("clawdbot-redis-{}", crate::random_suffix()));
        std::fs::create_dir_all(&dir).expect("redis data dir");
        let mut redis = Self {
            port: crate::free_port(),
            persistence,
            dir,
            child: None,
        };
        redis.launch().await;
        redis
    }

    /// Starts the server again on the same port and data (after [`PrivateRedis::kill`]).
    ///
    /// # Panics
    /// It does not come up.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    async fn launch(&mut self) {
        let (appendonly, fsync) = match self.persistence {
            Persistence::None => ("no", "everysec"),
            Persistence::AofEverySec => ("yes", "everysec"),
            Persistence::AofAlways => ("yes", "always"),
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", appendonly])
            .args(["--appendfsync", fsync])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start redis-server (is it installed?): {error}")
            });
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if self.answers().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    /// True once the server answers PING (it has loaded its data by then).
    async fn answers(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }

    /// Returns its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _killed = child.kill();
            let _reaped = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _removed = std::fs::remove_dir_all(&self.dir);
    }
}
