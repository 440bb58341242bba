//! The metrics registry and the handles the request path records into.
//!
//! Label values are bounded before they reach a family: methods to the
//! standard set (else `OTHER`), handlers to the configured routes (else
//! `other`), statuses to three digits, models to the first `max_models`
//! names (else `other`). Handles for a label set are looked up once and kept,
//! so recording an exchange hashes no label strings.

pub(crate) mod buckets;
mod genai;
mod http;
mod labels;
pub mod otel_names;
mod process;
mod sampling;
mod sidecar;
mod status_table;

use std::sync::Arc;

use prometheus_client::encoding::prometheus_protobuf::{self, prometheus_data_model};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use genai::{
    GenAiMetrics, ModelLabel, ModelLabels, OperationLabels, TokenLabels, ToolCallLabels,
};
pub use http::{HttpHandles, HttpMetrics, RouteHandles};
pub use labels::TraceExemplar;
pub use sampling::{SamplingHandles, SamplingMetrics};
pub use sidecar::{DropCounters, ReloadMetrics};

/// The content type of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every family the sidecar exposes, registered once.
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub genai: GenAiMetrics,
    pub reloads: ReloadMetrics,
    pub sampling: SamplingMetrics,
    /// `sidecar_ready`: what `/readyz` answers, 1 or 0.
    pub ready: Gauge,
}

impl Metrics {
    pub fn new(max_models: usize, drops: Arc<DropCounters>) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        let genai = GenAiMetrics::register(&mut registry, max_models);
        let (reloads, ready) = sidecar::register(&mut registry, drops);
        let sampling = SamplingMetrics::register(&mut registry);
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        Self {
            registry,
            http,
            genai,
            reloads,
            sampling,
            ready,
        }
    }

    /// The OpenMetrics text exposition, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Every family's current values, structured, under the exposition's
    /// names (counters end in `_total`): what the OTLP exporter converts,
    /// read from the same handles `/metrics` reads. It fails only where the
    /// text encoder would.
    pub fn snapshot(&self) -> Result<Vec<prometheus_data_model::MetricFamily>, std::fmt::Error> {
        prometheus_protobuf::encode(&self.registry)
    }
}
