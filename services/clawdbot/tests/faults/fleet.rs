//! A cluster of separate clawdbot processes — one ingress, one egress, two workers — on real
//! Redis and Postgres, with the mock OneBot API as the platform.

use std::path::PathBuf;
use std::time::Duration;

use clawdbot_testkit::{Persistence, PrivateRedis, TcpProxy, free_port};

use crate::common::{Backend, Clawdbot, Ports, Setup};

/// How long an entry stays pending before another worker reclaims it. Short, so that a case
/// ends in seconds; the recovery figures scale with it. `max_deliveries: 30` keeps the
/// in-process retry (`max_deliveries` x `reclaim_idle_secs`) at 60 s, as long as the faults.
pub const RECLAIM_IDLE_SECS: u64 = 2;

/// What a case changes from the default fleet.
#[derive(Default)]
pub struct FleetOptions {
    /// A Redis of the case's own (to kill and restart), persisting like this.
    pub private_redis: Option<Persistence>,
    /// Lines added to the OneBot account (indented by two).
    pub onebot: &'static str,
    /// Reach Postgres through a proxy the case can cut.
    pub postgres_proxy: bool,
}

/// The running fleet. Every process is killed on drop — before the Redis key space and the
/// Postgres schema are removed (fields drop in this order), so that none writes them again.
pub struct Fleet {
    pub ingress: Clawdbot,
    pub egress: Option<Clawdbot>,
    pub workers: Vec<Option<Clawdbot>>,
    pub postgres_proxy: Option<TcpProxy>,
    pub redis: Option<PrivateRedis>,
    pub config: PathBuf,
    pub ports: Ports,
    pub setup: Setup,
}

impl Fleet {
    pub async fn start(options: FleetOptions) -> Self {
        let setup = Setup::new(Backend::Cluster).await;
        let redis = match options.private_redis {
            Some(persistence) => Some(PrivateRedis::start_with(persistence).await),
            None => None,
        };
        let redis_url = redis
            .as_ref()
            .map(PrivateRedis::url)
            .unwrap_or_else(|| setup.redis_url());
        let ports = Ports::new();
        let extra = format!(
            "worker:\n  reclaim_idle_secs: {RECLAIM_IDLE_SECS}\n  block_ms: 200\n  max_deliveries: 30\n"
        );
        let config = setup.config_with(&redis_url, ports.egress, options.onebot, &extra);
        let postgres_proxy = if options.postgres_proxy {
            Some(route_postgres_through_a_proxy(&config).await)
        } else {
            None
        };
        let ingress = Clawdbot::start(&["ingress", "--platform", "onebot"], &config, &ports).await;
        let mut fleet = Self {
            setup,
            redis,
            postgres_proxy,
            config,
            ports,
            ingress,
            egress: None,
            workers: Vec::new(),
        };
        fleet.start_egress().await;
        for _ in 0..2 {
            let worker = fleet.start_worker().await;
            fleet.workers.push(Some(worker));
        }
        fleet
    }

    /// Starts (or restarts) the egress process on the fleet's egress port.
    pub async fn start_egress(&mut self) {
        let ports = Ports {
            metrics: free_port(),
            ..self.ports.clone()
        };
        self.egress = Some(Clawdbot::start(&["egress"], &self.config, &ports).await);
    }

    /// Starts the ingress again on its port (after it was killed or stopped).
    pub async fn restart_ingress(&mut self) {
        self.ingress = Clawdbot::start(
            &["ingress", "--platform", "onebot"],
            &self.config,
            &self.ports,
        )
        .await;
    }

    /// Starts one more worker process.
    pub async fn start_worker(&self) -> Clawdbot {
        let ports = Ports {
            metrics: free_port(),
            ..self.ports.clone()
        };
        Clawdbot::start(&["worker"], &self.config, &ports).await
    }

    /// The OneBot callback port.
    pub fn ingress_port(&self) -> u16 {
        self.ports.ingress
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut logs = format!("--- ingress\n{}", tail(&self.ingress.logs()));
        if let Some(egress) = &self.egress {
            logs += &format!("--- egress\n{}", tail(&egress.logs()));
        }
        for (n, worker) in self.workers.iter().enumerate() {
            if let Some(worker) = worker {
                logs += &format!("--- worker {n}\n{}", tail(&worker.logs()));
            }
        }
        logs
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n") + "\n"
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to `process`.
pub fn signal(process: &Clawdbot, signal: &str) {
    if let Some(pid) = process.child.id() {
        let _sent = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

/// Kills `process` with SIGKILL and reaps it.
pub async fn kill_9(process: &mut Clawdbot) {
    signal(process, "KILL");
    let _exited = tokio::time::timeout(Duration::from_secs(10), process.child.wait()).await;
}

/// Points the config's Postgres DSN at a proxy in front of the test Postgres.
async fn route_postgres_through_a_proxy(config: &std::path::Path) -> TcpProxy {
    let url = clawdbot_testkit::database_url();
    let address = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in the test database URL")
        .to_string();
    let target = tokio::net::lookup_host(&address)
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .expect("the test Postgres address");
    let proxy = TcpProxy::start(target).await;
    let text = std::fs::read_to_string(config).expect("config");
    let proxied = text.replace(&address, &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(text, proxied, "the DSN names {address}");
    std::fs::write(config, proxied).expect("config");
    proxy
}
