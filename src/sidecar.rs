//! The in-process entry point: start the proxy and admin listeners from a
//! [`Config`], stop them gracefully. `main` and the integration tests use it alike.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::Config;
use crate::context::RouteTable;
use crate::metrics::{DropCounters, Metrics};
use crate::proxy::{Proxy, ProxyParts};
use crate::readiness::Readiness;
use crate::redact::Redactor;
use crate::server::{self, ConnectionSettings};
use crate::sinks::{AccessLog, MetricsSink, SentrySink, Sinks, SpanSink};
use crate::telemetry::{SentryClient, TracePipeline, TracePipelineError};
use crate::tls::{self, TlsError};
use crate::upstream;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    TracePipeline(#[from] TracePipelineError),
    #[error(transparent)]
    Bind(#[from] io::Error),
}

/// Parts the caller may build instead of the sidecar.
#[derive(Default)]
pub struct Extras {
    /// The trace pipeline; `None` means tracing off.
    pub traces: Option<TracePipeline>,
    /// Counters of log lines lost, for `sidecar_telemetry_dropped_total{signal="logs"}`.
    pub log_drops: Option<crate::telemetry::logging::LogDrops>,
    /// JSON log writers the access log writes its lines to directly.
    pub access_writers: Vec<tracing_appender::non_blocking::NonBlocking>,
}

/// A running sidecar.
pub struct Sidecar {
    proxy_addr: SocketAddr,
    admin_addr: SocketAddr,
    readiness: Arc<Readiness>,
    stop_accepting: watch::Sender<bool>,
    traces: Option<Arc<TracePipeline>>,
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
    /// passes its log writers' drop counters, the demo a tracer provider that
    /// keeps spans in memory.
    pub async fn start_with(config: Config, extras: Extras) -> Result<Self, StartError> {
        let client = upstream::client(&config.upstream)?;
        let redactor = Arc::new(Redactor::new(&config.sentry));
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
        let routes = RouteTable::new(&config.metrics.routes);
        let metrics = Arc::new(Metrics::new(
            &routes,
            config.metrics.max_models,
            drops.clone(),
        ));
        let sentry = SentryClient::start(&config, redactor.clone(), drops.sentry_events.clone())
            .map(Arc::new);
        let mut sinks = Sinks::new().with(MetricsSink::new(metrics.clone()));
        if let Some(client) = &sentry {
            sinks = sinks.with(SentrySink::new(&config, client.clone(), redactor.clone()));
        }
        if let Some(traces) = &traces {
            sinks = sinks.with(SpanSink::new(traces.clone()));
        }
        if config.logging.access_log {
            sinks = sinks.with(AccessLog::new(
                redactor.clone(),
                extras.access_writers.clone(),
            ));
        }
        let parts = ProxyParts {
            client,
            routes,
            traces: traces.clone(),
            in_flight: metrics.http.in_flight_gauges(),
            redactor,
            sinks,
        };
        let proxy = Arc::new(Proxy::new(&config, parts));
        let tls = match &config.listener.tls {
            Some(files) => Some(tls::server_config(&files.cert, &files.key)?),
            None => None,
        };
        let settings = Arc::new(ConnectionSettings::new(&config.listener, tls));

        let listener = server::bind(config.listener.address, "listener").await?;
        let admin_listener = server::bind(config.admin.address, "admin").await?;
        let proxy_addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;

        let readiness = Arc::new(Readiness::new());
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
            token: config.admin.token.clone(),
        });
        let admin_task = tokio::spawn(admin::serve(admin_listener, admin, admin_stopping));

        let drain = server::Drain::new(&config.listener);
        let flush = traces.clone();
        let done = tokio::spawn(async move {
            server::serve(listener, settings, proxy, accepting, drain).await;
            if let Some(traces) = flush {
                traces.shutdown().await;
            }
            if let Some(sentry) = sentry {
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
            done,
        })
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
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
