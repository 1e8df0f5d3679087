//! Liveness of the cluster's processes and `clawdbot status`.
//!
//! Every process writes a heartbeat to the bus every [`EVERY`] (expiring after [`TTL`]):
//! role, instance, version, start time and its allocator's numbers. `clawdbot status` reads
//! them, with the streams' length and per-group pending and lag, so that one command answers
//! for the whole cluster.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clawdbot_bus::{Presence, Stream, Streams};
use clawdbot_config::Config;
use clawdbot_core::shutdown::Shutdown;
use serde_json::{Value, json};

/// How often a process says it is alive.
const EVERY: Duration = Duration::from_secs(5);
/// How long a heartbeat counts; a process silent this long is gone.
const TTL: Duration = Duration::from_secs(15);

/// The allocator's view of this process (jemalloc is the global allocator).
fn memory() -> Value {
    use tikv_jemalloc_ctl::{epoch, stats};
    // Statistics are cached until the epoch advances.
    let _advanced = epoch::advance();
    let read = |value: Result<usize, tikv_jemalloc_ctl::Error>| {
        value.map_or(Value::Null, |bytes| json!(bytes))
    };
    json!({
        "allocated": read(stats::allocated::read()),
        "resident": read(stats::resident::read()),
        "retained": read(stats::retained::read()),
        "allocator": "jemalloc",
        // What jemalloc applied (MALLOC_CONF is read by the unprefixed build), not just what
        // the environment says.
        "options": jemalloc_options(),
        "malloc_conf": std::env::var("MALLOC_CONF").unwrap_or_default(),
        "transparent_hugepages": transparent_hugepages(),
    })
}

/// The options jemalloc runs with, from its own JSON statistics (`jemalloc.opt`): the ones an
/// operator tunes through MALLOC_CONF.
fn jemalloc_options() -> Value {
    let mut printed = Vec::new();
    let mut options = tikv_jemalloc_ctl::stats_print::Options::default();
    options.json_format = true;
    options.skip_merged_arenas = true;
    options.skip_per_arena = true;
    options.skip_bin_size_classes = true;
    options.skip_large_size_classes = true;
    options.skip_mutex_statistics = true;
    if tikv_jemalloc_ctl::stats_print::stats_print(&mut printed, options).is_err() {
        return Value::Null;
    }
    let all: Value = serde_json::from_slice(&printed).unwrap_or_default();
    let opt = &all["jemalloc"]["opt"];
    let mut chosen = serde_json::Map::new();
    for key in [
        "background_thread",
        "metadata_thp",
        "thp",
        "narenas",
        "dirty_decay_ms",
        "muzzy_decay_ms",
        "tcache",
    ] {
        if !opt[key].is_null() {
            chosen.insert(key.to_string(), opt[key].clone());
        }
    }
    Value::Object(chosen)
}

/// `key:value,…` of the options jemalloc applied, for one table cell.
fn options_line(options: &Value) -> String {
    options.as_object().map_or_else(
        || "-".to_string(),
        |map| {
            map.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}:{}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

/// The kernel's THP mode: the bracketed word of `/sys/kernel/mm/transparent_hugepage/enabled`.
fn transparent_hugepages() -> String {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .ok()
        .and_then(|text| Some(text.split('[').nth(1)?.split(']').next()?.to_string()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Writes this process's heartbeat until shutdown.
pub async fn beat(
    bus: Arc<dyn Presence>,
    role: &'static str,
    instance: String,
    skills: clawdbot_worker::loaded_skills::ServedVersions,
    shutdown: Shutdown,
) {
    let started_ms = clawdbot_core::now_ms();
    let key = format!("{role}/{instance}");
    loop {
        let value = json!({
            "role": role,
            "instance": instance,
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "started_ms": started_ms,
            "seen_ms": clawdbot_core::now_ms(),
            "memory": memory(),
            // The loaded skills this process serves, by version (`clawdbot skill list`).
            "skills": skills.snapshot(),
        });
        if let Err(error) = bus.heartbeat(&key, &value.to_string(), TTL).await {
            tracing::debug!(error = %error, "heartbeat not written");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

fn mib(value: &Value) -> String {
    value.as_u64().map_or_else(
        || "-".to_string(),
        |bytes| format!("{:.1} MiB", bytes as f64 / 1048576.0),
    )
}

/// Returns the live processes' heartbeats, by role and instance; `None` without a cluster
/// Redis (an embedded process's heartbeats never leave it).
pub async fn heartbeats(config: &Config) -> anyhow::Result<Option<Vec<Value>>> {
    match cluster_bus(config).await? {
        Some(bus) => Ok(Some(heartbeats_on(&bus).await?)),
        None => Ok(None),
    }
}

/// The cluster's Redis bus, `None` without `cluster.redis`.
async fn cluster_bus(config: &Config) -> anyhow::Result<Option<clawdbot_bus::redis::RedisBus>> {
    match &config.core.cluster {
        Some(cluster) => Ok(Some(
            clawdbot_bus::redis::RedisBus::connect(&cluster.redis, &cluster.key_prefix).await?,
        )),
        None => Ok(None),
    }
}

async fn heartbeats_on(bus: &clawdbot_bus::redis::RedisBus) -> anyhow::Result<Vec<Value>> {
    let mut beats: Vec<Value> = bus
        .heartbeats()
        .await?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str(&v).ok())
        .collect();
    beats.sort_by_key(|b| {
        (
            b["role"].as_str().unwrap_or_default().to_string(),
            b["instance"].as_str().unwrap_or_default().to_string(),
        )
    });
    Ok(beats)
}

/// The heartbeats an embedded `clawdbot up` serves on its `metrics.listen` (`GET /status`).
async fn local_heartbeats(config: &Config) -> anyhow::Result<Vec<Value>> {
    let listen = &config.core.metrics.listen;
    // A wildcard listener is reached on loopback.
    let address = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let url = format!("http://{address}/status");
    let client = clawdbot_core::tls::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let answer = client.get(&url).send().await.map_err(|error| {
        anyhow::anyhow!(
            "no clawdbot answers at {url} (metrics.listen {listen}): {error}. Start one with `clawdbot up`, or point at a cluster's config (one with `cluster.redis`)"
        )
    })?;
    if !answer.status().is_success() {
        bail!("{url} answered {}", answer.status());
    }
    Ok(answer.json().await?)
}

/// `clawdbot status [--memory]`.
pub async fn show(config: &Config, with_memory: bool) -> anyhow::Result<()> {
    let bus = cluster_bus(config).await?;
    let beats = match &bus {
        Some(bus) => heartbeats_on(bus).await?,
        None => local_heartbeats(config).await?,
    };
    let now = clawdbot_core::now_ms();
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let secs = |ms: i64| format!("{}s", ms.max(0) / 1000);
    if with_memory {
        crate::cli_out::say!(
            "{:<8} {:<28} {:>12} {:>12} {:>12}  {:<8} {:<10} {:<14} JEMALLOC OPTIONS",
            "ROLE",
            "INSTANCE",
            "ALLOCATED",
            "RESIDENT",
            "RETAINED",
            "THP",
            "ALLOCATOR",
            "MALLOC_CONF"
        );
    } else {
        crate::cli_out::say!(
            "{:<8} {:<28} {:<8} {:>8} {:>10}",
            "ROLE",
            "INSTANCE",
            "VERSION",
            "UPTIME",
            "LAST SEEN"
        );
    }
    for beat in &beats {
        let (role, instance) = (text(&beat["role"]), text(&beat["instance"]));
        if with_memory {
            let memory = &beat["memory"];
            let malloc_conf = match memory["malloc_conf"].as_str() {
                Some("") | None => "(unset)".to_string(),
                Some(conf) => conf.to_string(),
            };
            crate::cli_out::say!(
                "{role:<8} {instance:<28} {:>12} {:>12} {:>12}  {:<8} {:<10} {malloc_conf:<14} {}",
                mib(&memory["allocated"]),
                mib(&memory["resident"]),
                mib(&memory["retained"]),
                text(&memory["transparent_hugepages"]),
                text(&memory["allocator"]),
                options_line(&memory["options"])
            );
        } else {
            let started = beat["started_ms"].as_i64().unwrap_or(now);
            let seen = beat["seen_ms"].as_i64().unwrap_or(now);
            crate::cli_out::say!(
                "{role:<8} {instance:<28} {:<8} {:>8} {:>10}",
                text(&beat["version"]),
                secs(now - started),
                format!("{} ago", secs(now - seen))
            );
        }
    }
    if beats.is_empty() {
        crate::cli_out::say!("(no process has reported in the last {} s)", TTL.as_secs());
    }
    crate::cli_out::say!();
    let Some(bus) = bus else {
        crate::cli_out::say!(
            "(embedded: the streams live inside that process; clawdbot_stream_length and the worker series are on /metrics)"
        );
        return Ok(());
    };
    crate::cli_out::say!("{:<8} {:>10}  GROUPS (pending / lag)", "STREAM", "LENGTH");
    for stream in [Stream::Inbound, Stream::Outbound, Stream::Dead] {
        let stats = bus.stats(stream).await?;
        let groups: Vec<String> = stats
            .groups
            .iter()
            .map(|(name, pending, lag)| format!("{name} {pending}/{lag}"))
            .collect();
        crate::cli_out::say!(
            "{:<8} {:>10}  {}",
            stream.as_str(),
            stats.length,
            groups.join(", ")
        );
    }
    Ok(())
}
