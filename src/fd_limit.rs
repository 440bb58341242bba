//! The open-file limit. Every proxied stream holds two descriptors (the
//! client's connection and the upstream's), so a soft limit of 1,024, the
//! usual default, would cap a sidecar at about 500 concurrent streams long
//! before memory does. Raised to the hard limit at start, as nginx's
//! `worker_rlimit_nofile` and Go's runtime do; the hard limit stays the
//! platform's decision.

/// Raises the soft limit to the hard one and logs the limit the process runs with.
pub fn raise_to_hard_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(open_files_limit = limit, "open-file limit"),
        Err(error) => tracing::warn!(
            error = %error,
            "cannot raise the open-file limit; running with the inherited one"
        ),
    }
}
