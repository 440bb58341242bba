//! Telemetry plumbing that lives outside the request path: the log writers,
//! the tracer provider and its bounded span queue, the periodic metric
//! exporters.

mod export_health;
pub mod logging;
mod metrics_bridge;
pub mod metrics_export;
pub mod otlp_transport;
pub mod sentry;
mod sentry_transport;
mod span_queue;
pub mod traces;

pub use logging::{init_logging, LogGuards};
pub use metrics_export::MetricsExport;
pub use sentry::SentryClient;
pub use traces::{TracePipeline, TracePipelineError};
