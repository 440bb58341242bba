//! Live reload (SIGHUP, or `POST /reload` on the admin listener): the file is
//! read and validated again; when it is valid, what can change safely takes
//! effect for new exchanges without dropping a connection, and what cannot
//! keeps its running value and is reported as needing a restart. An invalid
//! file changes nothing.
//!
//! Safe to change: log level and access-log switch, sampler and ratio (the
//! `outcome` sampler's table too), routes, correlation headers, Sentry
//! settings and redaction lists, the GenAI switch, the request limits (header and body sizes, response and
//! idle timeouts, `max_connections`, `max_concurrent_requests`). Everything
//! else is bound at start: sockets, TLS files, the upstream and its client,
//! the exporter, the log outputs, the resource, the runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::{self, Config};
use crate::metrics::ReloadMetrics;
use crate::redact::Redactor;
use crate::server::Limits;
use crate::settings::{Foundation, Settings};
use crate::telemetry::logging::LogControl;
use crate::telemetry::SentryClient;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The file was valid and is running; these keys changed in it but keep
    /// their running values until a restart.
    Reloaded { restart_needed: Vec<&'static str> },
    /// The file was not valid (`file:line:column: key ...`); nothing changed.
    Rejected { error: String },
}

/// Reloads the running sidecar's configuration from its file.
pub struct Reloader {
    path: PathBuf,
    /// The configuration running now; a reload replaces it whole.
    running: Mutex<Config>,
    settings: Arc<ArcSwap<Settings>>,
    foundation: Foundation,
    sentry: Arc<Mutex<Option<Arc<SentryClient>>>>,
    sentry_drops: Arc<std::sync::atomic::AtomicU64>,
    limits: Limits,
    logs: Option<LogControl>,
    metrics: ReloadMetrics,
}

/// What the reloader changes and builds with.
pub struct ReloadParts {
    pub settings: Arc<ArcSwap<Settings>>,
    pub foundation: Foundation,
    /// The Sentry client running now, replaced when `[sentry]` changes.
    pub sentry: Arc<Mutex<Option<Arc<SentryClient>>>>,
    pub sentry_drops: Arc<std::sync::atomic::AtomicU64>,
    pub limits: Limits,
    pub logs: Option<LogControl>,
    pub metrics: ReloadMetrics,
}

impl Reloader {
    pub fn new(path: PathBuf, running: Config, parts: ReloadParts) -> Self {
        Self {
            path,
            running: Mutex::new(running),
            settings: parts.settings,
            foundation: parts.foundation,
            sentry: parts.sentry,
            sentry_drops: parts.sentry_drops,
            limits: parts.limits,
            logs: parts.logs,
            metrics: parts.metrics,
        }
    }

    /// Reads the file again and applies what can change. Blocking (file
    /// read, maybe a Sentry client's start): call it off the runtime's
    /// worker threads.
    pub fn reload(&self) -> ReloadOutcome {
        let mut new = match config::load_file(&self.path) {
            Ok(config) => config,
            Err(e) => {
                self.metrics.failed();
                tracing::error!(error = %e, "configuration reload rejected; the running configuration stays");
                return ReloadOutcome::Rejected {
                    error: e.to_string(),
                };
            }
        };
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let restart_needed = keep_bound_at_start(&running, &mut new);
        self.apply(&running, &new);
        *running = new;
        self.metrics.succeeded();
        for key in &restart_needed {
            tracing::warn!(
                key,
                "changed in the file but bound at start: the running value stays until a restart"
            );
        }
        tracing::info!(
            restart_needed = restart_needed.len(),
            "configuration reloaded"
        );
        ReloadOutcome::Reloaded { restart_needed }
    }

    fn apply(&self, running: &Config, new: &Config) {
        let redactor = Arc::new(Redactor::new(&new.sentry));
        let sentry = {
            let mut current = self.sentry.lock().unwrap_or_else(|e| e.into_inner());
            if new.sentry != running.sentry {
                let next = SentryClient::start(new, redactor.clone(), self.sentry_drops.clone())
                    .map(Arc::new);
                if let Some(old) = std::mem::replace(&mut *current, next) {
                    // Flushing may take the client's shutdown timeout; the
                    // exchanges that still hold it finish with it.
                    std::thread::spawn(move || old.close());
                }
            }
            current.clone()
        };
        let settings = Settings::build(new, &self.foundation, redactor, sentry.as_ref());
        self.settings.store(Arc::new(settings));
        self.limits.set(&new.listener);
        if let Some(logs) = &self.logs {
            if let Err(e) = logs.apply(&new.logging) {
                tracing::warn!(error = %e, "log level not changed");
            }
        }
    }
}

/// Puts the running values of the keys bound at start back into `new`, and
/// names those the file changed.
fn keep_bound_at_start(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut keep = |key: &'static str, changed_here: bool| {
        if changed_here {
            changed.push(key);
        }
    };
    macro_rules! bound {
        ($($field:ident).+ => $key:literal) => {
            keep($key, running.$($field).+ != new.$($field).+);
            new.$($field).+ = running.$($field).+.clone();
        };
    }
    bound!(listener.address => "listener.address");
    bound!(listener.tls => "listener.tls");
    bound!(listener.header_read_timeout => "listener.header_read_timeout");
    bound!(listener.shutdown_delay => "listener.shutdown_delay");
    bound!(listener.drain_timeout => "listener.drain_timeout");
    bound!(admin => "admin");
    bound!(upstream.url => "upstream.url");
    bound!(upstream.connect_timeout => "upstream.connect_timeout");
    bound!(upstream.ca_file => "upstream.ca_file");
    bound!(upstream.pool_idle_timeout => "upstream.pool_idle_timeout");
    bound!(upstream.pool_max_idle => "upstream.pool_max_idle");
    bound!(upstream.probe_interval => "upstream.probe_interval");
    bound!(service => "service");
    bound!(tracing.enabled => "tracing.enabled");
    bound!(otlp => "otlp");
    bound!(tracing.exporters => "tracing.exporters");
    bound!(tracing.otlp => "tracing.otlp");
    bound!(metrics.exporters => "metrics.exporters");
    bound!(metrics.export_interval => "metrics.export_interval");
    bound!(metrics.temporality => "metrics.temporality");
    bound!(metrics.otlp => "metrics.otlp");
    bound!(logging.exporters => "logging.exporters");
    bound!(logging.otlp => "logging.otlp");
    bound!(logging.format => "logging.format");
    bound!(logging.file => "logging.file");
    bound!(metrics.max_models => "metrics.max_models");
    bound!(runtime => "runtime");
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        config::load_str(text, "test.toml", |_| None).unwrap()
    }

    #[test]
    fn keys_bound_at_start_keep_their_running_values() {
        let running = load("[upstream]\nurl = \"http://a:1\"\n[tracing]\nratio = 1.0\n");
        let mut new = load(
            "[upstream]\nurl = \"http://b:2\"\nresponse_timeout = \"9s\"\n\
             [tracing]\nratio = 0.25\n[admin]\naddress = \"127.0.0.1:9999\"\n",
        );
        let changed = keep_bound_at_start(&running, &mut new);
        assert_eq!(changed, vec!["admin", "upstream.url"]);
        assert_eq!(new.upstream.url, running.upstream.url);
        assert_eq!(new.admin, running.admin);
        // Safe to change: taken from the new file.
        assert_eq!(new.tracing.ratio, 0.25);
        assert_eq!(new.upstream.response_timeout.as_secs(), 9);
    }

    #[test]
    fn an_unchanged_file_needs_no_restart() {
        let running = load("[service]\nname = \"x\"\n");
        let mut new = running.clone();
        assert!(keep_bound_at_start(&running, &mut new).is_empty());
        assert_eq!(new, running);
    }
}
