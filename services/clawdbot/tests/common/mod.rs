//! The harness of the end-to-end tests: a real Redis key space and Postgres schema (cluster
//! backend) or an SQLite file (embedded backend), the mock OneBot API, and clawdbot itself run
//! as real processes from the built binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clawdbot_store::sqlite::SqliteStore;
use clawdbot_store::{HistoryRecord, Store};
use clawdbot_testkit::mock::onebot::MockOneBot;
use clawdbot_testkit::{TestPostgres, TestRedis, free_port, onebot_signature};

/// The payloads other projects recorded, shared with the platforms' decoder tests.
#[path = "../../../platforms/src/external_fixtures.rs"]
pub mod external_fixtures;

pub const SELF_ID: i64 = 10001;
pub const SECRET: &str = "s3cr3t";
pub const TOKEN: &str = "tok";

/// Which backends a test runs clawdbot on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Redis Streams and Postgres.
    Cluster,
    /// The in-process bus and an SQLite file (`clawdbot up` with no Redis).
    Embedded,
    /// Redis Streams, history on MongoDB (SecantusDB here), the rest on Postgres.
    ClusterMongo,
    /// Redis Streams, history on a history sink of one's own (the example's, served by the
    /// test: `storage: {type: custom}`), the rest on Postgres.
    ClusterSink,
}

/// Everything one test owns.
pub struct Setup {
    pub backend: Backend,
    redis: Option<TestRedis>,
    postgres: Option<TestPostgres>,
    /// The MongoDB database history goes to (`ClusterMongo`), dropped with the setup.
    mongo: Option<clawdbot_store::mongo::MongoSettings>,
    /// The history sink's endpoint (`ClusterSink`).
    sink: Option<String>,
    pub mock: MockOneBot,
    pub dir: PathBuf,
    pub http: reqwest::Client,
}

/// Listen addresses of one clawdbot process.
#[derive(Debug, Clone)]
pub struct Ports {
    pub ingress: u16,
    pub egress: u16,
    pub metrics: u16,
}

impl Ports {
    pub fn new() -> Self {
        Self {
            ingress: free_port(),
            egress: free_port(),
            metrics: free_port(),
        }
    }
}

impl Setup {
    pub async fn new(backend: Backend) -> Self {
        let (redis, postgres) = match backend {
            Backend::Cluster | Backend::ClusterMongo | Backend::ClusterSink => (
                Some(TestRedis::new().await),
                Some(TestPostgres::new().await),
            ),
            Backend::Embedded => (None, None),
        };
        let mongo =
            (backend == Backend::ClusterMongo).then(|| clawdbot_store::mongo::MongoSettings {
                uri: clawdbot_testkit::store::mongodb_url(),
                write_concern: "majority".into(),
                database: format!("t_{}", clawdbot_testkit::random_suffix()),
                pool_size: 4,
                timeout: Duration::from_secs(5),
            });
        let mock = MockOneBot::start(Some(TOKEN)).await;
        let dir = std::env::temp_dir().join(format!(
            "clawdbot-test-{}",
            clawdbot_testkit::random_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            backend,
            redis,
            postgres,
            mongo,
            sink: (backend == Backend::ClusterSink)
                .then(clawdbot_testkit::store::example_history_sink),
            mock,
            dir,
            http: clawdbot_core::tls::http_client_builder()
                .build()
                .expect("http client"),
        }
    }

    /// The test's Redis (cluster backend only).
    pub fn redis(&self) -> &TestRedis {
        self.redis.as_ref().expect("a cluster-backend test")
    }

    /// The test's Postgres (cluster backend only).
    pub fn postgres(&self) -> &TestPostgres {
        self.postgres.as_ref().expect("a cluster-backend test")
    }

    /// The test Redis's URL, empty on the embedded backend.
    pub fn redis_url(&self) -> String {
        self.redis
            .as_ref()
            .map(|r| r.url.clone())
            .unwrap_or_default()
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.join("history.db")
    }

    /// Writes a config for this setup and returns its path: the OneBot account at the mock,
    /// the backends of `self.backend` (`redis_url` for the cluster one), egress on
    /// `egress_port`, and `extra` appended (YAML).
    pub fn config(&self, redis_url: &str, egress_port: u16, extra: &str) -> PathBuf {
        self.config_with(redis_url, egress_port, "", extra)
    }

    /// As [`Setup::config`], with `onebot_extra` (YAML lines indented by two) added to the
    /// OneBot account.
    pub fn config_with(
        &self,
        redis_url: &str,
        egress_port: u16,
        onebot_extra: &str,
        extra: &str,
    ) -> PathBuf {
        let backends = match (&self.redis, &self.postgres, &self.mongo) {
            (Some(redis), Some(postgres), None) if self.sink.is_some() => format!(
                "cluster:\n  redis: \"{redis_url}\"\n  key_prefix: \"{}\"\nstorage:\n  type: custom\n  endpoint: \"{}\"\n  control:\n    type: postgresql\n    dsn: \"{}\"\n    schema: \"{}\"\n    pool_size: 4\n",
                redis.prefix,
                self.sink.as_deref().unwrap_or_default(),
                postgres.url,
                postgres.schema
            ),
            (Some(redis), Some(postgres), Some(mongo)) => format!(
                "cluster:\n  redis: \"{redis_url}\"\n  key_prefix: \"{}\"\nstorage:\n  type: mongodb\n  uri: \"{}\"\n  database: \"{}\"\n  write_concern: \"majority\"\n  control:\n    type: postgresql\n    dsn: \"{}\"\n    schema: \"{}\"\n    pool_size: 4\n",
                redis.prefix, mongo.uri, mongo.database, postgres.url, postgres.schema
            ),
            (Some(redis), Some(postgres), None) => format!(
                "cluster:\n  redis: \"{redis_url}\"\n  key_prefix: \"{}\"\nstorage:\n  type: postgresql\n  dsn: \"{}\"\n  schema: \"{}\"\n  pool_size: 4\n",
                redis.prefix, postgres.url, postgres.schema
            ),
            _ => format!(
                "storage:\n  type: sqlite\n  path: \"{}\"\n",
                self.sqlite_path().display()
            ),
        };
        let text = format!(
            r#"onebot:
  self_id: {SELF_ID}
  secret: "{SECRET}"
  access_token: "{TOKEN}"
  api_root: "{api_root}"
  retry_backoff_ms: 20
{onebot_extra}{backends}egress:
  listen: "127.0.0.1:{egress_port}"
  endpoint: "http://127.0.0.1:{egress_port}"
{telemetry}{extra}"#,
            api_root = self.mock.api_root(),
            // A test that sets its own telemetry section keeps it whole.
            telemetry = if extra.contains("telemetry:") {
                ""
            } else {
                "telemetry:\n  log_format: text\n"
            },
        );
        let path = self.dir.join(format!(
            "clawdbot-{}.yaml",
            clawdbot_testkit::random_suffix()
        ));
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// The default config: the setup's backends, egress on `ports.egress`, quick reclaim.
    pub fn default_config(&self, ports: &Ports) -> PathBuf {
        self.config(
            &self.redis_url(),
            ports.egress,
            "worker:\n  reclaim_idle_secs: 1\n  block_ms: 200\n",
        )
    }

    /// Returns the history of one OneBot conversation, from whichever store the backend uses.
    pub async fn history(&self, conversation_id: &str) -> Vec<HistoryRecord> {
        self.history_of("onebot", conversation_id).await
    }

    /// The store the setup's clawdbot writes to (its Postgres schema, or its SQLite file).
    pub async fn store(&self) -> Arc<dyn Store> {
        if let (Some(sink), Some(postgres)) = (&self.sink, &self.postgres) {
            let history = clawdbot_store::sink::SinkHistory::connect(sink, Duration::from_secs(5))
                .await
                .expect("the history sink");
            return Arc::new(clawdbot_store::split::SplitStore::sink(
                history,
                postgres.store.clone(),
            ));
        }
        if let (Some(mongo), Some(postgres)) = (&self.mongo, &self.postgres) {
            let history = clawdbot_store::mongo::MongoHistory::connect(mongo)
                .await
                .expect("mongodb history");
            return Arc::new(clawdbot_store::split::SplitStore::mongo(
                history,
                postgres.store.clone(),
            ));
        }
        match &self.postgres {
            Some(postgres) => postgres.store.clone(),
            None => Arc::new(
                SqliteStore::open(&self.sqlite_path())
                    .await
                    .expect("sqlite history"),
            ),
        }
    }

    /// Waits (up to 15 s) until the conversation's history holds at least `count` rows that
    /// `keep` keeps; returns their texts, sorted.
    pub async fn wait_for_history_texts(
        &self,
        platform: &str,
        conversation_id: &str,
        count: usize,
        keep: impl Fn(&HistoryRecord) -> bool,
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut texts: Vec<String> = self
                .history_of(platform, conversation_id)
                .await
                .into_iter()
                .filter(|r| keep(r))
                .map(|r| r.text)
                .collect();
            texts.sort();
            if texts.len() >= count || tokio::time::Instant::now() > deadline {
                return texts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Returns the history of one conversation of `platform`'s default account.
    pub async fn history_of(&self, platform: &str, conversation_id: &str) -> Vec<HistoryRecord> {
        self.store()
            .await
            .conversation(platform, "default", conversation_id, 100)
            .await
            .expect("history")
    }

    /// Posts a OneBot event to the ingress on `port`, signed with `signature` (None: unsigned).
    pub async fn post(
        &self,
        port: u16,
        body: &str,
        signature: Option<&str>,
    ) -> reqwest::StatusCode {
        let mut request = self
            .http
            .post(format!("http://127.0.0.1:{port}/clawdbot/onebot/callback"))
            .header("content-type", "application/json")
            .header("x-self-id", SELF_ID.to_string())
            .body(body.to_string());
        if let Some(signature) = signature {
            request = request.header("x-signature", signature);
        }
        request.send().await.expect("ingress answers").status()
    }

    /// Posts a correctly signed group message from `user_id`.
    pub async fn post_group_message_from(
        &self,
        port: u16,
        group_id: i64,
        user_id: i64,
        message_id: i64,
        text: &str,
    ) -> reqwest::StatusCode {
        let body =
            clawdbot_testkit::onebot_group_message(SELF_ID, group_id, user_id, message_id, text);
        let signature = onebot_signature(SECRET, body.as_bytes());
        self.post(port, &body, Some(&signature)).await
    }

    /// Posts a correctly signed group message.
    pub async fn post_group_message(
        &self,
        port: u16,
        group_id: i64,
        message_id: i64,
        text: &str,
    ) -> reqwest::StatusCode {
        let body = clawdbot_testkit::onebot_group_message(SELF_ID, group_id, 42, message_id, text);
        let signature = onebot_signature(SECRET, body.as_bytes());
        self.post(port, &body, Some(&signature)).await
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _removed = std::fs::remove_dir_all(&self.dir);
        if let Some(settings) = self.mongo.take() {
            // A client of its own, on a side runtime: the test's runtime is blocked here.
            clawdbot_testkit::block_on_side(async move {
                if let Ok(history) = clawdbot_store::mongo::MongoHistory::connect(&settings).await {
                    let _dropped = history.drop_database().await;
                }
            });
        }
    }
}

/// A clawdbot process, killed on drop.
pub struct Clawdbot {
    pub child: tokio::process::Child,
    pub ports: Ports,
    log: PathBuf,
}

impl Clawdbot {
    /// Starts `clawdbot <args> --config <config>` and waits until it serves.
    pub async fn start(args: &[&str], config: &std::path::Path, ports: &Ports) -> Self {
        Self::start_with_env(args, config, ports, &[]).await
    }

    /// As [`Clawdbot::start`], with extra environment variables.
    pub async fn start_with_env(
        args: &[&str],
        config: &std::path::Path,
        ports: &Ports,
        env: &[(&str, &str)],
    ) -> Self {
        let log = config.with_extension(format!("{}.log", clawdbot_testkit::random_suffix()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"));
        command.args(args).arg("--config").arg(config);
        let role = args[0];
        let listen = match role {
            "egress" => Some(ports.egress),
            "worker" => None,
            _ => Some(ports.ingress),
        };
        if let Some(port) = listen {
            command.arg("--listen").arg(format!("127.0.0.1:{port}"));
        }
        command
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{}", ports.metrics));
        // Compiled skill components stay with the test (not in the user's ~/.cache).
        if let Some(dir) = config.parent() {
            command.env("CLAWDBOT_WASM_CACHE", dir.join("wasm-cache"));
        }
        command
            .envs(env.iter().copied())
            .env("CLAWDBOT_LOG", "info")
            .stdout(Stdio::from(log_file.try_clone().expect("log")))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let child = command.spawn().expect("clawdbot starts");
        let mut process = Self {
            child,
            ports: ports.clone(),
            log,
        };
        process.wait_serving(role).await;
        process
    }

    async fn wait_serving(&mut self, role: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let url = match role {
            "ingress" | "up" => format!("http://127.0.0.1:{}/readyz", self.ports.ingress),
            _ => format!("http://127.0.0.1:{}/metrics", self.ports.metrics),
        };
        let client = clawdbot_core::tls::http_client_builder()
            .build()
            .expect("http client");
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("clawdbot {role} exited with {status}:\n{}", self.logs());
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clawdbot {role} did not become ready:\n{}", self.logs());
    }

    /// Returns what the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took and the exit status.
    pub async fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        let started = std::time::Instant::now();
        if let Some(pid) = self.child.id() {
            let _sent = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("wait");
        (started.elapsed(), status)
    }
}

/// Prints a measurement and adds it to the test command's report (`CLAWDBOT_MEASURE_REPORT`,
/// printed at the end of scripts/test), so that the numbers an issue asks for are seen at
/// every run.
pub fn report_measure(line: &str) {
    eprintln!("{line}");
    if let Ok(path) = std::env::var("CLAWDBOT_MEASURE_REPORT") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
            let _written = writeln!(file, "{line}");
        }
    }
}

/// The resident set of process `pid` in MiB (from /proc), 0 when it is gone.
pub fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib / 1024)
}
