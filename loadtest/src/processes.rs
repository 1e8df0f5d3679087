//! The clawdbot processes under test, started from the release binary and killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use clawdbot_testkit::mock::onebot::MockOneBot;
use clawdbot_testkit::mock::qq::MockQq;
use clawdbot_testkit::mock::wecom::MockWeCom;
use clawdbot_testkit::{TestPostgres, TestRedis, free_port};

use crate::{Args, Mode};

pub const SELF_ID: i64 = 10001;
pub const SECRET: &str = "loadtest-secret";
pub const TOKEN: &str = "loadtest-token";
pub const WECOM_TOKEN: &str = "loadtest";
pub const WECOM_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC";
pub const WECOM_AGENT_ID: i64 = 1_000_002;

pub const QQ_APP_ID: &str = "102000001";
pub const QQ_SECRET: &str = "loadtestQqBotSecret";

/// The mock platforms the processes talk to.
pub struct Mocks<'a> {
    pub onebot: &'a MockOneBot,
    pub wecom: &'a MockWeCom,
    pub qq: &'a MockQq,
}

/// The QQ bot at the mock.
fn qq_section(qq: &MockQq) -> String {
    format!(
        "qq: {{ app_id: \"{QQ_APP_ID}\", secret: \"{QQ_SECRET}\", api_base: \"{}\", token_url: \"{}\" }}\n",
        qq.api_base(),
        qq.token_url()
    )
}

/// The WeCom app at the mock. Every generated message comes from its own member, so WeCom's
/// per-member limit (held by egress, one shared-state call per send) never queues.
fn wecom_section(wecom: &MockWeCom) -> String {
    format!(
        "wechat_enterprise: {{ corp_id: \"wwmockcorp0000001\", secret: \"mock-secret\", agent_id: {WECOM_AGENT_ID}, token: \"{WECOM_TOKEN}\", encoding_aes_key: \"{WECOM_AES_KEY}\", api_base: \"{}\" }}\n",
        wecom.api_base()
    )
}

/// The running processes: (role, child).
pub struct Cluster {
    pub ingress_port: u16,
    /// From starting the first process to the ingress answering /readyz.
    pub ready_ms: u64,
    /// Resident memory of each process once ready, before any traffic (MiB).
    pub idle_rss: Vec<(String, f64)>,
    children: Vec<(String, Child)>,
    config: std::path::PathBuf,
    /// The embedded mode's history file, removed with its WAL files on drop.
    sqlite: Option<std::path::PathBuf>,
    /// The run's MongoDB database (`--history-store mongodb`), dropped on drop.
    mongo: Option<String>,
}

impl Cluster {
    pub async fn start(
        args: &Args,
        redis: &TestRedis,
        postgres: &TestPostgres,
        mocks: &Mocks<'_>,
    ) -> anyhow::Result<Self> {
        let (ingress_port, egress_port) = (free_port(), free_port());
        let config = std::env::temp_dir().join(format!(
            "clawdbot-loadtest-{}.yaml",
            clawdbot_testkit::random_suffix()
        ));
        let sqlite = (args.mode == Mode::Embedded).then(|| {
            std::env::temp_dir().join(format!(
                "clawdbot-loadtest-{}.db",
                clawdbot_testkit::random_suffix()
            ))
        });
        let mongo_database = format!("t_{}", clawdbot_testkit::random_suffix());
        let backends = if let Some(file) = &sqlite {
            format!("storage: {{ type: sqlite, path: \"{}\" }}", file.display())
        } else {
            let postgres_section = format!(
                "{{ type: postgresql, dsn: \"{}\", schema: \"{}\", pool_size: 4 }}",
                postgres.url, postgres.schema
            );
            let storage = match args.history_store {
                crate::HistoryStoreKind::Postgresql => postgres_section,
                crate::HistoryStoreKind::Mongodb => format!(
                    "{{ type: mongodb, uri: \"{}\", database: \"{mongo_database}\", control: {postgres_section} }}",
                    clawdbot_testkit::store::mongodb_url()
                ),
                crate::HistoryStoreKind::Custom => format!(
                    "{{ type: custom, endpoint: \"{}\", control: {postgres_section} }}",
                    clawdbot_testkit::store::example_history_sink()
                ),
            };
            format!(
                "cluster: {{ redis: \"{}\", key_prefix: \"{}\" }}\nstorage: {storage}",
                redis.url, redis.prefix
            )
        };
        std::fs::write(
            &config,
            format!(
                r#"onebot: {{ self_id: {SELF_ID}, secret: "{SECRET}", access_token: "{TOKEN}", api_root: "{api}" }}
{backends}
ingress: {{ listen: "127.0.0.1:{ingress_port}" }}
egress: {{ listen: "127.0.0.1:{egress_port}", endpoint: "http://127.0.0.1:{egress_port}" }}
history: {{ enabled: {history} }}
sandbox: {{ enabled: {sandbox} }}
telemetry: {{ log_format: text }}
worker: {{ wasm: {{ allow_unsigned: true }}{order_wait}{loop_guard} }}
{wecom_section}"#,
                api = mocks.onebot.api_root(),
                wecom_section = wecom_section(mocks.wecom) + &qq_section(mocks.qq),
                history = args.history,
                order_wait = args
                    .order_wait_secs
                    .map(|secs| format!(", order_wait_secs: {secs}"))
                    .unwrap_or_default(),
                loop_guard = args
                    .loop_guard_max_replies
                    .map(|max| format!(", loop_guard: {{ max_replies: {max} }}"))
                    .unwrap_or_default(),
                sandbox = args.path == crate::PathKind::Sandbox || args.mode != Mode::Cluster,
            ),
        )?;
        let mut cluster = Self {
            ingress_port,
            ready_ms: 0,
            idle_rss: Vec::new(),
            children: Vec::new(),
            config,
            sqlite,
            mongo: (args.history_store == crate::HistoryStoreKind::Mongodb
                && args.mode != Mode::Embedded)
                .then_some(mongo_database),
        };
        match args.mode {
            Mode::Up | Mode::Embedded => cluster.spawn(args, "up", &[])?,
            Mode::Cluster => {
                cluster.spawn(args, "egress", &[])?;
                let platform = match args.path {
                    crate::PathKind::Wecom => "wechat_enterprise",
                    crate::PathKind::Qq => "qq",
                    _ => "onebot",
                };
                cluster.spawn(args, "ingress", &["--platform", platform])?;
                for index in 0..args.workers {
                    cluster.spawn(
                        args,
                        "worker",
                        &["--consumer-name", &format!("loadtest-worker-{index}")],
                    )?;
                }
            }
        }
        let started = std::time::Instant::now();
        cluster.wait_ready().await?;
        cluster.ready_ms = started.elapsed().as_millis() as u64;
        // Give workers a moment to join their group, then take the idle footprint.
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.idle_rss = cluster.memory("VmRSS:");
        if let Some(archive) = &args.wasm_echo {
            cluster.load_skill(args, archive).await?;
        }
        Ok(cluster)
    }

    /// `clawdbot skill load ARCHIVE`, then gives every worker time to compile it (the load
    /// replaces the built-in `echo` with the component).
    async fn load_skill(&self, args: &Args, archive: &std::path::Path) -> anyhow::Result<()> {
        let output = Command::new(&args.bin)
            .args(["skill", "load"])
            .arg(archive)
            .arg("--config")
            .arg(&self.config)
            .output()
            .context("running `clawdbot skill load`")?;
        anyhow::ensure!(
            output.status.success(),
            "`clawdbot skill load {}` failed: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }

    fn spawn(&mut self, args: &Args, role: &str, extra: &[&str]) -> anyhow::Result<()> {
        let child = Command::new(&args.bin)
            .arg(role)
            .args(extra)
            .arg("--config")
            .arg(&self.config)
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .env("CLAWDBOT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting `{}` {role}", args.bin.display()))?;
        self.children.push((role.to_string(), child));
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/readyz", self.ingress_port);
        let client = clawdbot_core::tls::http_client_builder().build()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            for (role, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("clawdbot {role} exited early: {status}");
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("clawdbot did not become ready within 30 s")
    }

    /// Returns each process's peak resident set size in MiB (VmHWM), by role.
    pub fn peak_rss(&self) -> Vec<(String, f64)> {
        self.memory("VmHWM:")
    }

    /// Returns one `/proc/PID/status` memory line of each process in MiB, by role.
    fn memory(&self, field: &str) -> Vec<(String, f64)> {
        self.children
            .iter()
            .map(|(role, child)| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    .unwrap_or_default();
                let kib: f64 = status
                    .lines()
                    .find_map(|line| line.strip_prefix(field))
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0.0);
                (role.clone(), kib / 1024.0)
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _killed = child.kill();
            let _reaped = child.wait();
        }
        let _removed = std::fs::remove_file(&self.config);
        if let Some(database) = self.mongo.take() {
            clawdbot_testkit::block_on_side(async move {
                let settings = clawdbot_store::mongo::MongoSettings {
                    uri: clawdbot_testkit::store::mongodb_url(),
                    write_concern: "majority".into(),
                    database,
                    pool_size: 1,
                    timeout: std::time::Duration::from_secs(5),
                };
                if let Ok(history) = clawdbot_store::mongo::MongoHistory::connect(&settings).await {
                    let _dropped = history.drop_database().await;
                }
            });
        }
        if let Some(file) = &self.sqlite {
            for suffix in ["", "-wal", "-shm"] {
                let _removed = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}
