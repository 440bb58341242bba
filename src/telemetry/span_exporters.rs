//! Where finished spans go, as `[tracing] exporters` (or
//! `OTEL_TRACES_EXPORTER`) says: OTLP, the console (opentelemetry-stdout's
//! exporter: human-readable, for a terminal), or both.

use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use crate::config::TraceExporter;

/// The configured exporters, as one `SpanExporter` for the span queue.
#[derive(Debug)]
pub enum SpanExporters {
    Otlp(opentelemetry_otlp::SpanExporter),
    Console(opentelemetry_stdout::SpanExporter),
    Both(
        opentelemetry_otlp::SpanExporter,
        opentelemetry_stdout::SpanExporter,
    ),
}

impl SpanExporters {
    /// `None` when no exporter is configured: then no span is built at all.
    pub fn choose(
        chosen: &[TraceExporter],
        otlp: impl FnOnce() -> Result<opentelemetry_otlp::SpanExporter, super::TracePipelineError>,
    ) -> Result<Option<Self>, super::TracePipelineError> {
        let console = chosen.contains(&TraceExporter::Console);
        Ok(match (chosen.contains(&TraceExporter::Otlp), console) {
            (true, true) => Some(Self::Both(otlp()?, Default::default())),
            (true, false) => Some(Self::Otlp(otlp()?)),
            (false, true) => Some(Self::Console(Default::default())),
            (false, false) => None,
        })
    }
}

impl SpanExporter for SpanExporters {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self {
            Self::Otlp(otlp) => otlp.export(batch).await,
            Self::Console(console) => console.export(batch).await,
            // The console copy never fails; the OTLP result is the one that counts.
            Self::Both(otlp, console) => {
                let _ = console.export(batch.clone()).await;
                otlp.export(batch).await
            }
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            Self::Otlp(otlp) => otlp.shutdown_with_timeout(timeout),
            Self::Console(console) => console.shutdown_with_timeout(timeout),
            Self::Both(otlp, console) => {
                let _ = console.shutdown_with_timeout(timeout);
                otlp.shutdown_with_timeout(timeout)
            }
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Self::Otlp(otlp) => otlp.set_resource(resource),
            Self::Console(console) => console.set_resource(resource),
            Self::Both(otlp, console) => {
                otlp.set_resource(resource);
                console.set_resource(resource);
            }
        }
    }
}
