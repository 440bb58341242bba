//! Telemetry plumbing that lives outside the request path: the log writers,
//! the tracer provider and its bounded span queue.

pub mod logging;
mod span_queue;
pub mod traces;

pub use logging::{init_logging, LogGuards};
pub use traces::{Tracing, TracingError};
