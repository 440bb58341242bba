//! Consumers of a [`Completion`]. Each turns the same record into its signal;
//! none may block: anything slow happens behind a bounded queue.

mod access_log;
mod metrics;
mod sentry;
mod spans;
mod timestamp;

pub use access_log::AccessLog;
pub use metrics::MetricsSink;
pub use sentry::SentrySink;
pub use spans::{SpanSink, CLIENT_ABORT};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::exchange::Completion;

/// One consumer of finished exchanges.
pub trait Sink: Send + Sync {
    fn record(&self, completion: &Completion);
}

/// The configured sinks, called in order for every exchange.
#[derive(Default)]
pub struct Sinks {
    sinks: Vec<Box<dyn Sink>>,
    /// Set when the shutdown's drain timeout cuts the exchanges still
    /// running: the recorders dropped then record a cut by the proxy, not a
    /// client that left. Here because every recorder already holds the sinks.
    cutting: AtomicBool,
}

impl Sinks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// From now on, unfinished exchanges are being cut by the shutdown.
    pub fn start_cutting(&self) {
        self.cutting.store(true, Ordering::Relaxed);
    }

    pub fn cutting(&self) -> bool {
        self.cutting.load(Ordering::Relaxed)
    }

    pub fn record(&self, completion: &Completion) {
        for sink in &self.sinks {
            sink.record(completion);
        }
    }
}
