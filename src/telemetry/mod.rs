//! Telemetry plumbing that lives outside the request path: the log writers,
//! the tracer provider and its bounded span queue.

mod export_health;
pub mod logging;
pub mod otlp_transport;
pub mod sentry;
mod sentry_transport;
mod span_queue;
pub mod traces;

pub use logging::{init_logging, LogGuards};
pub use sentry::SentryClient;
pub use traces::{TracePipeline, TracePipelineError};
