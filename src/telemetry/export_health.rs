//! Whether a signal's last export failed, so a collector that goes down is
//! logged as a warning once, and its recovery once, however many exports
//! fail in between (each exporter retries every period or batch). Each
//! signal logs under a target of its own: the OTLP log layer leaves the log
//! records' out, so a line about a failed log export never becomes a record
//! that fails to export in turn.

/// The target of the span export's own lines.
pub const SPAN_EXPORT_TARGET: &str = "otel_sidecar::telemetry::span_export";
/// The target of the log record export's own lines.
pub const LOG_EXPORT_TARGET: &str = "otel_sidecar::telemetry::log_export";
/// The target of the metric export's own lines.
pub const METRIC_EXPORT_TARGET: &str = "otel_sidecar::telemetry::metric_export";

/// What an export carries, for its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exported {
    Spans,
    LogRecords,
    Metrics,
}

impl Exported {
    /// The signal's name and what a failure drops.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Self::Spans => ("span", "spans"),
            Self::LogRecords => ("log record", "log records"),
            Self::Metrics => ("metric", "data points"),
        }
    }
}

/// A line about an export, under its signal's target (`tracing` fixes a
/// target per call site, hence one call site per signal).
macro_rules! export_event {
    ($exported:expr, $level:ident, $($rest:tt)+) => {
        match $exported {
            Exported::Spans => tracing::$level!(target: SPAN_EXPORT_TARGET, $($rest)+),
            Exported::LogRecords => tracing::$level!(target: LOG_EXPORT_TARGET, $($rest)+),
            Exported::Metrics => tracing::$level!(target: METRIC_EXPORT_TARGET, $($rest)+),
        }
    };
}

pub struct ExportHealth {
    exported: Exported,
    failing: bool,
}

impl ExportHealth {
    pub fn new(exported: Exported) -> Self {
        Self {
            exported,
            failing: false,
        }
    }

    pub fn succeeded(&mut self) {
        if std::mem::take(&mut self.failing) {
            let (signal, _) = self.exported.words();
            export_event!(self.exported, info, "{signal} export recovered");
        }
    }

    /// `dropped` items of one export were lost because of `failure`.
    pub fn failed(&mut self, dropped: u64, failure: &str) {
        let (signal, items) = self.exported.words();
        if std::mem::replace(&mut self.failing, true) {
            export_event!(self.exported, debug, dropped, error = %failure, "{signal} export failed; dropping {items}");
        } else {
            export_event!(self.exported, warn, dropped, error = %failure, "{signal} export failed; dropping {items}");
        }
    }
}
