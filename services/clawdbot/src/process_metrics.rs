//! The process's own series, under the names every Prometheus client library uses
//! (`process_*`), read from `/proc/self` on Linux; elsewhere none are exported.

/// Linux's clock ticks per second for `/proc/self/stat` times (USER_HZ, 100 on every
/// mainstream architecture).
const TICKS_PER_SECOND: f64 = 100.0;
/// The page size `/proc/self/statm` counts in (4 KiB on x86-64 and arm64 Linux).
const PAGE_BYTES: f64 = 4096.0;

/// Describes the series (once, with the others).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory size in bytes."
    );
    describe_gauge!(
        "process_virtual_memory_bytes",
        Unit::Bytes,
        "Virtual memory size in bytes."
    );
    describe_counter!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "Total user and system CPU time spent in seconds."
    );
    describe_gauge!("process_open_fds", "Number of open file descriptors.");
    describe_gauge!("process_threads", "Number of OS threads in the process.");
    describe_gauge!(
        "process_start_time_seconds",
        Unit::Seconds,
        "Start time of the process since unix epoch in seconds."
    );
}

/// Samples the series now (called on the metrics server's upkeep tick).
pub fn sample() {
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut pages = statm
            .split_whitespace()
            .map(|v| v.parse::<f64>().unwrap_or(0.0));
        let (size, resident) = (pages.next().unwrap_or(0.0), pages.next().unwrap_or(0.0));
        metrics::gauge!("process_virtual_memory_bytes").set(size * PAGE_BYTES);
        metrics::gauge!("process_resident_memory_bytes").set(resident * PAGE_BYTES);
    }
    if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.to_string()))
    {
        // Fields after the command name, from field 3 (state) on: utime is field 14, stime 15,
        // num_threads 20, starttime 22 (proc(5)).
        let fields: Vec<&str> = stat.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (field(14), field(15)) {
            metrics::counter!("process_cpu_seconds_total")
                .absolute(((user + system) / TICKS_PER_SECOND) as u64);
        }
        if let Some(threads) = field(20) {
            metrics::gauge!("process_threads").set(threads);
        }
        if let (Some(started), Some(boot)) = (field(22), boot_time()) {
            metrics::gauge!("process_start_time_seconds").set(boot + started / TICKS_PER_SECOND);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
}

/// The boot time in seconds since the epoch (`btime` in `/proc/stat`).
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}
