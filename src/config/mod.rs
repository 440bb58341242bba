//! The `sidecar.toml` schema: typed sections with their documented defaults.
//!
//! Parsing, interpolation and error locations live in [`load`]; semantic checks in
//! [`validate`]; the standard `OTEL_*`/`SENTRY_*` overrides in [`env`]. Every
//! struct denies unknown keys so a typo is an error, not a silently ignored line.

mod defaults;
pub mod env;
mod env_otlp;
mod env_vars;
pub mod interpolate;
pub mod listen_address;
pub mod load;
mod log_filter;
pub mod origin;
pub mod otlp;
mod secret;
pub mod types;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use defaults::*;
pub use load::{load_file, load_file_explained, load_str, load_str_explained, ConfigError};
pub use log_filter::LogFilter;
pub use origin::Origins;
pub use otlp::{
    Compression, LogsExporter, MetricsExporter, OtlpConfig, OtlpProtocol, OtlpTarget, Propagator,
    Signal, SignalOtlp, Temporality, TraceExporter,
};
pub use secret::{Secret, SentryDsn};
pub use types::{ByteSize, HeaderNameValue, StatusRange, UpstreamUrl};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listener: ListenerConfig,
    pub upstream: UpstreamConfig,
    pub admin: AdminConfig,
    pub service: ServiceConfig,
    pub correlation: CorrelationConfig,
    pub otlp: OtlpConfig,
    pub tracing: TracingConfig,
    pub metrics: MetricsConfig,
    pub logging: LoggingConfig,
    pub sentry: SentryConfig,
    pub genai: GenAiConfig,
    pub runtime: RuntimeConfig,
}

/// `[listener]`: where clients connect.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// Where clients connect. Default `0.0.0.0:8080`; `:PORT` and host names
    /// are accepted and resolved at load.
    #[serde(deserialize_with = "listen_address::deserialize")]
    pub address: SocketAddr,
    /// How long the listener keeps accepting after SIGTERM/SIGINT while
    /// `/readyz` already answers 503, so endpoints and load balancers stop
    /// routing here before connections are refused. Default `5s`; `0s`
    /// closes the listener at once.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// How long in-flight exchanges may run once the listener has closed. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Serve TLS (HTTP/1.1 and HTTP/2 via ALPN) with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Largest request head (request line plus headers) accepted. Default `64KiB`; above: 431.
    pub max_header_bytes: ByteSize,
    /// Most request header fields accepted. Default `100`; above: 431.
    pub max_headers: usize,
    /// Largest request body forwarded; unset means unlimited. Above: 413.
    pub max_request_body: Option<ByteSize>,
    /// Time a client has to send a complete HTTP/1 request head. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Most client connections open at once; beyond it new connections wait
    /// in the kernel's backlog. Unset (default): unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Most exchanges in flight at once (to the end of their response
    /// bodies); beyond it requests get 503 with `Retry-After`. Unset
    /// (default): unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<usize>,
}

/// PEM files for the TLS listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[upstream]`: the unmodified backend.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Base URL, `http` or `https`. Default `http://127.0.0.1:11434`.
    pub url: UpstreamUrl,
    /// TCP (and TLS) connect deadline. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Deadline for the upstream's response headers. Default `300s`.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Longest silence allowed inside a streamed response body; unset: none.
    #[serde(with = "humantime_serde::option")]
    pub idle_timeout: Option<Duration>,
    /// Extra PEM CA bundle trusted for an `https` upstream, besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// How long an idle pooled upstream connection is kept. Default `90s`.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// Most idle pooled connections kept. Default `256`.
    pub pool_max_idle: usize,
    /// How often `/readyz` probes the upstream with a TCP connect. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

/// `[admin]`: the separate listener for health and metrics.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Default `127.0.0.1:9090`: loopback, so nothing is exposed by accident.
    #[serde(deserialize_with = "listen_address::deserialize")]
    pub address: SocketAddr,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`, and
    /// `/readyz` gives its reason only with it (probes carry no token).
    pub token: Option<Secret>,
}

/// `[service]`: the identity put on spans, logs and Sentry events.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// `service.name`. Default `otel-sidecar`.
    pub name: String,
    /// `service.version`; empty: not set.
    pub version: String,
    /// `deployment.environment.name`. Default `production`.
    pub environment: String,
    /// `service.namespace`; empty: not set.
    pub namespace: String,
    /// Extra resource attributes; `OTEL_RESOURCE_ATTRIBUTES` adds to and overrides them.
    pub resource_attributes: BTreeMap<String, String>,
}

/// `[correlation]`: the request id every signal carries.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// Header set on the upstream request and on the response. Default `X-Correlation-ID`.
    pub header: HeaderNameValue,
    /// Inbound headers tried in order; the first valid one wins, else a new UUID.
    pub accept: Vec<HeaderNameValue>,
}

/// `[tracing]`: the exchange's spans and how trace context travels.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Default `true`. `OTEL_SDK_DISABLED=true` turns it off.
    pub enabled: bool,
    /// Where spans go: `otlp` (default), `console`, or none (`[]`).
    pub exporters: Vec<TraceExporter>,
    /// Context formats read inbound (the first valid one wins) and all
    /// written outbound. Default `["tracecontext", "baggage"]`.
    pub propagators: Vec<Propagator>,
    /// Add the W3C `server-timing: trace;desc=<traceparent>` response metric.
    /// Default `false`.
    pub server_timing: bool,
    /// `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
    /// `parentbased_always_off`, `parentbased_traceidratio` (default), or
    /// `outcome` (decided when the exchange completes, `[tracing.outcome]`).
    pub sampler: Sampler,
    /// Share of root traces sampled by the ratio samplers, 0..=1. Default
    /// `1.0`. The `outcome` sampler has its own, `[tracing.outcome] ratio`.
    pub ratio: f64,
    /// What the `outcome` sampler keeps; read only with `sampler = "outcome"`.
    pub outcome: OutcomeConfig,
    /// Overrides of `[otlp]` for spans, and the span queue.
    pub otlp: SignalOtlp,
}

/// The sampler names of the OpenTelemetry SDK environment specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
    /// Not an SDK sampler: the proxy decides when the exchange completes.
    Outcome,
}

/// `[tracing.outcome]`: the `outcome` sampler keeps every failed exchange
/// (5xx, a proxy failure, a client that left), every slow one, every one
/// whose parent was sampled (with `honour_parent`), and `ratio` of the rest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutcomeConfig {
    /// Share of the other exchanges kept, 0..=1, decided on the trace id by
    /// OpenTelemetry's `TraceIdRatioBased` rule, so every service sampling
    /// by trace id keeps the same traces. Default `0.05`.
    pub ratio: f64,
    /// Exchanges that take longer than this (to the end of the response
    /// body) are kept. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub slower_than: Duration,
    /// GenAI exchanges whose first token comes later than this are kept.
    /// Unset (default): only `slower_than` applies.
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttft_slower_than: Option<Duration>,
    /// Keep every exchange whose inbound parent was sampled. Default `true`.
    pub honour_parent: bool,
    /// The sampled flag the upstream receives in `traceparent` (and B3):
    /// `ratio` (default) or `always`.
    pub upstream_sampled: UpstreamSampled,
    /// Per-route thresholds, by `[metrics] routes` name (or `other`).
    pub routes: Vec<OutcomeRoute>,
}

/// The sampled flag sent upstream under the `outcome` sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamSampled {
    /// What is known at arrival: the trace-id ratio's decision, or a sampled
    /// parent with `honour_parent`. An instrumented backend records that
    /// share; a failure outside it has the proxy's spans only.
    Ratio,
    /// Always 1: an instrumented backend records every exchange; its spans
    /// of exchanges the proxy drops have no parent in the exported trace.
    Always,
}

/// One route's thresholds under the `outcome` sampler.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRoute {
    /// A `[metrics] routes` name, or `other`.
    pub name: String,
    /// Replaces `[tracing.outcome] slower_than` for this route.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub slower_than: Option<Duration>,
    /// Replaces `[tracing.outcome] ttft_slower_than` for this route.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttft_slower_than: Option<Duration>,
}

/// `[metrics]`: how requests are grouped into the bounded `handler` label.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Checked in order; the first match names the handler, else `other`.
    pub routes: Vec<RouteConfig>,
    /// Most distinct model names used as label values; the rest are `other`. Default `100`.
    pub max_models: usize,
    /// `prometheus` (`/metrics`, default), `otlp`, `console`, or none (`[]`).
    pub exporters: Vec<MetricsExporter>,
    /// How often `otlp` and `console` export. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
    /// What OTLP sums and histograms carry. Default `cumulative`.
    pub temporality: Temporality,
    /// Overrides of `[otlp]` for metrics.
    pub otlp: SignalOtlp,
}

/// One route: exactly one of `path` (exact match) or `prefix`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A level or `tracing` directives. Default `info`; `RUST_LOG` overrides.
    /// The access log does not depend on it: `access_log` alone decides.
    pub level: LogFilter,
    pub format: LogFormat,
    /// One `request completed` line per exchange. Default `true`.
    pub access_log: bool,
    /// Also append JSON lines to this file.
    pub file: Option<PathBuf>,
    /// `console` (stdout, default), `otlp`, or none (`[]`).
    pub exporters: Vec<LogsExporter>,
    /// Overrides of `[otlp]` for log records, and the record queue.
    pub otlp: SignalOtlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `[sentry]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentryConfig {
    /// Empty: Sentry off.
    pub dsn: SentryDsn,
    /// Status codes or ranges (`"500-599"`, `"429"`) that produce an event.
    pub report_status: Vec<StatusRange>,
    /// Share of qualifying events sent, 0..=1. Default `1.0`.
    pub sample_rate: f64,
    /// Headers never sent anywhere (Sentry, logs, spans).
    pub redact_headers: Vec<String>,
    /// Case-insensitive substrings; a matching header, query or tag key has its value replaced.
    pub redact_keys: Vec<String>,
    /// Share of exchanges also sent as Sentry transactions, 0..=1. Default `0`.
    pub traces_sample_rate: f64,
    /// Request header whose value becomes the event's user id.
    pub user_header: Option<HeaderNameValue>,
    /// Defaults to `[service] environment`.
    pub environment: Option<String>,
    /// Defaults to `[service] name@version`.
    pub release: Option<String>,
    /// Events buffered for sending; beyond this they are dropped and counted. Default `256`.
    pub max_queue_size: usize,
    /// Put the captured GenAI content (`[genai] capture_content`) on events
    /// too. Default `false`: Sentry gets no prompt or answer.
    pub include_content: bool,
}

/// `[genai]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenAiConfig {
    /// Ollama and OpenAI-compatible routes get GenAI telemetry. Default `true`.
    pub enabled: bool,
    /// Record the prompt, system instructions and answer (text and tool
    /// calls) on the server span as the GenAI conventions' opt-in
    /// attributes. Default `false`;
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` turns it on.
    pub capture_content: bool,
    /// Most bytes of captured JSON per direction (request, response);
    /// beyond it the content is cut and the cut marked. Default `16KiB`.
    pub max_content_bytes: ByteSize,
    /// Regular expressions whose matches in captured content become
    /// `[REDACTED]`, after the `sentry.redact_keys` key matching. Default:
    /// bearer tokens, `sk-…` API keys, e-mail addresses.
    pub redact_patterns: Vec<String>,
}

/// `[runtime]`: the Tokio runtime.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Worker threads; 0 (default) means the CPUs this process may run on.
    pub worker_threads: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            address: DEFAULT_LISTENER_ADDRESS,
            shutdown_delay: DEFAULT_SHUTDOWN_DELAY,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            tls: None,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_request_body: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: None,
            max_concurrent_requests: None,
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            url: UpstreamUrl::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            idle_timeout: None,
            ca_file: None,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle: DEFAULT_POOL_MAX_IDLE,
            probe_interval: DEFAULT_PROBE_INTERVAL,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: DEFAULT_ADMIN_ADDRESS,
            token: None,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_SERVICE_NAME.to_owned(),
            version: String::new(),
            environment: DEFAULT_ENVIRONMENT.to_owned(),
            namespace: String::new(),
            resource_attributes: BTreeMap::new(),
        }
    }
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            header: HeaderNameValue::from_static(DEFAULT_CORRELATION_HEADER),
            accept: DEFAULT_CORRELATION_ACCEPT
                .iter()
                .map(|h| HeaderNameValue::from_static(h))
                .collect(),
        }
    }
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            exporters: vec![TraceExporter::Otlp],
            propagators: vec![Propagator::Tracecontext, Propagator::Baggage],
            server_timing: false,
            sampler: Sampler::ParentbasedTraceidratio,
            ratio: 1.0,
            outcome: OutcomeConfig::default(),
            otlp: SignalOtlp::default(),
        }
    }
}

impl Default for OutcomeConfig {
    fn default() -> Self {
        Self {
            ratio: DEFAULT_OUTCOME_RATIO,
            slower_than: DEFAULT_OUTCOME_SLOWER_THAN,
            ttft_slower_than: None,
            honour_parent: true,
            upstream_sampled: UpstreamSampled::Ratio,
            routes: Vec::new(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            routes: DEFAULT_ROUTES
                .iter()
                .map(|p| RouteConfig {
                    name: (*p).to_owned(),
                    path: Some((*p).to_owned()),
                    prefix: None,
                })
                .collect(),
            max_models: DEFAULT_MAX_MODELS,
            exporters: vec![MetricsExporter::Prometheus],
            export_interval: DEFAULT_METRIC_EXPORT_INTERVAL,
            temporality: Temporality::Cumulative,
            otlp: SignalOtlp::default(),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: LogFilter::default(),
            format: LogFormat::Json,
            access_log: true,
            file: None,
            exporters: vec![LogsExporter::Console],
            otlp: SignalOtlp::default(),
        }
    }
}

impl Default for SentryConfig {
    fn default() -> Self {
        Self {
            dsn: SentryDsn::default(),
            report_status: vec![StatusRange::SERVER_ERRORS],
            sample_rate: 1.0,
            redact_headers: DEFAULT_REDACT_HEADERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            redact_keys: DEFAULT_REDACT_KEYS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            traces_sample_rate: 0.0,
            user_header: None,
            environment: None,
            release: None,
            max_queue_size: DEFAULT_SENTRY_QUEUE,
            include_content: false,
        }
    }
}

impl Default for GenAiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            capture_content: false,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
            redact_patterns: DEFAULT_REDACT_PATTERNS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}
