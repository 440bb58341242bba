//! The in-process entry point: start the proxy and admin listeners from a
//! [`Config`], stop them gracefully. `main` and the integration tests use it alike.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::Config;
use crate::metrics::{DropCounters, Metrics};
use crate::proxy::{Proxy, ProxyParts};
use crate::readiness::Readiness;
use crate::redact::Redactor;
use crate::reload::{ReloadOutcome, ReloadParts, Reloader};
use crate::server::{self, ConnectionSettings, Limits};
use crate::settings::{Foundation, Settings};
use crate::telemetry::logging::{AccessOutputs, LogControl};
use crate::telemetry::otlp_transport::TransportError;
use crate::telemetry::{MetricsExport, SentryClient, TracePipeline, TracePipelineError};
use crate::tls::{self, TlsError};
use crate::upstream;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    TracePipeline(#[from] TracePipelineError),
    #[error("OTLP metrics exporter: {0}")]
    MetricsExport(#[source] TransportError),
    #[error(transparent)]
    Bind(#[from] io::Error),
}

/// Parts the caller may build instead of the sidecar.
#[derive(Default)]
pub struct Extras {
    /// The trace pipeline; `None` means tracing off.
    pub traces: Option<TracePipeline>,
    /// Counters of log lines and records lost, for
    /// `sidecar_telemetry_dropped_total{signal="logs"}`.
    pub log_drops: Option<crate::telemetry::logging::LogDrops>,
    /// Where the access line goes (by default, a `tracing` event).
    pub access: AccessOutputs,
    /// The file the configuration came from: with it, SIGHUP and `POST
    /// /reload` reload it.
    pub config_path: Option<PathBuf>,
    /// The log filter a reload changes.
    pub log_control: Option<LogControl>,
}

/// A running sidecar.
pub struct Sidecar {
    proxy_addr: SocketAddr,
    admin_addr: SocketAddr,
    readiness: Arc<Readiness>,
    stop_accepting: watch::Sender<bool>,
    traces: Option<Arc<TracePipeline>>,
    reloader: Option<Arc<Reloader>>,
    done: JoinHandle<()>,
}

impl Sidecar {
    /// Binds both listeners (port 0 picks a free port) and starts serving,
    /// exporting spans as `[tracing]` says.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let traces = TracePipeline::start(&config)?;
        Self::start_with(
            config,
            Extras {
                traces,
                ..Extras::default()
            },
        )
        .await
    }

    /// As [`start`](Self::start), with parts built by the caller: `main`
    /// passes its log writers and the configuration file to reload from,
    /// the demo a trace pipeline that keeps spans in memory.
    pub async fn start_with(config: Config, extras: Extras) -> Result<Self, StartError> {
        let client = upstream::client(&config.upstream)?;
        let traces = extras.traces.map(Arc::new);
        let drops = Arc::new(DropCounters {
            spans: traces
                .as_ref()
                .map(|t| t.dropped_counter())
                .unwrap_or_default(),
            ..DropCounters::default()
        });
        if let Some(log_drops) = extras.log_drops {
            let _ = drops.logs.set(log_drops);
        }
        let metrics = Arc::new(Metrics::new(config.metrics.max_models, drops.clone()));
        let metrics_export = MetricsExport::start(&config, metrics.clone(), drops.metrics.clone())
            .map_err(StartError::MetricsExport)?;
        let foundation = Foundation {
            metrics: metrics.clone(),
            traces: traces.clone(),
            access: extras.access,
            cutting: Arc::new(AtomicBool::new(false)),
        };
        let redactor = Arc::new(Redactor::new(&config.sentry));
        let sentry = SentryClient::start(&config, redactor.clone(), drops.sentry_events.clone())
            .map(Arc::new);
        let settings = Settings::build(&config, &foundation, redactor, sentry.as_ref());
        let settings = Arc::new(ArcSwap::from_pointee(settings));
        let sentry = Arc::new(Mutex::new(sentry));
        let parts = ProxyParts {
            client,
            traces: traces.clone(),
            settings: settings.clone(),
            cutting: foundation.cutting.clone(),
        };
        let proxy = Arc::new(Proxy::new(&config.upstream.url, parts));
        let limits = Limits::new(&config.listener);
        let reloader = extras.config_path.map(|path| {
            let parts = ReloadParts {
                settings,
                foundation,
                sentry: sentry.clone(),
                sentry_drops: drops.sentry_events.clone(),
                limits: limits.clone(),
                logs: extras.log_control,
                metrics: metrics.reloads.clone(),
            };
            Arc::new(Reloader::new(path, config.clone(), parts))
        });
        let tls = match &config.listener.tls {
            Some(files) => Some(tls::server_config(&files.cert, &files.key)?),
            None => None,
        };
        let connection_settings = Arc::new(ConnectionSettings::new(&config.listener, tls, limits));

        let listener = server::bind(config.listener.address, "listener").await?;
        let admin_listener = server::bind(config.admin.address, "admin").await?;
        let proxy_addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;

        let readiness = Arc::new(Readiness::new(metrics.ready.clone()));
        let (stop_accepting, accepting) = watch::channel(false);
        let (stop_admin, admin_stopping) = watch::channel(false);

        let probe = readiness.clone();
        let url = config.upstream.url.clone();
        let (interval, connect_timeout) = (
            config.upstream.probe_interval,
            config.upstream.connect_timeout,
        );
        let probe_stop = admin_stopping.clone();
        tokio::spawn(async move {
            probe
                .probe_loop(
                    url.host().to_owned(),
                    url.port(),
                    interval,
                    connect_timeout,
                    probe_stop,
                )
                .await
        });
        let admin = Arc::new(Admin {
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            prometheus: config
                .metrics
                .exporters
                .contains(&crate::config::MetricsExporter::Prometheus),
            token: config.admin.token.clone(),
            reloader: reloader.clone(),
        });
        let admin_task = tokio::spawn(admin::serve(admin_listener, admin, admin_stopping));

        let drain = server::Drain::new(&config.listener);
        let flush = traces.clone();
        let done = tokio::spawn(async move {
            server::serve(listener, connection_settings, proxy, accepting, drain).await;
            // The drain's last exchanges are recorded: export them once more.
            if let Some(metrics_export) = metrics_export {
                metrics_export.shutdown().await;
            }
            if let Some(traces) = flush {
                traces.shutdown().await;
            }
            let running_sentry = sentry.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(sentry) = running_sentry {
                // Blocks for at most the shutdown timeout: keep it off the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || sentry.close()).await;
            }
            // The admin port stays up while draining so /readyz can say so.
            let _ = stop_admin.send(true);
            let _ = admin_task.await;
        });
        tracing::info!(listener = %proxy_addr, admin = %admin_addr, upstream = %config.upstream.url, "otel-sidecar started");
        Ok(Self {
            proxy_addr,
            admin_addr,
            readiness,
            stop_accepting,
            traces,
            reloader,
            done,
        })
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Reloads the configuration from its file (see [`reload`](crate::reload)),
    /// off the runtime's worker threads; `None` without a file.
    pub async fn reload(&self) -> Option<ReloadOutcome> {
        let reloader = self.reloader.clone()?;
        tokio::task::spawn_blocking(move || reloader.reload())
            .await
            .ok()
    }

    /// The trace pipeline, when tracing is on.
    pub fn traces(&self) -> Option<&TracePipeline> {
        self.traces.as_deref()
    }

    /// Starts the shutdown: `/readyz` answers 503 at once, the listener
    /// accepts for `listener.shutdown_delay` more, then closes, and in-flight
    /// exchanges continue up to `listener.drain_timeout`.
    pub fn shutdown(&self) {
        self.readiness.set_draining();
        let _ = self.stop_accepting.send(true);
    }

    /// Waits until the drain is over and every listener is closed.
    pub async fn wait(self) {
        let _ = self.done.await;
    }

    /// [`shutdown`](Self::shutdown) then [`wait`](Self::wait).
    pub async fn stop(self) {
        self.shutdown();
        self.wait().await;
    }
}
