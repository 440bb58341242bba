//! Telemetry plumbing that lives outside the request path: the log writers,
//! OTLP log records, the trace pipeline, and the bounded queue both export
//! through.

mod export_queue;
pub mod logging;
pub mod otlp_logs;
pub mod otlp_transport;
pub mod resource;
pub mod sentry;
mod sentry_transport;
mod span_exporters;
pub mod traces;

pub use logging::{init_logging, LogGuards};
pub use sentry::SentryClient;
pub use traces::{TracePipeline, TracePipelineError};
