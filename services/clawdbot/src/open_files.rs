//! The open-file limit a listener needs: every connection is a file descriptor, and the soft
//! limit many systems start a process with (1024) is below `ingress.max_connections`. Past it
//! `accept` fails with "Too many open files" and valid requests go unanswered, so the soft
//! limit is raised to the hard one at start (as Go's runtime does), and a hard limit still too
//! low for the configured connections is said once, with the key to change.

/// Descriptors kept for everything but client connections: Redis, Postgres, the store file,
/// outgoing platform calls, logs.
const RESERVED: u64 = 256;

/// Raises the soft open-file limit to the hard one and warns when it cannot hold
/// `max_connections` plus what the process needs besides.
pub fn raise_for(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let needed = max_connections as u64 + RESERVED;
            if limit < needed {
                tracing::warn!(
                    open_files = limit,
                    max_connections,
                    "the open-file limit is below ingress.max_connections plus {RESERVED}: \
                     lower ingress.max_connections or raise the limit (ulimit -n, LimitNOFILE)"
                );
            } else {
                tracing::debug!(open_files = limit, "open-file limit");
            }
        }
        Err(error) => tracing::warn!(error = %error, "cannot read or raise the open-file limit"),
    }
}
