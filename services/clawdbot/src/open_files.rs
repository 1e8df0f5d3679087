//! The open-file limit a listener needs: every connection is a file descriptor, and the soft
//! limit many systems start a process with (1024) is below `ingress.max_connections`. Past it
//! `accept` fails with "Too many open files", and so do the process's own connections to
//! Redis, Postgres and the platforms. So the soft limit is raised to the hard one at start (as
//! Go's runtime does), and where even the hard limit cannot hold the configured connections,
//! the connection cap is lowered to what it can hold and the operator is told which keys to
//! change.

/// Descriptors kept for everything but client connections: Redis, Postgres, the store file,
/// outgoing platform calls, logs.
const RESERVED: u64 = 256;

/// Raises the soft open-file limit to the hard one and returns how many client connections
/// the process can hold: `max_connections`, or fewer when the limit is lower (logged).
pub fn connection_budget(max_connections: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(error = %error, "cannot read or raise the open-file limit");
            return max_connections;
        }
    };
    let room = limit.saturating_sub(RESERVED).max(1);
    if (max_connections as u64) <= room {
        tracing::debug!(open_files = limit, "open-file limit");
        return max_connections;
    }
    let budget = usize::try_from(room).unwrap_or(max_connections);
    tracing::warn!(
        open_files = limit,
        max_connections,
        serving = budget,
        "the open-file limit cannot hold ingress.max_connections plus {RESERVED} for the \
         process itself: serving at most {budget} connections at once (raise the limit: \
         ulimit -n, LimitNOFILE, or lower ingress.max_connections)"
    );
    budget
}
