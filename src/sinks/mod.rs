//! Consumers of a [`Completion`]. Each turns the same record into its signal;
//! none may block: anything slow happens behind a bounded queue.

mod access_log;
mod metrics;
mod sentry;
mod spans;

pub use access_log::AccessLog;
pub use metrics::MetricsSink;
pub use sentry::SentrySink;
pub use spans::{SpanSink, CLIENT_ABORT};

use crate::exchange::{Completion, Sink};

/// The configured sinks, called in order for every exchange.
#[derive(Default)]
pub struct Sinks {
    sinks: Vec<Box<dyn Sink>>,
}

impl Sinks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }
}

impl Sink for Sinks {
    fn record(&self, completion: &Completion) {
        for sink in &self.sinks {
            sink.record(completion);
        }
    }
}
