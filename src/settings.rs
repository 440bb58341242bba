//! The settings a running proxy reads for each exchange, built from the
//! configuration and swapped whole when it is reloaded. An exchange loads
//! them once (one atomic load, `arc-swap`) and keeps that snapshot to its
//! end, so a reload never mixes two configurations in one exchange and never
//! touches one in flight.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use opentelemetry_sdk::trace::Sampler;

use crate::config::{Config, Sampler as SamplerName};
use crate::context::{Propagators, RouteTable};
use crate::exchange::{OutcomeSampler, Recording};
use crate::genai::CaptureConfig;
use crate::metrics::Metrics;
use crate::redact::Redactor;
use crate::sinks::{AccessLog, MetricsSink, SentrySink, Sinks, SpanSink};
use crate::telemetry::logging::AccessOutputs;
use crate::telemetry::{traces, SentryClient, TracePipeline};

/// Everything per exchange that a reload may change.
pub struct Settings {
    pub routes: RouteTable,
    pub correlation_header: HeaderName,
    pub correlation_accept: Vec<HeaderName>,
    pub redactor: Arc<Redactor>,
    /// Where this configuration's exchanges are recorded.
    pub recording: Arc<Recording>,
    pub sampler: Sampler,
    /// The `outcome` sampler, when it is the configured one and spans are built.
    pub outcome: Option<Arc<OutcomeSampler>>,
    /// The trace context formats read and written (`[tracing] propagators`).
    pub propagators: Propagators,
    /// Add the W3C `server-timing: trace;desc=…` metric to every response.
    pub server_timing: bool,
    pub genai_enabled: bool,
    /// `[genai] capture_content`: what capture needs; `None` when off.
    pub genai_capture: Option<Arc<CaptureConfig>>,
    /// Sentry events describe the request's headers: keep them when Sentry is on.
    pub keep_headers: bool,
    pub response_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_request_body: Option<u64>,
}

/// What settings are built on that lives as long as the process: the
/// registry, the trace pipeline, the access line's outputs, the shutdown's
/// cut flag.
pub struct Foundation {
    pub metrics: Arc<Metrics>,
    pub traces: Option<Arc<TracePipeline>>,
    pub access: AccessOutputs,
    pub cutting: Arc<AtomicBool>,
}

impl Settings {
    /// Settings for `config`; `sentry` is the client built for it (reused
    /// across reloads while `[sentry]` stays the same), with `redactor`'s
    /// lists in its scrubber.
    pub fn build(
        config: &Config,
        foundation: &Foundation,
        redactor: Arc<Redactor>,
        sentry: Option<&Arc<SentryClient>>,
    ) -> Self {
        let routes = RouteTable::new(&config.metrics.routes);
        let handles = Arc::new(foundation.metrics.http.handles(&routes));
        let mut sinks = Sinks::new().with(MetricsSink::new(
            foundation.metrics.clone(),
            handles.clone(),
        ));
        if let Some(client) = sentry {
            sinks = sinks.with(SentrySink::new(config, client.clone(), redactor.clone()));
        }
        if let Some(traces) = &foundation.traces {
            sinks = sinks.with(SpanSink::new(traces.clone()));
        }
        if config.logging.access_log && !foundation.access.is_empty() {
            sinks = sinks.with(AccessLog::new(redactor.clone(), foundation.access.clone()));
        }
        let outcome = (config.tracing.sampler == SamplerName::Outcome
            && foundation.traces.is_some())
        .then(|| {
            Arc::new(OutcomeSampler::new(
                &config.tracing.outcome,
                &routes,
                foundation.metrics.sampling.handles(),
            ))
        });
        let recording = Recording::new(
            sinks,
            handles.in_flight_gauges(),
            foundation.cutting.clone(),
        )
        .with_outcome_sampler(outcome.clone());
        Self {
            routes,
            correlation_header: config.correlation.header.0.clone(),
            correlation_accept: config
                .correlation
                .accept
                .iter()
                .map(|h| h.0.clone())
                .collect(),
            redactor,
            recording: Arc::new(recording),
            sampler: traces::sampler(&config.tracing),
            outcome,
            propagators: Propagators::new(&config.tracing.propagators),
            server_timing: config.tracing.server_timing,
            genai_enabled: config.genai.enabled,
            genai_capture: CaptureConfig::from_config(config)
                .expect("validation compiled every [genai] redact pattern"),
            keep_headers: sentry.is_some(),
            response_timeout: config.upstream.response_timeout,
            idle_timeout: config.upstream.idle_timeout,
            max_header_bytes: config.listener.max_header_bytes.0 as usize,
            max_headers: config.listener.max_headers,
            max_request_body: config.listener.max_request_body.map(|b| b.0),
        }
    }
}
