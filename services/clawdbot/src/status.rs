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
        "malloc_conf": std::env::var("MALLOC_CONF").unwrap_or_default(),
        "transparent_hugepages": transparent_hugepages(),
    })
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

/// `clawdbot status [--memory]`.
pub async fn show(config: &Config, with_memory: bool) -> anyhow::Result<()> {
    let Some(bus) = cluster_bus(config).await? else {
        bail!(
            "`clawdbot status` reads a cluster's Redis (`cluster.redis`); an embedded `clawdbot up` shows its numbers on /metrics"
        );
    };
    let beats = heartbeats_on(&bus).await?;
    let now = clawdbot_core::now_ms();
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let secs = |ms: i64| format!("{}s", ms.max(0) / 1000);
    if with_memory {
        crate::cli_out::say!(
            "{:<8} {:<28} {:>12} {:>12} {:>12}  {:<10} MALLOC_CONF",
            "ROLE",
            "INSTANCE",
            "ALLOCATED",
            "RESIDENT",
            "RETAINED",
            "THP"
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
            crate::cli_out::say!(
                "{role:<8} {instance:<28} {:>12} {:>12} {:>12}  {:<10} {}",
                mib(&memory["allocated"]),
                mib(&memory["resident"]),
                mib(&memory["retained"]),
                text(&memory["transparent_hugepages"]),
                text(&memory["malloc_conf"])
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
