//! How each Prometheus family is named when it is exported over OTLP: the
//! OpenTelemetry semantic conventions' metric name, unit and instrument, and
//! the attribute key of each label. The README's "Metrics over OTLP" table
//! is this table; a family registered without a row here fails a unit test.
//!
//! Families the conventions do not define are named under `otel_sidecar.`
//! (the instrumentation scope's name), as the conventions ask of
//! application-specific metrics, and so are their attribute keys.

/// The OpenTelemetry instrument a family stands for: it decides the OTLP
/// data type and whether the temporality preference applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    /// A monotonic sum: cumulative or delta as configured.
    Counter,
    /// A non-monotonic sum (`http.server.active_requests`): always
    /// cumulative, as the specification's delta preference has it.
    UpDownCounter,
    Gauge,
    /// Explicit-bucket histogram: cumulative or delta as configured.
    Histogram,
}

/// One family's OpenTelemetry identity.
#[derive(Debug, Clone, Copy)]
pub struct OtelMetric {
    /// The family as `/metrics` names it.
    pub family: &'static str,
    pub name: &'static str,
    /// UCUM, as the conventions write it.
    pub unit: &'static str,
    pub instrument: Instrument,
    /// Measured against the upstream: its `server.address` and
    /// `server.port` are added, as the client conventions require.
    pub upstream: bool,
}

const fn metric(
    family: &'static str,
    name: &'static str,
    unit: &'static str,
    instrument: Instrument,
    upstream: bool,
) -> OtelMetric {
    OtelMetric {
        family,
        name,
        unit,
        instrument,
        upstream,
    }
}

use Instrument::*;

/// Every exported family, in the README's order.
pub const METRICS: &[OtelMetric] = &[
    metric(
        "http_request_duration_seconds",
        "http.server.request.duration",
        "s",
        Histogram,
        false,
    ),
    metric(
        "http_response_first_byte_seconds",
        "otel_sidecar.http.server.time_to_first_byte",
        "s",
        Histogram,
        false,
    ),
    metric(
        "http_requests_in_flight",
        "http.server.active_requests",
        "{request}",
        UpDownCounter,
        false,
    ),
    metric(
        "http_request_size_bytes",
        "http.server.request.body.size",
        "By",
        Histogram,
        false,
    ),
    metric(
        "http_response_size_bytes",
        "http.server.response.body.size",
        "By",
        Histogram,
        false,
    ),
    metric(
        "upstream_request_duration_seconds",
        "http.client.request.duration",
        "s",
        Histogram,
        true,
    ),
    metric(
        "upstream_errors_total",
        "otel_sidecar.upstream.errors",
        "{error}",
        Counter,
        true,
    ),
    metric(
        "sidecar_proxy_errors_total",
        "otel_sidecar.proxy.errors",
        "{error}",
        Counter,
        false,
    ),
    metric(
        "gen_ai_client_token_usage",
        "gen_ai.client.token.usage",
        "{token}",
        Histogram,
        true,
    ),
    metric(
        "gen_ai_client_operation_duration_seconds",
        "gen_ai.client.operation.duration",
        "s",
        Histogram,
        true,
    ),
    metric(
        "gen_ai_server_time_to_first_token_seconds",
        "gen_ai.server.time_to_first_token",
        "s",
        Histogram,
        true,
    ),
    metric(
        "gen_ai_server_time_per_output_token_seconds",
        "gen_ai.server.time_per_output_token",
        "s",
        Histogram,
        true,
    ),
    // The conventions have no tool call metric; `gen_ai.tool.name` is theirs.
    metric(
        "gen_ai_response_tool_calls_total",
        "otel_sidecar.gen_ai.response.tool_calls",
        "{call}",
        Counter,
        true,
    ),
    metric(
        "sidecar_telemetry_dropped_total",
        "otel_sidecar.telemetry.dropped",
        "{item}",
        Counter,
        false,
    ),
    metric(
        "sidecar_build_info",
        "otel_sidecar.build.info",
        "1",
        Gauge,
        false,
    ),
    metric(
        "sidecar_config_reloads_total",
        "otel_sidecar.config.reloads",
        "{reload}",
        Counter,
        false,
    ),
    metric(
        "sidecar_config_last_reload_success_timestamp_seconds",
        "otel_sidecar.config.last_reload_success.timestamp",
        "s",
        Gauge,
        false,
    ),
    metric("sidecar_ready", "otel_sidecar.ready", "1", Gauge, false),
    metric(
        "sidecar_traces_sampled_total",
        "otel_sidecar.traces.sampled",
        "{exchange}",
        Counter,
        false,
    ),
    metric(
        "process_cpu_seconds_total",
        "process.cpu.time",
        "s",
        Counter,
        false,
    ),
    metric(
        "process_resident_memory_bytes",
        "process.memory.usage",
        "By",
        UpDownCounter,
        false,
    ),
    metric(
        "process_virtual_memory_bytes",
        "process.memory.virtual",
        "By",
        UpDownCounter,
        false,
    ),
    metric(
        "process_open_fds",
        "process.unix.file_descriptor.count",
        "{file_descriptor}",
        UpDownCounter,
        false,
    ),
    // The conventions have no limit metric nor a start time (only
    // `process.uptime`, which a collector cannot rate or compare).
    metric(
        "process_max_fds",
        "otel_sidecar.process.unix.file_descriptor.limit",
        "{file_descriptor}",
        Gauge,
        false,
    ),
    metric(
        "process_start_time_seconds",
        "otel_sidecar.process.start_time",
        "s",
        Gauge,
        false,
    ),
];

/// Families with no OTLP metric of their own, and the metric that carries
/// their value: `http_requests_total` is the count of
/// `http.server.request.duration` with the same attributes (the HTTP
/// conventions define no request counter), recorded at the same place.
pub const CARRIED_BY: &[(&str, &str)] = &[("http_requests_total", "http.server.request.duration")];

/// How a label's value becomes an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Str,
    /// An integer attribute (`http.response.status_code`).
    Int,
    /// The metric label of a method (`OTHER`) to the conventions' (`_OTHER`).
    Method,
}

/// Label name → attribute key. A label not listed keeps its name.
pub const ATTRIBUTES: &[(&str, &str, Value)] = &[
    ("method", "http.request.method", Value::Method),
    ("handler", "http.route", Value::Str),
    ("status", "http.response.status_code", Value::Int),
    ("error_type", "error.type", Value::Str),
    ("gen_ai_token_type", "gen_ai.token.type", Value::Str),
    ("gen_ai_request_model", "gen_ai.request.model", Value::Str),
    ("gen_ai_operation_name", "gen_ai.operation.name", Value::Str),
    ("gen_ai_tool_name", "gen_ai.tool.name", Value::Str),
    ("signal", "otel_sidecar.signal", Value::Str),
    ("version", "otel_sidecar.version", Value::Str),
    ("result", "otel_sidecar.reload.result", Value::Str),
    ("decision", "otel_sidecar.sampling.decision", Value::Str),
    ("reason", "otel_sidecar.sampling.reason", Value::Str),
];

/// The OpenTelemetry identity of `family`, if it is exported.
pub fn metric_of(family: &str) -> Option<&'static OtelMetric> {
    METRICS.iter().find(|m| m.family == family)
}

/// The attribute key of `label` and how its value converts.
pub fn attribute_of(label: &str) -> (&str, Value) {
    ATTRIBUTES
        .iter()
        .find(|(name, ..)| *name == label)
        .map_or((label, Value::Str), |(_, key, value)| (*key, *value))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::{DropCounters, Metrics};

    #[test]
    fn every_registered_family_has_an_opentelemetry_name() {
        let metrics = Metrics::new(10, Arc::new(DropCounters::default()));
        for family in metrics.snapshot().unwrap() {
            let mapped = metric_of(&family.name).is_some()
                || CARRIED_BY.iter().any(|(f, _)| *f == family.name);
            assert!(mapped, "{} has no row in otel_names::METRICS", family.name);
        }
        for (family, carrier) in CARRIED_BY {
            assert!(metric_of(family).is_none());
            assert!(METRICS.iter().any(|m| m.name == *carrier));
        }
    }

    #[test]
    fn each_instrument_is_what_the_registry_records() {
        use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::MetricType;
        let metrics = Metrics::new(10, Arc::new(DropCounters::default()));
        for family in metrics.snapshot().unwrap() {
            let Some(m) = metric_of(&family.name) else {
                continue;
            };
            let expected = match m.instrument {
                Instrument::Counter => MetricType::Counter,
                Instrument::UpDownCounter | Instrument::Gauge => MetricType::Gauge,
                Instrument::Histogram => MetricType::Histogram,
            };
            assert_eq!(family.r#type, expected as i32, "{}", family.name);
        }
    }

    #[test]
    fn names_are_unique_and_units_are_ucum() {
        for (i, m) in METRICS.iter().enumerate() {
            assert!(
                METRICS[i + 1..].iter().all(|o| o.name != m.name),
                "{}",
                m.name
            );
            // Seconds and bytes are units, not suffixes, in OpenTelemetry names.
            assert!(
                !m.name.ends_with("_seconds") && !m.name.ends_with("_bytes"),
                "{}",
                m.name
            );
            if m.family.ends_with("_seconds") {
                assert_eq!(m.unit, "s", "{}", m.family);
            }
            if m.family.ends_with("_bytes") {
                assert_eq!(m.unit, "By", "{}", m.family);
            }
        }
    }
}
