//! Log lines as OpenTelemetry log records over OTLP (`[logging] exporters`
//! with `otlp`): the process's own lines through a `tracing` layer, the
//! access line built by the access sink, both batched in the bounded
//! [`ExportQueue`] and sent by opentelemetry-otlp's `LogExporter` over the
//! transport spans use (gRPC or HTTP/protobuf, gzip, mTLS, headers).
//!
//! A record carries what the JSON line does, placed where the OpenTelemetry
//! log data model puts it: `level` is the severity, `message` the body,
//! `timestamp` the record's time, `target` its instrumentation scope name,
//! `trace_id` and `span_id` its trace context, and every other field an
//! attribute of its own type.
//!
//! Why not the `opentelemetry-appender-tracing` bridge: it emits through the
//! SDK logger into an SDK processor, which copies each record into its queue,
//! and it takes the trace context only from an OpenTelemetry span in
//! context. The exchange's ids here are plain hex fields
//! ([`exchange_event!`](crate::exchange)), with no span in context, so the
//! bridge would leave them as string attributes. The layer below is the
//! bridge's field mapping plus those two ids, pushing straight into our
//! queue.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::access_target::ACCESS_TARGET;
use super::export_queue::{
    BatchExport, ExportQueue, QueueSettings, Queued, Waiting, LOG_EXPORT_TARGET,
};
use super::otlp_transport;
use super::resource::resource;
use crate::config::{Config, Signal};

#[derive(Debug, thiserror::Error)]
pub enum LogExportError {
    #[error("cannot build the OTLP log exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP log exporter: {0}")]
    Transport(#[from] otlp_transport::TransportError),
}

/// Makes log records and queues them for export; cheap to clone. Pushing
/// never blocks: a full queue drops the record and counts it.
#[derive(Clone)]
pub struct LogRecords {
    /// The SDK creates records only through a logger. This one's provider
    /// has no processor: records go to our queue, not through `emit`.
    logger: SdkLogger,
    queue: ExportQueue<SdkLogRecord>,
}

impl fmt::Debug for LogRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogRecords").finish_non_exhaustive()
    }
}

/// The export side of the queue until the runtime runs: the global
/// subscriber is installed (and lines are queued) before it exists, the
/// exporter needs it.
pub struct PendingLogExport {
    waiting: Waiting<SdkLogRecord>,
    queue: ExportQueue<SdkLogRecord>,
}

/// The running export, for the flush at shutdown.
pub struct LogExport {
    queue: ExportQueue<SdkLogRecord>,
    timeout: Duration,
}

impl LogRecords {
    /// A queue of `capacity` records; what cannot be delivered is counted in
    /// `dropped`.
    pub fn new(capacity: usize, dropped: Arc<AtomicU64>) -> (Self, PendingLogExport) {
        let (queue, waiting) = ExportQueue::waiting(capacity, dropped);
        let logger = SdkLoggerProvider::builder()
            .build()
            .logger(env!("CARGO_PKG_NAME"));
        let pending = PendingLogExport {
            waiting,
            queue: queue.clone(),
        };
        (Self { logger, queue }, pending)
    }

    /// A record stamped `at` (its time, and when it was observed: the same
    /// moment for lines the process writes itself) with `level`'s severity.
    pub fn record(&self, at: SystemTime, level: Level) -> SdkLogRecord {
        let mut record = self.logger.create_log_record();
        record.set_timestamp(at);
        record.set_observed_timestamp(at);
        record.set_severity_number(severity(level));
        record.set_severity_text(level.as_str());
        record
    }

    pub fn push(&self, record: SdkLogRecord) {
        self.queue.push(record);
    }
}

fn severity(level: Level) -> Severity {
    match level {
        Level::TRACE => Severity::Trace,
        Level::DEBUG => Severity::Debug,
        Level::INFO => Severity::Info,
        Level::WARN => Severity::Warn,
        Level::ERROR => Severity::Error,
    }
}

impl PendingLogExport {
    /// Builds the OTLP exporter for `[logging.otlp]` and starts exporting
    /// on the current Tokio runtime.
    pub fn start(self, config: &Config) -> Result<LogExport, LogExportError> {
        Ok(self.start_with(config, exporter(config)?))
    }

    /// As [`start`](Self::start), exporting to `exporter`.
    pub fn start_with<E: LogExporter + 'static>(
        self,
        config: &Config,
        mut exporter: E,
    ) -> LogExport {
        let own = &config.logging.otlp;
        let timeout = config.otlp.target(Signal::Logs, own).timeout;
        exporter.set_resource(&resource(&config.service));
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        self.waiting
            .start(Records { exporter, scope }, QueueSettings::of(own, timeout));
        LogExport {
            queue: self.queue,
            timeout,
        }
    }
}

impl LogExport {
    /// Exports what is queued now.
    pub async fn flush(&self) {
        self.queue.flush(self.timeout).await;
    }

    /// Exports what is queued, then stops the exporter, within the export timeout.
    pub async fn shutdown(&self) {
        self.queue.shutdown(self.timeout).await;
    }
}

/// A log exporter as the queue drives it: owned records, one scope.
struct Records<E> {
    exporter: E,
    /// Each record's target (a module path, `access`) replaces its name.
    scope: InstrumentationScope,
}

impl<E: LogExporter + 'static> BatchExport for Records<E> {
    type Item = SdkLogRecord;
    const QUEUED: Queued = Queued::LogRecords;

    async fn export(&self, batch: Vec<SdkLogRecord>) -> OTelSdkResult {
        let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|record| (record, &self.scope)).collect();
        self.exporter.export(LogBatch::new(&pairs)).await
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }
}

fn exporter(config: &Config) -> Result<opentelemetry_otlp::LogExporter, LogExportError> {
    let target = config.otlp.target(Signal::Logs, &config.logging.otlp);
    let builder = opentelemetry_otlp::LogExporter::builder();
    let exporter = match otlp_transport::configure(
        &target,
        || builder.clone().with_tonic(),
        || builder.clone().with_http(),
    )? {
        otlp_transport::Builder::Grpc(grpc) => grpc.build()?,
        otlp_transport::Builder::Http(http) => http.build()?,
    };
    Ok(exporter)
}

/// The crates that carry an export. Their lines (debug ones, mostly) are
/// left out of the records: each export would log, and so queue another
/// export, for ever. They still reach stdout and the file.
const TRANSPORT_CRATES: [&str; 13] = [
    "h2",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "tonic",
    "tower",
    "rustls",
    "tokio_rustls",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
    "opentelemetry_proto",
];

/// The OTLP layer's filter: whether a line becomes a record. Not the access
/// line (the access sink makes its record itself, typed), not the log
/// queue's own lines, not the transport's.
pub fn exported(metadata: &Metadata<'_>) -> bool {
    exported_target(metadata.target())
}

fn exported_target(target: &str) -> bool {
    if target == ACCESS_TARGET || target == LOG_EXPORT_TARGET {
        return false;
    }
    let krate = target.split("::").next().unwrap_or(target);
    !TRANSPORT_CRATES.contains(&krate)
}

/// The `tracing` layer that turns the process's own lines into records.
/// It sits under the same reloadable level filter as stdout and the file,
/// with [`exported`] as its own filter.
pub struct OtlpLayer {
    records: LogRecords,
}

impl OtlpLayer {
    pub fn new(records: LogRecords) -> Self {
        Self { records }
    }
}

impl<S: Subscriber> Layer<S> for OtlpLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let mut record = self.records.record(SystemTime::now(), *metadata.level());
        let mut fields = Fields::new(&mut record);
        event.record(&mut fields);
        let Fields {
            trace_id,
            span_id,
            log_target,
            ..
        } = fields;
        // Lines of the `log` crate arrive with target `log` and their own in
        // a field.
        match log_target {
            Some(target) if !exported_target(&target) => return,
            Some(target) => record.set_target(target),
            None => record.set_target(metadata.target()),
        }
        let ids = trace_id.as_deref().zip(span_id.as_deref());
        match ids.and_then(|(t, s)| Some((TraceId::from_hex(t).ok()?, SpanId::from_hex(s).ok()?))) {
            Some((trace, span)) => record.set_trace_context(trace, span, None),
            // Not ids after all: kept as they came.
            None => {
                for (key, value) in [("trace_id", trace_id), ("span_id", span_id)] {
                    if let Some(value) = value {
                        record.add_attribute(Key::from_static_str(key), value);
                    }
                }
            }
        }
        self.records.push(record);
    }
}

/// Visits an event's fields into a record.
struct Fields<'r> {
    record: &'r mut SdkLogRecord,
    trace_id: Option<String>,
    span_id: Option<String>,
    log_target: Option<String>,
}

impl<'r> Fields<'r> {
    fn new(record: &'r mut SdkLogRecord) -> Self {
        Self {
            record,
            trace_id: None,
            span_id: None,
            log_target: None,
        }
    }

    fn text(&mut self, field: &Field, text: String) {
        match field.name() {
            "message" => self.record.set_body(AnyValue::from(text)),
            "trace_id" => self.trace_id = Some(text),
            "span_id" => self.span_id = Some(text),
            "log.target" => self.log_target = Some(text),
            // The `log` crate's location fields: the JSON lines leave them out too.
            name if name.starts_with("log.") => {}
            name => self.record.add_attribute(Key::from_static_str(name), text),
        }
    }

    fn value(&mut self, field: &Field, value: AnyValue) {
        self.record
            .add_attribute(Key::from_static_str(field.name()), value);
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, AnyValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.value(field, AnyValue::Int(value)),
            // OTLP integers are signed 64-bit: the rare larger one, exactly, as text.
            Err(_) => self.text(field, value.to_string()),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, AnyValue::Double(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, AnyValue::Boolean(value));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    use http::HeaderMap;
    use opentelemetry::logs::Severity;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::prelude::*;

    use super::*;
    use crate::context::CorrelationId;
    use crate::exchange::{exchange_event, LogIds};

    /// Keeps what it is given.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SdkLogRecord>>>);

    impl LogExporter for Kept {
        async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
            let mut kept = self.0.lock().unwrap();
            kept.extend(batch.iter().map(|(record, _)| record.clone()));
            Ok(())
        }
    }

    /// The records `f` logs through the layer (behind its filter).
    async fn records_of(f: impl FnOnce()) -> Vec<SdkLogRecord> {
        let (records, pending) = LogRecords::new(64, Arc::new(AtomicU64::new(0)));
        let kept = Kept::default();
        let export = pending.start_with(&Config::default(), kept.clone());
        let layer = OtlpLayer::new(records).with_filter(filter_fn(exported));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        export.flush().await;
        let records = kept.0.lock().unwrap().clone();
        records
    }

    fn attribute(record: &SdkLogRecord, key: &str) -> Option<AnyValue> {
        record
            .attributes_iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.clone())
    }

    #[tokio::test]
    async fn an_exchange_line_becomes_a_record_with_its_trace_context() {
        let (correlation_id, _) = CorrelationId::from_headers(&HeaderMap::new(), &[]);
        let trace_id = TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128);
        let span_id = SpanId::from(0xb7ad6b7169203331_u64);
        let ids = LogIds {
            correlation_id: correlation_id.clone(),
            trace: Some((trace_id, span_id)),
        };
        let records = records_of(|| {
            exchange_event!(
                Level::WARN,
                &ids,
                error_type = "connect",
                status = 502u16,
                ratio = 0.5,
                retried = false,
                attempt = -1i64,
                upstream = ?"127.0.0.1:1",
                "upstream unreachable"
            );
        })
        .await;
        assert_eq!(records.len(), 1, "{records:#?}");
        let record = &records[0];
        assert_eq!(record.severity_number(), Some(Severity::Warn));
        assert_eq!(record.severity_text(), Some("WARN"));
        assert_eq!(record.body(), Some(&AnyValue::from("upstream unreachable")));
        assert_eq!(
            record.target().map(|t| t.as_ref()),
            Some(module_path!()),
            "the target names the record's scope"
        );
        let context = record.trace_context().expect("trace context");
        assert_eq!((context.trace_id, context.span_id), (trace_id, span_id));
        assert!(record.timestamp().is_some() && record.observed_timestamp().is_some());
        assert_eq!(
            attribute(record, "correlation_id"),
            Some(AnyValue::from(correlation_id.as_str().to_owned()))
        );
        assert_eq!(
            attribute(record, "error_type"),
            Some(AnyValue::from("connect"))
        );
        assert_eq!(attribute(record, "status"), Some(AnyValue::Int(502)));
        assert_eq!(attribute(record, "ratio"), Some(AnyValue::Double(0.5)));
        assert_eq!(attribute(record, "retried"), Some(AnyValue::Boolean(false)));
        assert_eq!(attribute(record, "attempt"), Some(AnyValue::Int(-1)));
        assert_eq!(
            attribute(record, "upstream"),
            Some(AnyValue::from("\"127.0.0.1:1\""))
        );
        for key in ["trace_id", "span_id", "message"] {
            assert_eq!(attribute(record, key), None, "{key} is the record's own");
        }
    }

    #[tokio::test]
    async fn ids_that_are_not_ids_stay_attributes() {
        let records = records_of(|| tracing::info!(trace_id = "not-hex", "odd")).await;
        assert_eq!(records.len(), 1);
        assert!(records[0].trace_context().is_none());
        assert_eq!(
            attribute(&records[0], "trace_id"),
            Some(AnyValue::from("not-hex"))
        );
    }

    #[tokio::test]
    async fn the_access_line_the_queue_and_the_transport_are_left_out() {
        let records = records_of(|| {
            tracing::info!(target: "access", "request completed");
            tracing::warn!(target: "otel_sidecar::telemetry::log_export", "log record export failed");
            tracing::debug!(target: "h2::proto::connection", "connection");
            tracing::debug!(target: "tonic::transport", "connecting");
            tracing::debug!(target: "hyperion", "not the transport");
            tracing::error!("kept");
        })
        .await;
        let bodies: Vec<_> = records.iter().map(|r| r.body().cloned()).collect();
        assert_eq!(
            bodies,
            vec![
                Some(AnyValue::from("not the transport")),
                Some(AnyValue::from("kept"))
            ]
        );
        assert_eq!(records[1].severity_number(), Some(Severity::Error));
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (records, _pending) = LogRecords::new(2, dropped.clone());
        for _ in 0..5 {
            records.push(records.record(SystemTime::now(), Level::INFO));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
    }
}
