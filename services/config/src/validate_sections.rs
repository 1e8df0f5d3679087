//! The checks of the non-platform sections, one function per section, each naming the key, the
//! allowed values and what it got.

use std::net::SocketAddr;

use crate::sections::{CoreConfig, StorageConfig};

/// Returns every problem in `config`'s sections.
pub(crate) fn problems(config: &CoreConfig) -> Vec<String> {
    let mut problems = Problems::default();
    if let Some(internal) = &config.internal_tls {
        problems
            .0
            .extend(internal.validate(&config.egress.endpoint));
    }
    performance(&mut problems, config);
    security(&mut problems, config);
    worker(&mut problems, config);
    cluster_and_storage(&mut problems, config);
    ingress(&mut problems, config);
    egress(&mut problems, config);
    let history = &config.history;
    problems.range("history.linger_ms", history.linger_ms, 0, 10_000);
    problems.range("history.batch_size", history.batch_size as u64, 1, 10_000);
    if let Err(problem) = history.retention() {
        problems.push(problem);
    }
    problems.listen("metrics.listen", &config.metrics.listen);
    if !(0.0..=1.0).contains(&config.telemetry.sampling_ratio) {
        problems.push(format!(
            "`telemetry.sampling_ratio` must be between 0 and 1, got `{}`",
            config.telemetry.sampling_ratio
        ));
    }
    problems.0
}

fn performance(problems: &mut Problems, config: &CoreConfig) {
    let performance = &config.performance;
    if performance.io_timeout.is_some() && performance.io_timeout_secs.is_some() {
        problems.push(
            "`performance.io_timeout` (ms) and `performance.io_timeout_secs` say the same thing: keep one"
                .into(),
        );
    }
    problems.range(
        "performance.worker_threads",
        performance.worker_threads as u64,
        0,
        256,
    );
    if let Some(size) = performance.max_queue_size {
        problems.range("performance.max_queue_size", size, 100, 100_000_000);
    }
    if let Some(batch) = &performance.batch {
        problems.range("performance.batch.size", batch.size as u64, 1, 1000);
        problems.range(
            "performance.batch.interval_ms",
            batch.interval_ms,
            0,
            10_000,
        );
    }
}

fn security(problems: &mut Problems, config: &CoreConfig) {
    if let Some(tls) = &config.tls
        && !matches!(tls.min_version.as_str(), "TLSv1.2" | "TLSv1.3")
    {
        problems.push(format!(
            "`tls.min_version` must be `TLSv1.2` or `TLSv1.3`, got `{}`",
            tls.min_version
        ));
    }
    for (index, entry) in config.security.allowed_ips.iter().enumerate() {
        if entry.parse::<ipnet::IpNet>().is_err() && entry.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!(
                "`security.allowed_ips[{index}]` must be an address or a CIDR range like `10.0.0.0/8`, got `{entry}`"
            ));
        }
    }
}

fn worker(problems: &mut Problems, config: &CoreConfig) {
    let worker = &config.worker;
    problems.range("worker.batch_size", worker.batch_size as u64, 1, 1000);
    problems.range("worker.block_ms", worker.block_ms, 1, 60_000);
    problems.range(
        "worker.reclaim_idle_secs",
        worker.reclaim_idle_secs,
        1,
        86400,
    );
    problems.range("worker.max_deliveries", worker.max_deliveries, 1, 100);
    if worker.order_wait_secs != 0 && worker.order_wait_secs <= worker.reclaim_idle_secs {
        problems.push(format!(
            "`worker.order_wait_secs` ({}) must be longer than `worker.reclaim_idle_secs` ({}), so that a message held by a dead worker is answered before the next one (or 0: no order)",
            worker.order_wait_secs, worker.reclaim_idle_secs
        ));
    }
    problems.range("worker.order_wait_secs", worker.order_wait_secs, 0, 3600);
    problems.range("worker.concurrency", worker.concurrency as u64, 1, 10_000);
    let guard = &worker.loop_guard;
    problems.range(
        "worker.loop_guard.max_replies",
        guard.max_replies,
        0,
        10_000,
    );
    problems.range(
        "worker.loop_guard.window_secs",
        guard.window_secs,
        1,
        86_400,
    );
    problems.range(
        "worker.loop_guard.pause_secs",
        guard.pause_secs,
        1,
        7 * 86_400,
    );
    let wasm = &worker.wasm;
    problems.range("worker.wasm.timeout_ms", wasm.timeout_ms, 10, 60_000);
    problems.range("worker.wasm.memory_mb", wasm.memory_mb, 1, 4096);
    problems.range(
        "worker.wasm.max_instances",
        u64::from(wasm.max_instances),
        1,
        1000,
    );
    for (index, key) in wasm.trusted_keys.iter().enumerate() {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(key.trim());
        if decoded.map(|k| k.len()) != Ok(32) {
            problems.push(format!(
                "`worker.wasm.trusted_keys[{index}]`: `{key}` is not an Ed25519 public key (32 bytes, base64, as `clawdbot skill keygen` prints)"
            ));
        }
    }
    for (pool, skills) in &worker.pools {
        problems.name(&format!("worker.pools.{pool}"), pool);
        if pool == "skills" || pool == "history" {
            problems.push(format!(
                "`worker.pools.{pool}`: `{pool}` is taken by a built-in group; pick another name"
            ));
        }
        if skills.is_empty() {
            problems.push(format!("`worker.pools.{pool}` lists no skills"));
        }
    }
    for (name, settings) in &config.skills {
        problems
            .0
            .extend(settings.validate(&format!("skills.{name}")));
    }
}

fn cluster_and_storage(problems: &mut Problems, config: &CoreConfig) {
    if let Some(cluster) = config.cluster.as_ref().filter(|c| c.enabled) {
        if !(cluster.redis.starts_with("redis://") || cluster.redis.starts_with("rediss://")) {
            problems.push(format!(
                "`cluster.redis` must be a redis:// or rediss:// URL, got `{}`",
                cluster.redis
            ));
        }
        problems.name("cluster.key_prefix", &cluster.key_prefix);
    }
    let clustered = config.cluster.as_ref().is_some_and(|c| c.enabled);
    if let Some(storage) = &config.storage {
        storage_section(problems, "storage", storage, clustered);
    }
}

fn storage_section(problems: &mut Problems, path: &str, storage: &StorageConfig, clustered: bool) {
    match storage {
        StorageConfig::Postgresql {
            dsn,
            pool_size,
            schema,
        } => {
            if !(dsn.starts_with("postgres://") || dsn.starts_with("postgresql://")) {
                problems.push(format!(
                    "`{path}.dsn` must be a postgres:// URL, got `{dsn}`"
                ));
            }
            problems.range(&format!("{path}.pool_size"), *pool_size as u64, 1, 256);
            problems.name(&format!("{path}.schema"), schema);
        }
        StorageConfig::Sqlite { path: file } if file.trim().is_empty() => {
            problems.push(format!(
                "`{path}.path` must name the SQLite file, got an empty string"
            ));
        }
        StorageConfig::Sqlite { .. } => {}
        StorageConfig::Mongodb {
            uri,
            pool_size,
            timeout_ms,
            write_concern,
            control,
            ..
        } => {
            if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
                problems.push(format!(
                    "`{path}.uri` must be a mongodb:// URL, got `{}`",
                    uri.split('@').next_back().unwrap_or_default()
                ));
            }
            if uri.starts_with("mongodb+srv://") {
                problems.push(format!(
                    "`{path}.uri`: mongodb+srv:// needs a DNS SRV lookup this build leaves out; list the hosts in a mongodb:// URI"
                ));
            }
            if write_concern.trim().is_empty() {
                problems.push(format!(
                    "`{path}.write_concern` must be `majority`, a member count or a tag set name"
                ));
            }
            problems.range(&format!("{path}.pool_size"), u64::from(*pool_size), 1, 1024);
            problems.range(&format!("{path}.timeout_ms"), *timeout_ms, 100, 120_000);
            control_section(problems, path, "mongodb", control.as_deref(), clustered);
        }
        StorageConfig::Custom {
            endpoint,
            timeout_ms,
            control,
        } => {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                problems.push(format!(
                    "`{path}.endpoint` must be the history sink's http:// or https:// address, got `{endpoint}`"
                ));
            }
            problems.range(&format!("{path}.timeout_ms"), *timeout_ms, 100, 120_000);
            control_section(problems, path, "custom", control.as_deref(), clustered);
        }
    }
}

/// `storage.control` of a store that holds history only (`kind`: mongodb, custom).
fn control_section(
    problems: &mut Problems,
    path: &str,
    kind: &str,
    control: Option<&StorageConfig>,
    clustered: bool,
) {
    match control {
        Some(StorageConfig::Mongodb { .. } | StorageConfig::Custom { .. }) => problems.push(format!(
            "`{path}.control` holds skills, secrets, audit and logs, which need a relational store: `postgresql` or `sqlite`"
        )),
        Some(control) => {
            storage_section(problems, &format!("{path}.control"), control, clustered);
        }
        None if clustered => problems.push(format!(
            "`{path}.control`: with `type: {kind}` only history goes there; skills, switches, secrets, audit and logs stay on a relational store every process shares — add `control: {{type: postgresql, dsn: …}}`"
        )),
        None => {}
    }
}

fn ingress(problems: &mut Problems, config: &CoreConfig) {
    let ingress = &config.ingress;
    problems.listen("ingress.listen", &ingress.listen);
    for (key, value, min, max) in [
        (
            "max_body_bytes",
            ingress.max_body_bytes as u64,
            1024,
            64 << 20,
        ),
        (
            "dedupe_window_secs",
            ingress.dedupe_window_secs,
            1,
            7 * 86400,
        ),
        ("max_stream_len", ingress.max_stream_len, 100, 100_000_000),
        (
            "header_read_timeout_secs",
            ingress.header_read_timeout_secs,
            1,
            300,
        ),
        (
            "body_read_timeout_secs",
            ingress.body_read_timeout_secs,
            1,
            3600,
        ),
        (
            "max_connections",
            ingress.max_connections as u64,
            1,
            1_000_000,
        ),
        (
            "max_connection_age_secs",
            ingress.max_connection_age_secs,
            1,
            86_400,
        ),
    ] {
        problems.range(&format!("ingress.{key}"), value, min, max);
    }
}

fn egress(problems: &mut Problems, config: &CoreConfig) {
    let egress = &config.egress;
    problems.listen("egress.listen", &egress.listen);
    if !(egress.endpoint.starts_with("http://") || egress.endpoint.starts_with("https://")) {
        problems.push(format!(
            "`egress.endpoint` must be an http:// or https:// URL, got `{}`",
            egress.endpoint
        ));
    }
    problems.range("egress.lease_secs", egress.lease_secs, 3, 3600);
    problems.range(
        "egress.result_ttl_secs",
        egress.result_ttl_secs,
        60,
        30 * 86400,
    );
}

/// The problems found so far, with the checks every section uses.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    fn range(&mut self, path: &str, value: u64, min: u64, max: u64) {
        if !(min..=max).contains(&value) {
            self.push(format!(
                "`{path}` must be between {min} and {max}, got `{value}`"
            ));
        }
    }

    fn listen(&mut self, path: &str, value: &str) {
        if value.parse::<SocketAddr>().is_err() {
            self.push(format!(
                "`{path}` must be an address like `0.0.0.0:8080`, got `{value}`"
            ));
        }
    }

    fn name(&mut self, path: &str, value: &str) {
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.push(format!(
                "`{path}` must be letters, digits, `_` or `-`, got `{value}`"
            ));
        }
    }
}
