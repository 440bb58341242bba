//! The OpenTelemetry exporter environment: the OTLP connection (general and
//! per signal), the span and log-record queues (`OTEL_BSP_*`,
//! `OTEL_BLRP_*`), the exporters and propagators chosen per signal, and the
//! metric export period and temporality. Each variable sets one key (the
//! README's table lists them); a value that cannot be used names its
//! variable. Timeouts and delays are milliseconds, as the specification has
//! them.

use std::time::Duration;

use super::env_vars::{parse_key_values, EnvError, Recorder};
use super::otlp::{parse_list, Compression, OtlpProtocol, SignalOtlp};
use super::{
    Config, LogsExporter, MetricsExporter, OtlpConfig, Propagator, Secret, Temporality,
    TraceExporter,
};

/// The connection variables of one scope: the general ones, or one signal's.
struct ConnectionVars {
    /// The TOML table they set, for `check`'s origins.
    table: &'static str,
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    timeout: &'static str,
    compression: &'static str,
    certificate: &'static str,
    client_key: &'static str,
    client_certificate: &'static str,
}

macro_rules! connection_vars {
    ($table:literal, $prefix:literal) => {
        ConnectionVars {
            table: $table,
            endpoint: concat!($prefix, "ENDPOINT"),
            protocol: concat!($prefix, "PROTOCOL"),
            headers: concat!($prefix, "HEADERS"),
            timeout: concat!($prefix, "TIMEOUT"),
            compression: concat!($prefix, "COMPRESSION"),
            certificate: concat!($prefix, "CERTIFICATE"),
            client_key: concat!($prefix, "CLIENT_KEY"),
            client_certificate: concat!($prefix, "CLIENT_CERTIFICATE"),
        }
    };
}

const GENERAL: ConnectionVars = connection_vars!("otlp", "OTEL_EXPORTER_OTLP_");
const TRACES: ConnectionVars = connection_vars!("tracing.otlp", "OTEL_EXPORTER_OTLP_TRACES_");
const METRICS: ConnectionVars = connection_vars!("metrics.otlp", "OTEL_EXPORTER_OTLP_METRICS_");
const LOGS: ConnectionVars = connection_vars!("logging.otlp", "OTEL_EXPORTER_OTLP_LOGS_");

/// A batch processor's variables (`OTEL_BSP_*` or `OTEL_BLRP_*`).
struct QueueVars {
    table: &'static str,
    schedule_delay: &'static str,
    export_timeout: &'static str,
    max_queue_size: &'static str,
    max_export_batch_size: &'static str,
}

const SPAN_QUEUE: QueueVars = QueueVars {
    table: "tracing.otlp",
    schedule_delay: "OTEL_BSP_SCHEDULE_DELAY",
    export_timeout: "OTEL_BSP_EXPORT_TIMEOUT",
    max_queue_size: "OTEL_BSP_MAX_QUEUE_SIZE",
    max_export_batch_size: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
};

const LOG_QUEUE: QueueVars = QueueVars {
    table: "logging.otlp",
    schedule_delay: "OTEL_BLRP_SCHEDULE_DELAY",
    export_timeout: "OTEL_BLRP_EXPORT_TIMEOUT",
    max_queue_size: "OTEL_BLRP_MAX_QUEUE_SIZE",
    max_export_batch_size: "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
};

pub(super) fn apply<F: Fn(&str) -> Option<String>>(
    config: &mut Config,
    env: &mut Recorder<'_, F>,
) -> Result<(), EnvError> {
    shared(config, env)?;
    // A signal's exporter variables are more specific than its queue's:
    // `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` wins over `OTEL_BSP_EXPORT_TIMEOUT`.
    queue(&mut config.tracing.otlp, &SPAN_QUEUE, env)?;
    queue(&mut config.logging.otlp, &LOG_QUEUE, env)?;
    signal(&mut config.tracing.otlp, &TRACES, env)?;
    signal(&mut config.metrics.otlp, &METRICS, env)?;
    signal(&mut config.logging.otlp, &LOGS, env)?;
    exporters(config, env)?;
    if let Some(value) = env.get("OTEL_PROPAGATORS", "tracing.propagators") {
        config.tracing.propagators = list(
            &value,
            "OTEL_PROPAGATORS",
            propagator,
            "tracecontext, baggage, b3, b3multi, none",
        )?;
    }
    if let Some(value) = env.get("OTEL_METRIC_EXPORT_INTERVAL", "metrics.export_interval") {
        config.metrics.export_interval = millis(&value, "OTEL_METRIC_EXPORT_INTERVAL")?;
    }
    if let Some(value) = env.get("OTEL_METRIC_EXPORT_TIMEOUT", "metrics.otlp.timeout") {
        config.metrics.otlp.timeout = Some(millis(&value, "OTEL_METRIC_EXPORT_TIMEOUT")?);
    }
    const TEMPORALITY: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
    if let Some(value) = env.get(TEMPORALITY, "metrics.temporality") {
        config.metrics.temporality = match value.trim().to_ascii_lowercase().as_str() {
            "cumulative" => Temporality::Cumulative,
            // Every sum and histogram here is synchronous: low memory means
            // delta for all of them, as the specification's table has it.
            "delta" | "lowmemory" => Temporality::Delta,
            other => {
                return Err((
                    TEMPORALITY,
                    format!("unknown temporality {other:?} (cumulative, delta or lowmemory)"),
                ))
            }
        };
    }
    Ok(())
}

fn key(table: &str, field: &str) -> String {
    format!("{table}.{field}")
}

/// The general variables. Each wins over the file's value for every signal,
/// per-signal tables included (the environment beats the file); only a
/// per-signal variable beats it.
fn shared<F: Fn(&str) -> Option<String>>(
    config: &mut Config,
    env: &mut Recorder<'_, F>,
) -> Result<(), EnvError> {
    let v = &GENERAL;
    let otlp: &mut OtlpConfig = &mut config.otlp;
    let mut general = SignalOtlp::default();
    if let Some(value) = env.get(v.endpoint, &key(v.table, "endpoint")) {
        otlp.endpoint = value.trim().to_owned();
        general.endpoint = Some(otlp.endpoint.clone());
    }
    if let Some(value) = env.get(v.protocol, &key(v.table, "protocol")) {
        otlp.protocol = protocol(&value, v.protocol)?;
        general.protocol = Some(otlp.protocol);
    }
    if let Some(value) = env.get(v.headers, &key(v.table, "headers")) {
        otlp.headers.extend(headers(&value));
    }
    if let Some(value) = env.get(v.timeout, &key(v.table, "timeout")) {
        otlp.timeout = millis(&value, v.timeout)?;
        general.timeout = Some(otlp.timeout);
    }
    if let Some(value) = env.get(v.compression, &key(v.table, "compression")) {
        otlp.compression = compression(&value, v.compression)?;
        general.compression = Some(otlp.compression);
    }
    if let Some(value) = env.get(v.certificate, &key(v.table, "ca_file")) {
        otlp.ca_file = Some(value.trim().into());
        general.ca_file = otlp.ca_file.clone();
    }
    if let Some(value) = env.get(v.client_key, &key(v.table, "client_key")) {
        otlp.client_key = Some(value.trim().into());
        general.client_key = otlp.client_key.clone();
    }
    if let Some(value) = env.get(v.client_certificate, &key(v.table, "client_cert")) {
        otlp.client_cert = Some(value.trim().into());
        general.client_cert = otlp.client_cert.clone();
    }
    for own in [
        &mut config.tracing.otlp,
        &mut config.metrics.otlp,
        &mut config.logging.otlp,
    ] {
        if general.endpoint.is_some() {
            own.endpoint = None;
        }
        if general.protocol.is_some() {
            own.protocol = None;
        }
        if general.timeout.is_some() {
            own.timeout = None;
        }
        if general.compression.is_some() {
            own.compression = None;
        }
        if general.ca_file.is_some() {
            own.ca_file = None;
        }
        if general.client_key.is_some() || general.client_cert.is_some() {
            own.client_key = None;
            own.client_cert = None;
        }
    }
    Ok(())
}

fn signal<F: Fn(&str) -> Option<String>>(
    own: &mut SignalOtlp,
    v: &ConnectionVars,
    env: &mut Recorder<'_, F>,
) -> Result<(), EnvError> {
    if let Some(value) = env.get(v.endpoint, &key(v.table, "endpoint")) {
        // The specification: a signal's endpoint is used as given.
        own.endpoint = Some(value.trim().to_owned());
        own.endpoint_as_given = true;
    }
    if let Some(value) = env.get(v.protocol, &key(v.table, "protocol")) {
        own.protocol = Some(protocol(&value, v.protocol)?);
    }
    if let Some(value) = env.get(v.headers, &key(v.table, "headers")) {
        own.headers.extend(headers(&value));
    }
    if let Some(value) = env.get(v.timeout, &key(v.table, "timeout")) {
        own.timeout = Some(millis(&value, v.timeout)?);
    }
    if let Some(value) = env.get(v.compression, &key(v.table, "compression")) {
        own.compression = Some(compression(&value, v.compression)?);
    }
    if let Some(value) = env.get(v.certificate, &key(v.table, "ca_file")) {
        own.ca_file = Some(value.trim().into());
    }
    if let Some(value) = env.get(v.client_key, &key(v.table, "client_key")) {
        own.client_key = Some(value.trim().into());
    }
    if let Some(value) = env.get(v.client_certificate, &key(v.table, "client_cert")) {
        own.client_cert = Some(value.trim().into());
    }
    Ok(())
}

fn queue<F: Fn(&str) -> Option<String>>(
    own: &mut SignalOtlp,
    v: &QueueVars,
    env: &mut Recorder<'_, F>,
) -> Result<(), EnvError> {
    if let Some(value) = env.get(v.schedule_delay, &key(v.table, "schedule_delay")) {
        own.schedule_delay = millis(&value, v.schedule_delay)?;
    }
    if let Some(value) = env.get(v.export_timeout, &key(v.table, "timeout")) {
        own.timeout = Some(millis(&value, v.export_timeout)?);
    }
    if let Some(value) = env.get(v.max_queue_size, &key(v.table, "max_queue_size")) {
        own.max_queue_size = count(&value, v.max_queue_size)?;
    }
    if let Some(value) = env.get(
        v.max_export_batch_size,
        &key(v.table, "max_export_batch_size"),
    ) {
        own.max_export_batch_size = count(&value, v.max_export_batch_size)?;
    }
    Ok(())
}

fn exporters<F: Fn(&str) -> Option<String>>(
    config: &mut Config,
    env: &mut Recorder<'_, F>,
) -> Result<(), EnvError> {
    if let Some(value) = env.get("OTEL_TRACES_EXPORTER", "tracing.exporters") {
        config.tracing.exporters = list(
            &value,
            "OTEL_TRACES_EXPORTER",
            |n| match n {
                "otlp" => Some(Some(TraceExporter::Otlp)),
                "console" => Some(Some(TraceExporter::Console)),
                "none" => Some(None),
                _ => None,
            },
            "otlp, console, none",
        )?;
    }
    if let Some(value) = env.get("OTEL_METRICS_EXPORTER", "metrics.exporters") {
        config.metrics.exporters = list(
            &value,
            "OTEL_METRICS_EXPORTER",
            |n| match n {
                "prometheus" => Some(Some(MetricsExporter::Prometheus)),
                "otlp" => Some(Some(MetricsExporter::Otlp)),
                "console" => Some(Some(MetricsExporter::Console)),
                "none" => Some(None),
                _ => None,
            },
            "prometheus, otlp, console, none",
        )?;
    }
    if let Some(value) = env.get("OTEL_LOGS_EXPORTER", "logging.exporters") {
        config.logging.exporters = list(
            &value,
            "OTEL_LOGS_EXPORTER",
            |n| match n {
                "otlp" => Some(Some(LogsExporter::Otlp)),
                "console" => Some(Some(LogsExporter::Console)),
                "none" => Some(None),
                _ => None,
            },
            "otlp, console, none",
        )?;
    }
    Ok(())
}

/// A comma list in which `none` stands for nothing.
fn list<T>(
    value: &str,
    variable: &'static str,
    parse: impl Fn(&str) -> Option<Option<T>>,
    allowed: &str,
) -> Result<Vec<T>, EnvError> {
    let parsed = parse_list(value, |name| parse(&name.to_ascii_lowercase()))
        .map_err(|e| (variable, format!("{e}: use {allowed}")))?;
    Ok(parsed.into_iter().flatten().collect())
}

fn propagator(name: &str) -> Option<Option<Propagator>> {
    Some(Some(match name {
        "tracecontext" => Propagator::Tracecontext,
        "baggage" => Propagator::Baggage,
        "b3" => Propagator::B3,
        "b3multi" => Propagator::B3multi,
        "none" => return Some(None),
        _ => return None,
    }))
}

fn protocol(value: &str, variable: &'static str) -> Result<OtlpProtocol, EnvError> {
    OtlpProtocol::parse(value).ok_or((
        variable,
        format!("unsupported protocol {value:?} (grpc or http/protobuf)"),
    ))
}

fn compression(value: &str, variable: &'static str) -> Result<Compression, EnvError> {
    Compression::parse(value).ok_or((
        variable,
        format!("unsupported compression {value:?} (gzip or none)"),
    ))
}

fn headers(value: &str) -> Vec<(String, Secret)> {
    parse_key_values(value)
        .into_iter()
        .map(|(name, value)| (name, Secret::new(value)))
        .collect()
}

fn millis(value: &str, variable: &'static str) -> Result<Duration, EnvError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            (
                variable,
                format!("{value:?} is not a number of milliseconds"),
            )
        })
}

fn count(value: &str, variable: &'static str) -> Result<usize, EnvError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err((variable, format!("{value:?} is not a positive number"))),
    }
}
