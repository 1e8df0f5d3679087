//! The clawdbot processes under test, started from the release binary and killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use clawdbot_testkit::mock::onebot::MockOneBot;
use clawdbot_testkit::{TestPostgres, TestRedis, free_port};

use crate::{Args, Mode};

pub const SELF_ID: i64 = 10001;
pub const SECRET: &str = "loadtest-secret";
pub const TOKEN: &str = "loadtest-token";

/// The running processes: (role, child).
pub struct Cluster {
    pub ingress_port: u16,
    children: Vec<(String, Child)>,
    config: std::path::PathBuf,
}

impl Cluster {
    pub async fn start(
        args: &Args,
        redis: &TestRedis,
        postgres: &TestPostgres,
        mock: &MockOneBot,
    ) -> anyhow::Result<Self> {
        let (ingress_port, egress_port) = (free_port(), free_port());
        let config = std::env::temp_dir().join(format!(
            "clawdbot-loadtest-{}.yaml",
            clawdbot_testkit::random_suffix()
        ));
        std::fs::write(
            &config,
            format!(
                r#"onebot: {{ self_id: {SELF_ID}, secret: "{SECRET}", access_token: "{TOKEN}", api_root: "{api}" }}
cluster: {{ redis: "{redis_url}", key_prefix: "{prefix}" }}
storage: {{ type: postgresql, dsn: "{dsn}", schema: "{schema}", pool_size: 4 }}
ingress: {{ listen: "127.0.0.1:{ingress_port}" }}
egress: {{ listen: "127.0.0.1:{egress_port}", endpoint: "http://127.0.0.1:{egress_port}" }}
history: {{ enabled: {history} }}
telemetry: {{ log_format: text }}
"#,
                api = mock.api_root(),
                redis_url = redis.url,
                prefix = redis.prefix,
                dsn = postgres.url,
                schema = postgres.schema,
                history = args.history,
            ),
        )?;
        let mut cluster = Self {
            ingress_port,
            children: Vec::new(),
            config,
        };
        match args.mode {
            Mode::Up => cluster.spawn(args, "up", &[])?,
            Mode::Cluster => {
                cluster.spawn(args, "egress", &[])?;
                cluster.spawn(args, "ingress", &["--platform", "onebot"])?;
                for index in 0..args.workers {
                    cluster.spawn(
                        args,
                        "worker",
                        &["--consumer-name", &format!("loadtest-worker-{index}")],
                    )?;
                }
            }
        }
        cluster.wait_ready().await?;
        Ok(cluster)
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                // Give workers a moment to join their group.
                tokio::time::sleep(Duration::from_millis(500)).await;
                return Ok(());
            }
            for (role, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("clawdbot {role} exited early: {status}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("clawdbot did not become ready within 30 s")
    }

    /// Returns each process's peak resident set size in MiB (VmHWM), by role.
    pub fn peak_rss(&self) -> Vec<(String, f64)> {
        self.children
            .iter()
            .map(|(role, child)| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    .unwrap_or_default();
                let kib: f64 = status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
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
    }
}
