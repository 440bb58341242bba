//! Telemetry plumbing that lives outside the request path: the log writers,
//! OTLP log records, the trace pipeline, the bounded queue both export
//! through, and the periodic metric exporters.

pub mod access_target;
mod export_health;
mod export_queue;
pub mod logging;
mod metrics_bridge;
pub mod metrics_export;
pub mod otlp_logs;
pub mod otlp_transport;
pub mod resource;
pub mod sentry;
mod sentry_transport;
mod span_exporters;
pub mod traces;

pub use logging::{init_logging, LogGuards};
pub use metrics_export::MetricsExport;
pub use sentry::SentryClient;
pub use traces::{TracePipeline, TracePipelineError};
