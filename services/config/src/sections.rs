//! The non-platform sections: where the bus and the store are, and how each role listens,
//! batches and retries. Every default is what a single-machine deployment wants.

use serde::Deserialize;

/// Every section except the platforms'.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// Redis for the bus; absent means the embedded in-process bus.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// Where history goes.
    #[serde(default)]
    pub storage: Option<StorageConfig>,
    #[serde(default)]
    pub ingress: IngressConfig,
    #[serde(default)]
    pub egress: EgressConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Per-skill switches, permissions and options (`permissions.yaml` in a config directory).
    #[serde(default)]
    pub skills: std::collections::BTreeMap<String, crate::skills::SkillSettings>,
    /// Who counts as an admin.
    #[serde(default)]
    pub permissions: crate::skills::PermissionsConfig,
    /// The knobs users tune; each maps onto the setting it names (see [`PerformanceConfig`]).
    #[serde(default)]
    pub performance: PerformanceConfig,
    /// HTTPS on ingress; plain HTTP when absent (a TLS-terminating proxy in front).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Mutual TLS between workers and egress (gRPC); plain when absent.
    #[serde(default)]
    pub internal_tls: Option<InternalTlsConfig>,
    /// Network restrictions.
    #[serde(default)]
    pub security: SecurityConfig,
    /// URL of a skill index (JSON list of name/version/description/download) for
    /// `clawdbot skill list --remote`.
    #[serde(default)]
    pub skill_index: Option<String>,
}

impl CoreConfig {
    /// The top-level keys of these sections.
    pub const KEYS: &'static [&'static str] = &[
        "cluster",
        "storage",
        "ingress",
        "egress",
        "worker",
        "history",
        "metrics",
        "skills",
        "permissions",
        "skill_index",
        "security",
        "tls",
        "internal_tls",
        "performance",
        "telemetry",
    ];

    /// Returns every problem in these sections (see `validate_sections`).
    pub fn validate(&self) -> Vec<String> {
        crate::validate_sections::problems(self)
    }
}

/// `cluster`: the shared Redis.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `false` runs embedded as if the section were absent (the product description's
    /// `cluster.enabled`); default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `redis://host:port/db`; required when enabled.
    #[serde(default)]
    pub redis: String,
    /// Prefix of every Redis key; two deployments on one Redis use two prefixes.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Accepted for the product description's `cluster.nodes`, and only reported: clawdbot's
    /// processes find each other through Redis (heartbeats, consumer groups), not a node list.
    #[serde(default)]
    pub nodes: Vec<String>,
}

fn default_key_prefix() -> String {
    "clawdbot".to_string()
}

/// `storage`: where history goes, tagged by `type`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    Postgresql {
        /// `postgres://user:password@host:5432/db` (or `key=value` pairs).
        dsn: String,
        /// Connections per process.
        #[serde(default = "default_pool_size")]
        pool_size: usize,
        /// The schema clawdbot's tables live in.
        #[serde(default = "default_schema")]
        schema: String,
    },
    Sqlite {
        /// The database file (created when missing).
        path: String,
    },
    /// History on MongoDB (the high-volume plan); everything else on `control`.
    Mongodb {
        /// `mongodb://user:pass@host1:27017,host2:27017/clawdbot?replicaSet=rs0`.
        uri: String,
        /// `majority` (the default), a member count, or a tag set name.
        #[serde(default = "default_write_concern")]
        write_concern: String,
        /// The database when the URI names none.
        #[serde(default = "default_mongo_database")]
        database: String,
        /// Connections per process (the driver's `maxPoolSize`).
        #[serde(default = "default_mongo_pool_size")]
        pool_size: u32,
        /// Server selection and connection timeout, in ms.
        #[serde(default = "default_mongo_timeout_ms")]
        timeout_ms: u64,
        /// Where the small, transactional concerns live — skills and switches, secrets, audit,
        /// logs — which every process reads: `postgresql` (required in a cluster) or `sqlite`
        /// (one machine; the default there, `./clawdbot.db`).
        control: Option<Box<StorageConfig>>,
    },
    /// History on a store of your own: a process serving the `HistorySink` gRPC service
    /// (`proto/clawdbot/v1/history_sink.proto`, any language); everything else on `control`.
    Custom {
        /// The sink's address, `http://host:port`.
        endpoint: String,
        /// How long one call to the sink may take, in ms (connecting too).
        #[serde(default = "default_mongo_timeout_ms")]
        timeout_ms: u64,
        /// Where skills and switches, secrets, audit and logs live, as for `mongodb`:
        /// `postgresql` (required in a cluster) or `sqlite` (one machine; the default there).
        control: Option<Box<StorageConfig>>,
    },
}

fn default_write_concern() -> String {
    "majority".to_string()
}
fn default_mongo_database() -> String {
    "clawdbot".to_string()
}
fn default_mongo_pool_size() -> u32 {
    16
}
fn default_mongo_timeout_ms() -> u64 {
    5_000
}

fn default_pool_size() -> usize {
    8
}
fn default_schema() -> String {
    "public".to_string()
}

/// `ingress`: the HTTP server platforms call.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    /// Where the ingress role (and `up`) listens; loopback unless set.
    pub listen: String,
    /// Larger bodies get 413 before any parsing.
    pub max_body_bytes: usize,
    /// How long a platform message id is remembered, so that the platform's retries of it are
    /// answered without publishing again.
    pub dedupe_window_secs: u64,
    /// Inbound stream length past which ingress answers 503 (the platform retries later)
    /// instead of letting Redis memory grow without bound.
    pub max_stream_len: u64,
    /// A request's headers must arrive within this; also how long an idle keep-alive
    /// connection is kept open.
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive within this (answered 408 otherwise).
    pub body_read_timeout_secs: u64,
    /// Connections served at once by each listener; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection is asked to close (after its request in flight) once this old, so clients
    /// re-spread over replicas.
    pub max_connection_age_secs: u64,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            // Loopback unless the config says otherwise, with or without a file: a deployment
            // opens its listeners on purpose (the shipped configs, Helm and compose do).
            listen: "127.0.0.1:8080".to_string(),
            max_body_bytes: 1 << 20,
            dedupe_window_secs: 600,
            max_stream_len: 1_000_000,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_connections: 10_000,
            max_connection_age_secs: 600,
        }
    }
}

/// `egress`: the gRPC delivery service.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Where the egress role listens.
    pub listen: String,
    /// Where workers reach egress (a Service name in Kubernetes).
    pub endpoint: String,
    /// A delivery's lease: renewed every third of it while the delivery runs and until its
    /// outcome is recorded, so it only decides how soon the replies of a process that died
    /// mid-delivery can be sent by another (the recovery time after an egress crash).
    pub lease_secs: u64,
    /// How long a delivered reply's result is remembered (its idempotency window).
    pub result_ttl_secs: u64,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:6771".to_string(),
            endpoint: "http://127.0.0.1:6771".to_string(),
            lease_secs: 10,
            result_ttl_secs: 3600,
        }
    }
}

/// `worker`: the skill consumer loop.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Entries read per XREADGROUP.
    pub batch_size: usize,
    /// How long one read waits for new entries.
    pub block_ms: u64,
    /// Entries pending longer than this (their worker died or stalled) are reclaimed.
    pub reclaim_idle_secs: u64,
    /// Deliveries after which an entry goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// Messages handled at once per worker process.
    pub concurrency: usize,
    /// How long a message waits for the message before it in its conversation to be answered
    /// (replies keep the order of their messages across workers); past it, it is answered
    /// anyway (logged, `clawdbot_worker_order_skipped_total`). Longer than
    /// `reclaim_idle_secs`, so that a message held by a dead worker is reclaimed and answered
    /// first. 0 turns ordering off.
    pub order_wait_secs: u64,
    /// Consumer name in the group; defaults to `<host>-<pid>`.
    pub consumer_name: Option<String>,
    /// Skill pools: heavy skills (an AI skill, say) in a consumer group and Deployment of their
    /// own, so that they scale and fail apart. Pool name → its skills; every other skill runs in
    /// the default pool (group `skills`). A worker serves one pool (`--pool NAME`).
    pub pools: std::collections::BTreeMap<String, Vec<String>>,
    /// Skills loaded as WebAssembly components (`clawdbot skill load`).
    pub wasm: WasmConfig,
    /// Cuts bot-to-bot ping-pong (see [`LoopGuardConfig`]).
    pub loop_guard: LoopGuardConfig,
}

/// `worker.loop_guard`: when one sender in one conversation triggers more than `max_replies`
/// skills within `window_secs`, that is taken for another bot answering ours (two bots whose
/// replies trigger each other); the bot then stops answering that sender there for
/// `pause_secs`, logs it once and counts it (`clawdbot_worker_loops_cut_total`). People rarely
/// ask twenty things a minute; bots in a loop do it in seconds. `max_replies: 0` is off.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoopGuardConfig {
    /// Skills one sender may trigger in one conversation within `window_secs` (0: off).
    pub max_replies: u64,
    /// The window `max_replies` is counted in.
    pub window_secs: u64,
    /// How long the bot then stops answering that sender there.
    pub pause_secs: u64,
}

impl Default for LoopGuardConfig {
    fn default() -> Self {
        Self {
            max_replies: 20,
            window_secs: 60,
            pause_secs: 300,
        }
    }
}

/// `worker.wasm`: the sandbox component skills run in, and whose signatures are trusted.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Ed25519 public keys (base64, as `clawdbot skill keygen` prints them) whose signed skills
    /// workers run.
    pub trusted_keys: Vec<String>,
    /// Run unsigned skills, or ones signed by untrusted keys. Unset: yes on one machine (no
    /// `cluster`: whoever can load a skill there owns the machine and its data file anyway),
    /// no in a cluster, where only `trusted_keys` signatures run.
    pub allow_unsigned: Option<bool>,
    /// Set when loading: unsigned skills run only because this is one machine and
    /// `allow_unsigned` was left unset (said aloud where a skill is loaded).
    #[serde(skip)]
    pub unsigned_by_default: bool,
    /// How long one call may run before it is stopped and answered with an error.
    pub timeout_ms: u64,
    /// The most memory one skill instance may use.
    pub memory_mb: u64,
    /// Instances running at once per worker; more calls wait their turn.
    pub max_instances: u32,
    /// Where compiled components are kept for every worker on the machine (unset:
    /// `$CLAWDBOT_WASM_CACHE`, else `$XDG_CACHE_HOME/clawdbot/wasm`, else
    /// `~/.cache/clawdbot/wasm`).
    pub cache_dir: Option<String>,
    /// Not a key: the program that compiles components in a child process
    /// (`PROGRAM compile-wasm …`), which the clawdbot binary sets to itself.
    #[serde(skip)]
    pub compile_in: Option<std::path::PathBuf>,
}

impl WasmConfig {
    /// Whether unsigned skills run: as set, else as resolved when the config was loaded (one
    /// machine yes, a cluster no), else no.
    pub fn allows_unsigned(&self) -> bool {
        self.allow_unsigned.unwrap_or(false)
    }
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            trusted_keys: Vec::new(),
            allow_unsigned: None,
            unsigned_by_default: false,
            timeout_ms: 2000,
            memory_mb: 64,
            max_instances: 32,
            cache_dir: None,
            compile_in: None,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 200,
            block_ms: 1000,
            reclaim_idle_secs: 30,
            max_deliveries: 5,
            concurrency: 256,
            order_wait_secs: 60,
            consumer_name: None,
            pools: std::collections::BTreeMap::new(),
            wasm: WasmConfig::default(),
            loop_guard: LoopGuardConfig::default(),
        }
    }
}

/// `history`: the writer of the message history.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Write the history (every message in and every reply out) at all.
    pub enabled: bool,
    /// Rows per INSERT, at most.
    pub batch_size: usize,
    /// How long the writer gathers rows before writing a partial batch: fewer, larger INSERTs
    /// under load, at the price of history lagging replies by this much.
    pub linger_ms: u64,
    /// How long rows are kept: `180d`, `12h` (units d, h, m, s); absent keeps them for ever.
    /// Every worker deletes older rows at start and then hourly.
    pub retention: Option<String>,
}

impl HistoryConfig {
    /// `retention` as a duration: `Ok(None)` keeps history for ever.
    ///
    /// # Errors
    /// Not a number followed by d, h, m or s (the message names the key and the value).
    pub fn retention(&self) -> Result<Option<std::time::Duration>, String> {
        let Some(text) = self.retention.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let bad = || {
            format!(
                "`history.retention` must be a number and a unit (d, h, m or s), like `180d`, got `{text}`"
            )
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "d" => number.checked_mul(86_400),
            "h" => number.checked_mul(3_600),
            "m" => number.checked_mul(60),
            "s" => Some(number),
            _ => None,
        }
        .filter(|&seconds| seconds > 0)
        .ok_or_else(bad)?;
        Ok(Some(std::time::Duration::from_secs(seconds)))
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            batch_size: 1000,
            linger_ms: 500,
            retention: None,
        }
    }
}

/// `metrics`: the Prometheus endpoint.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics` (and `/status`) is served; loopback unless set.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9091".to_string(),
        }
    }
}

/// `telemetry`: traces and logs.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP gRPC endpoint (Jaeger's 4317); unset means no trace export.
    pub otlp_endpoint: Option<String>,
    /// Share of traces kept, 0 to 1.
    pub sampling_ratio: f64,
    /// `json` (what Kubernetes collects) or `text`.
    pub log_format: LogFormat,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sampling_ratio: 1.0,
            log_format: LogFormat::Json,
        }
    }
}

/// How logs are written to stdout.
#[derive(
    Debug, Clone, Copy, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// `security`: who may reach ingress.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Addresses or CIDR ranges allowed to call ingress (callbacks, the sandbox, the notify
    /// API); empty means everyone. `/healthz` and `/readyz` stay open for probes.
    pub allowed_ips: Vec<String>,
    /// Take the client address from the first `X-Forwarded-For` entry (behind a reverse proxy
    /// you run; otherwise anyone could claim any address).
    pub trust_forwarded_for: bool,
}

impl SecurityConfig {
    /// Returns the allowed ranges (single addresses as /32 or /128); invalid entries are
    /// reported by validation and skipped here.
    pub fn allowed_networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_ips
            .iter()
            .filter_map(|entry| {
                entry.parse::<ipnet::IpNet>().ok().or_else(|| {
                    entry
                        .parse::<std::net::IpAddr>()
                        .ok()
                        .map(ipnet::IpNet::from)
                })
            })
            .collect()
    }
}

/// `tls`: the certificate ingress serves HTTPS with.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain.
    pub cert: String,
    /// PEM file with the private key.
    pub key: String,
    /// `TLSv1.3` (default: older clients are refused) or `TLSv1.2`.
    #[serde(default = "default_tls_min")]
    pub min_version: String,
}

/// `internal_tls`: one private CA for the cluster. Egress serves gRPC with `cert`/`key` and
/// accepts only clients whose certificate `ca` signed; workers present theirs and check that
/// egress's certificate, signed by `ca`, names `server_name`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InternalTlsConfig {
    /// PEM file with the CA certificate.
    pub ca: String,
    /// PEM file with this process's certificate chain.
    pub cert: String,
    /// PEM file with this process's private key.
    pub key: String,
    /// The name egress's certificate must carry (default `egress`).
    #[serde(default = "default_internal_server_name")]
    pub server_name: String,
}

fn default_internal_server_name() -> String {
    "egress".to_string()
}

impl InternalTlsConfig {
    /// Returns the problems: unreadable files, a plain-HTTP egress endpoint.
    pub fn validate(&self, endpoint: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, path) in [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)] {
            if std::fs::metadata(path).is_err() {
                problems.push(format!("`internal_tls.{key}`: cannot read `{path}`"));
            }
        }
        if !endpoint.starts_with("https://") {
            problems.push(format!(
                "`egress.endpoint` must be https:// with `internal_tls`, got `{endpoint}`"
            ));
        }
        problems
    }
}

fn default_tls_min() -> String {
    "TLSv1.3".to_string()
}

/// `performance`: the knobs users already tune, each honoured by the setting it maps to.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceConfig {
    /// Threads of the async runtime; 0 (default) means one per core.
    pub worker_threads: usize,
    /// Timeout of a worker's call to egress, which covers a platform call with its retries
    /// (default 60 s).
    pub io_timeout_secs: Option<u64>,
    /// The same in milliseconds, as the product description writes it (`io_timeout: 5000`);
    /// one of the two.
    pub io_timeout: Option<u64>,
    /// Inbound stream length past which ingress answers 503 so the platform retries later
    /// (overrides `ingress.max_stream_len`).
    pub max_queue_size: Option<u64>,
    /// Batching of stream reads and history writes (overrides `worker.batch_size`,
    /// `history.batch_size` and `history.linger_ms`); `enabled: false` handles one message at a
    /// time and writes history at once.
    pub batch: Option<BatchConfig>,
}

/// `performance.batch`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Off: one message per read and one row per write (lowest latency, least throughput).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Messages per read and rows per history write.
    #[serde(default = "default_batch_size")]
    pub size: usize,
    /// How long history gathers a partial batch (`interval`, as the product description
    /// writes it, is the same key).
    #[serde(default = "default_batch_interval", alias = "interval")]
    pub interval_ms: u64,
}

fn default_true() -> bool {
    true
}
fn default_batch_size() -> usize {
    200
}
fn default_batch_interval() -> u64 {
    200
}

impl CoreConfig {
    /// What the config says that clawdbot accepts but does not act on, for `config check` and
    /// the start log.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(cluster) = self.cluster.as_ref().filter(|c| !c.nodes.is_empty()) {
            notes.push(format!(
                "`cluster.nodes` ({} listed) is not used: clawdbot's processes find each other through Redis (`cluster.redis`: heartbeats and consumer groups), so nodes join and leave without a list",
                cluster.nodes.len()
            ));
        }
        let history_elsewhere = match &self.storage {
            Some(StorageConfig::Mongodb { control, .. }) => Some(("mongodb", "MongoDB", control)),
            Some(StorageConfig::Custom { control, .. }) => {
                Some(("custom", "the history sink", control))
            }
            _ => None,
        };
        if let Some((kind, name, control)) = history_elsewhere {
            let rest = match control.as_deref() {
                Some(StorageConfig::Postgresql { .. }) => "PostgreSQL (`storage.control`)",
                Some(_) => "SQLite (`storage.control`)",
                None => "SQLite ./clawdbot.db (no `storage.control`: one machine only)",
            };
            notes.push(format!(
                "`storage.type: {kind}`: history goes to {name}; skills, switches, secrets, audit and logs go to {rest}"
            ));
        }
        notes
    }

    /// Applies what other settings imply (called once, after loading): `cluster.enabled:
    /// false`, `performance` onto the settings it names, the one-machine skill trust.
    pub fn apply_derived_settings(&mut self) {
        // `cluster.enabled: false` is the embedded mode.
        if self.cluster.as_ref().is_some_and(|c| !c.enabled) {
            self.cluster = None;
        }
        let wasm = &mut self.worker.wasm;
        if wasm.allow_unsigned.is_none() {
            wasm.unsigned_by_default = self.cluster.is_none();
            wasm.allow_unsigned = Some(wasm.unsigned_by_default);
        }
        if let Some(ms) = self.performance.io_timeout {
            // Whole seconds, at least one.
            self.performance.io_timeout_secs = Some(ms.div_ceil(1000).max(1));
        }
        if let Some(size) = self.performance.max_queue_size {
            self.ingress.max_stream_len = size;
        }
        if let Some(batch) = &self.performance.batch {
            let (size, linger) = if batch.enabled {
                (batch.size, batch.interval_ms)
            } else {
                (1, 0)
            };
            self.worker.batch_size = size;
            self.history.batch_size = size;
            self.history.linger_ms = linger;
        }
    }
}
