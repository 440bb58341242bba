//! The trace pipeline: sampler, id generator, resource, and the OTLP
//! exporter (gRPC or HTTP/protobuf) behind the bounded [`ExportQueue`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler as SdkSampler, SamplingDecision, ShouldSample,
    SpanData, SpanExporter,
};

use super::export_queue::{BatchExport, ExportQueue, QueueSettings, Queued};
use super::otlp_transport;
use super::resource::resource;
use super::span_exporters::SpanExporters;
use crate::config::{Config, Sampler, Signal, TracingConfig};

#[derive(Debug, thiserror::Error)]
pub enum TracePipelineError {
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP span exporter: {0}")]
    Transport(#[from] otlp_transport::TransportError),
}

/// The trace pipeline: the configured sampler and id generator decide each
/// exchange's trace at arrival; completed spans go straight to the bounded
/// export queue. The SDK's exporter, sampler and `SpanData` are used; its
/// `Tracer`/`Span` machinery is not, because a proxy knows everything about
/// its two spans when the exchange ends and can build them in one go.
pub struct TracePipeline {
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
    queue: ExportQueue<SpanData>,
    dropped: Arc<AtomicU64>,
    export_timeout: Duration,
}

/// The sampling decision for a new exchange.
pub struct Decision {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

impl TracePipeline {
    /// `None` when tracing is disabled: then nothing on the request path touches it.
    /// `None` too when `[tracing] exporters` is empty: spans nobody receives
    /// are not built.
    pub fn start(config: &Config) -> Result<Option<Self>, TracePipelineError> {
        if !config.tracing.enabled {
            return Ok(None);
        }
        let exporters = SpanExporters::choose(&config.tracing.exporters, || exporter(config))?;
        Ok(exporters.map(|exporters| Self::with_exporter(config, exporters)))
    }

    /// A pipeline exporting to `exporter` instead of OTLP (the demo keeps spans in memory).
    pub fn with_exporter<E: SpanExporter + 'static>(config: &Config, mut exporter: E) -> Self {
        let otlp = &config.tracing.otlp;
        let dropped = Arc::new(AtomicU64::new(0));
        exporter.set_resource(&resource(&config.service));
        let timeout = config.otlp.target(Signal::Traces, otlp).timeout;
        let queue = ExportQueue::start(
            Spans(exporter),
            QueueSettings::of(otlp, timeout),
            dropped.clone(),
        );
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Self {
            ids: RandomIdGenerator::default(),
            scope,
            queue,
            dropped,
            export_timeout: timeout,
        }
    }

    /// The trace id, server span id and `sampler`'s decision for a new
    /// exchange, continuing `parent` when there is one. The sampler is the
    /// running settings' (a reload may change it), not the pipeline's.
    ///
    /// `caller_sampled` is the caller's sampling decision: with a parent, the
    /// sampler reads it from the parent's flags; without one (a B3 decision
    /// sent without ids, `b3: 0`), a parent-based sampler follows it as it
    /// would a parent's flag, and the others decide as for any root. `None`
    /// (nothing received, or a B3 caller that deferred the decision): the
    /// sampler decides as for a root, even when the ids are continued.
    pub fn decide(
        &self,
        sampler: &SdkSampler,
        parent: Option<&SpanContext>,
        caller_sampled: Option<bool>,
        name: &str,
    ) -> Decision {
        // A new trace id is 128 random bits, which the W3C random flag promises.
        let trace_id = parent.map_or_else(|| self.ids.new_trace_id(), SpanContext::trace_id);
        let sample = |parent: Option<&SpanContext>| {
            // Samplers read the parent from a context; only a remote parent needs one.
            let parent_cx = parent.map(|p| Context::new().with_remote_span_context(p.clone()));
            let result = sampler.should_sample(
                parent_cx.as_ref(),
                trace_id,
                name,
                &SpanKind::Server,
                &[],
                &[],
            );
            result.decision == SamplingDecision::RecordAndSample
        };
        let sampled = match (parent, caller_sampled) {
            (Some(parent), Some(_)) => sample(Some(parent)),
            (None, Some(decided)) if matches!(sampler, SdkSampler::ParentBased(_)) => decided,
            _ => sample(None),
        };
        Decision {
            trace_id,
            span_id: self.ids.new_span_id(),
            sampled,
        }
    }

    pub fn new_span_id(&self) -> SpanId {
        self.ids.new_span_id()
    }

    pub fn scope(&self) -> &InstrumentationScope {
        &self.scope
    }

    /// Queues a finished span for export; never blocks (a full queue drops and counts).
    pub fn export(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.queue.push(span);
        }
    }

    /// Spans not delivered so far: queue full, or export failed or timed out.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The counter behind [`dropped_spans`](Self::dropped_spans), for the metrics registry.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// Exports what is queued now (tests and the demo use it).
    pub async fn flush(&self) {
        self.queue.flush(self.export_timeout).await;
    }

    /// Exports what is queued, then stops the exporter, within the export timeout.
    pub async fn shutdown(&self) {
        self.queue.shutdown(self.export_timeout).await;
    }
}

/// A span exporter as the queue drives it.
struct Spans<E>(E);

impl<E: SpanExporter + 'static> BatchExport for Spans<E> {
    type Item = SpanData;
    const QUEUED: Queued = Queued::Spans;

    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.export(batch)
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}

/// The sampler `[tracing]` names. For `outcome` it is the arrival half of
/// the decision: the trace-id ratio, which ignores the parent (the outcome
/// sampler adds a sampled parent itself, and a completion may keep more).
pub fn sampler(config: &TracingConfig) -> SdkSampler {
    let ratio = SdkSampler::TraceIdRatioBased(config.ratio);
    match config.sampler {
        Sampler::Outcome => SdkSampler::TraceIdRatioBased(config.outcome.ratio),
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::Traceidratio => ratio,
        Sampler::ParentbasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentbasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentbasedTraceidratio => SdkSampler::ParentBased(Box::new(ratio)),
    }
}

fn exporter(config: &Config) -> Result<opentelemetry_otlp::SpanExporter, TracePipelineError> {
    let target = config.otlp.target(Signal::Traces, &config.tracing.otlp);
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match otlp_transport::configure(
        &target,
        || builder.clone().with_tonic(),
        || builder.clone().with_http(),
    )? {
        otlp_transport::Builder::Grpc(grpc) => grpc.build()?,
        otlp_transport::Builder::Http(http) => http.build()?,
    };
    Ok(exporter)
}

/// Spans that go nowhere, for unit tests of what builds and samples them.
#[cfg(test)]
#[derive(Debug)]
struct Discard;

#[cfg(test)]
impl SpanExporter for Discard {
    fn export(&self, _: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
impl TracePipeline {
    /// A pipeline of `config` whose spans are discarded.
    pub(crate) fn discarding(config: &Config) -> Self {
        Self::with_exporter(config, Discard)
    }
}
