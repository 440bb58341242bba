//! How each signal leaves the process: the exporters chosen per signal
//! (`[tracing] exporters`, `[metrics] exporters`, `[logging] exporters`, as
//! `OTEL_*_EXPORTER` name them), the OTLP connection shared by every signal
//! (`[otlp]`), and each signal's overrides (`[tracing.otlp]`,
//! `[metrics.otlp]`, `[logging.otlp]`), resolved into one [`OtlpTarget`]
//! per signal the way the OpenTelemetry specification resolves its
//! environment: a signal's own setting, else the shared one, else the default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

pub const DEFAULT_OTLP_GRPC_ENDPOINT: &str = "http://127.0.0.1:4317";
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_QUEUE_SIZE: usize = 2048;
pub const DEFAULT_EXPORT_BATCH: usize = 512;
/// Spans and log records wait at most this long for their batch: a trace
/// shows up within a second of its end (the specification's span default is
/// 5 s; `OTEL_BSP_SCHEDULE_DELAY` sets it).
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(1);

/// The three signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// The OTLP/HTTP path of the signal.
    pub fn http_path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Metrics => "/v1/metrics",
            Self::Logs => "/v1/logs",
        }
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl OtlpProtocol {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }
}

/// Compression of OTLP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Gzip,
}

impl Compression {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            _ => None,
        }
    }
}

/// `[otlp]`: the collector every OTLP signal goes to, unless the signal's own
/// table says otherwise.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Default `http://127.0.0.1:4317` (gRPC). A base URL: for
    /// `http/protobuf` each signal's path (`/v1/traces`, ...) is appended.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Export deadline per request. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra request headers (e.g. an API key); values are secrets.
    pub headers: BTreeMap<String, Secret>,
    /// Default `none`.
    pub compression: Compression,
    /// PEM CA bundle the collector's certificate is checked against, besides
    /// the webpki roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mTLS to the collector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_OTLP_GRPC_ENDPOINT.to_owned(),
            protocol: OtlpProtocol::Grpc,
            timeout: DEFAULT_OTLP_TIMEOUT,
            headers: BTreeMap::new(),
            compression: Compression::None,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// `[tracing.otlp]`, `[metrics.otlp]`, `[logging.otlp]`: one signal's
/// overrides of `[otlp]`, and for spans and log records their batch queue.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalOtlp {
    /// The signal's endpoint. With `http/protobuf`, a URL without a path
    /// gets the signal's path appended (as `[otlp]`'s does); one with a path
    /// is used as given, like `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` always is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Set by a per-signal endpoint variable: used exactly as given.
    #[serde(skip)]
    pub endpoint_as_given: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtlpProtocol>,
    #[serde(
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Added to `[otlp]`'s headers; a name in both takes this value.
    pub headers: BTreeMap<String, Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Items buffered for export; beyond this they are dropped and counted.
    /// Default `2048` (spans and log records; metrics have no queue).
    pub max_queue_size: usize,
    /// Longest a queued item waits for its batch. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub schedule_delay: Duration,
    /// Most items per export request. Default `512`.
    pub max_export_batch_size: usize,
}

impl Default for SignalOtlp {
    fn default() -> Self {
        Self {
            endpoint: None,
            endpoint_as_given: false,
            protocol: None,
            timeout: None,
            headers: BTreeMap::new(),
            compression: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            max_queue_size: DEFAULT_QUEUE_SIZE,
            schedule_delay: DEFAULT_SCHEDULE_DELAY,
            max_export_batch_size: DEFAULT_EXPORT_BATCH,
        }
    }
}

/// Where and how one signal is exported over OTLP, all settings resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpTarget {
    /// For gRPC the collector's address; for HTTP the full URL to POST to.
    pub url: String,
    pub protocol: OtlpProtocol,
    pub timeout: Duration,
    pub headers: BTreeMap<String, Secret>,
    pub compression: Compression,
    pub ca_file: Option<PathBuf>,
    /// Certificate and key, for mTLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

impl OtlpConfig {
    /// The target of `signal`, with `own` overriding this shared table.
    pub fn target(&self, signal: Signal, own: &SignalOtlp) -> OtlpTarget {
        let protocol = own.protocol.unwrap_or(self.protocol);
        let url = match (&own.endpoint, protocol) {
            (Some(endpoint), OtlpProtocol::HttpProtobuf)
                if !own.endpoint_as_given && !has_path(endpoint) =>
            {
                with_signal_path(endpoint, signal)
            }
            (Some(endpoint), _) => endpoint.clone(),
            (None, OtlpProtocol::HttpProtobuf) => with_signal_path(&self.endpoint, signal),
            (None, OtlpProtocol::Grpc) => self.endpoint.clone(),
        };
        let mut headers = self.headers.clone();
        headers.extend(own.headers.clone());
        let cert = own.client_cert.as_ref().or(self.client_cert.as_ref());
        let key = own.client_key.as_ref().or(self.client_key.as_ref());
        OtlpTarget {
            url,
            protocol,
            timeout: own.timeout.unwrap_or(self.timeout),
            headers,
            compression: own.compression.unwrap_or(self.compression),
            ca_file: own.ca_file.clone().or_else(|| self.ca_file.clone()),
            client_identity: cert.zip(key).map(|(c, k)| (c.clone(), k.clone())),
        }
    }
}

/// Whether a URL has a path beyond `/`.
fn has_path(url: &str) -> bool {
    url.parse::<http::Uri>()
        .map(|u| !matches!(u.path(), "" | "/"))
        .unwrap_or(false)
}

/// A base URL with the signal's OTLP/HTTP path appended once.
fn with_signal_path(base: &str, signal: Signal) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(signal.http_path()) {
        base.to_owned()
    } else {
        format!("{base}{}", signal.http_path())
    }
}

/// `OTEL_TRACES_EXPORTER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceExporter {
    Otlp,
    Console,
    None,
}

/// `OTEL_METRICS_EXPORTER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsExporter {
    /// `/metrics` on the admin listener.
    Prometheus,
    Otlp,
    Console,
    None,
}

/// `OTEL_LOGS_EXPORTER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogsExporter {
    Otlp,
    /// JSON lines (or pretty text) on stdout.
    Console,
    None,
}

/// `OTEL_PROPAGATORS` values this proxy reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagator {
    /// W3C `traceparent` and `tracestate`.
    Tracecontext,
    /// W3C `baggage`.
    Baggage,
    /// Zipkin's single `b3` header.
    B3,
    /// Zipkin's `X-B3-*` headers.
    B3multi,
}

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporality {
    Cumulative,
    Delta,
}

/// Parses a comma list of `names` (an `OTEL_*` variable's value), where
/// `none` alone means the empty list.
pub fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match parse(name) {
            Some(value) => out.push(value),
            None => return Err(format!("unknown value {name:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(endpoint: &str, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.to_owned(),
            protocol,
            ..OtlpConfig::default()
        }
    }

    #[test]
    fn the_shared_endpoint_is_a_base_url() {
        let http = shared("http://c:4318/", OtlpProtocol::HttpProtobuf);
        let own = SignalOtlp::default();
        assert_eq!(
            http.target(Signal::Traces, &own).url,
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            http.target(Signal::Metrics, &own).url,
            "http://c:4318/v1/metrics"
        );
        assert_eq!(http.target(Signal::Logs, &own).url, "http://c:4318/v1/logs");
        let grpc = shared("http://c:4317", OtlpProtocol::Grpc);
        assert_eq!(grpc.target(Signal::Logs, &own).url, "http://c:4317");
    }

    #[test]
    fn a_signal_endpoint_with_a_path_or_from_its_variable_is_used_as_given() {
        let http = shared("http://c:4318", OtlpProtocol::HttpProtobuf);
        let mut own = SignalOtlp {
            endpoint: Some("http://t:9/custom/traces".into()),
            ..SignalOtlp::default()
        };
        assert_eq!(
            http.target(Signal::Traces, &own).url,
            "http://t:9/custom/traces"
        );
        // A base URL in the file, as older files wrote it, gets the path...
        own.endpoint = Some("http://t:4318".into());
        assert_eq!(
            http.target(Signal::Traces, &own).url,
            "http://t:4318/v1/traces"
        );
        // ...but from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT it is used as given.
        own.endpoint_as_given = true;
        assert_eq!(http.target(Signal::Traces, &own).url, "http://t:4318");
    }

    #[test]
    fn a_signal_overrides_the_shared_table_field_by_field() {
        let mut shared = shared("http://c:4317", OtlpProtocol::Grpc);
        shared.headers.insert("a".into(), Secret::new("1"));
        shared.headers.insert("b".into(), Secret::new("2"));
        shared.compression = Compression::Gzip;
        shared.client_cert = Some("c.pem".into());
        shared.client_key = Some("k.pem".into());
        let mut own = SignalOtlp {
            protocol: Some(OtlpProtocol::HttpProtobuf),
            endpoint: Some("http://m:4318".into()),
            timeout: Some(Duration::from_secs(9)),
            ..SignalOtlp::default()
        };
        own.headers.insert("b".into(), Secret::new("own"));
        let target = shared.target(Signal::Metrics, &own);
        assert_eq!(target.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(target.url, "http://m:4318/v1/metrics");
        assert_eq!(target.timeout, Duration::from_secs(9));
        assert_eq!(target.compression, Compression::Gzip);
        assert_eq!(target.headers["a"].expose(), "1");
        assert_eq!(target.headers["b"].expose(), "own");
        assert_eq!(
            target.client_identity,
            Some(("c.pem".into(), "k.pem".into()))
        );
    }

    #[test]
    fn lists() {
        let parse = |n: &str| (n == "otlp").then_some(TraceExporter::Otlp);
        assert_eq!(parse_list("otlp, otlp", parse).unwrap().len(), 2);
        assert!(parse_list("jaeger", parse).is_err());
    }
}
