//! The periodic metric exporters of `[metrics] exporters`: `otlp` sends the
//! registry through the [`MetricsBridge`] to a collector (gRPC or
//! HTTP/protobuf, over the signal's resolved [`OtlpTarget`]), `console`
//! prints the OpenMetrics text exposition to stdout. `prometheus` is the
//! admin listener's `/metrics` and needs nothing here.
//!
//! One background task reads the registry every `export_interval`; the
//! request path never sees it (it records into the registry as it always
//! has). A failed or timed-out export is not retried: its data points are
//! counted in `sidecar_telemetry_dropped_total{signal="metrics"}`, and the
//! next period's export carries the totals again (cumulative) or the next
//! interval's changes (delta). Shutdown exports once more, so the last
//! requests of a drain are not lost.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;
use opentelemetry_http::HttpClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

use super::export_health::{ExportHealth, Exported};
use super::metrics_bridge::MetricsBridge;
use super::otlp_transport::{self, HttpsConnector, TransportError};
use crate::config::{Compression, Config, MetricsExporter, OtlpProtocol, OtlpTarget, Signal};
use crate::metrics::Metrics;

/// The running exporters' task.
pub struct MetricsExport {
    shutdown: mpsc::Sender<Shutdown>,
    /// Deadline of one export.
    timeout: Duration,
}

/// Export a last time, then stop; the sender is told when it is done.
struct Shutdown(oneshot::Sender<()>);

impl MetricsExport {
    /// Starts the task on the current runtime; `None` when neither `otlp`
    /// nor `console` is configured. `dropped` counts the data points of
    /// failed OTLP exports.
    pub fn start(
        config: &Config,
        metrics: Arc<Metrics>,
        dropped: Arc<AtomicU64>,
    ) -> Result<Option<Self>, TransportError> {
        let exporters = &config.metrics.exporters;
        let console = exporters.contains(&MetricsExporter::Console);
        let target = config.otlp.target(Signal::Metrics, &config.metrics.otlp);
        let otlp = if exporters.contains(&MetricsExporter::Otlp) {
            let url = &config.upstream.url;
            let bridge = MetricsBridge::new(
                config.metrics.temporality,
                resource(config),
                (url.host(), url.port()),
                SystemTime::now(),
            );
            Some((bridge, Collector::connect(&target)?))
        } else {
            None
        };
        if otlp.is_none() && !console {
            return Ok(None);
        }
        let exporting = Exporting {
            metrics,
            otlp,
            console,
            dropped,
            timeout: target.timeout,
            health: ExportHealth::new(Exported::Metrics),
        };
        let (shutdown, receiver) = mpsc::channel(1);
        tokio::spawn(run(exporting, config.metrics.export_interval, receiver));
        Ok(Some(Self {
            shutdown,
            timeout: target.timeout,
        }))
    }

    /// Exports a last time and stops. An export under way finishes first,
    /// so this waits at most twice the export timeout.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        let _ = tokio::time::timeout(self.timeout * 2, async {
            if self.shutdown.send(Shutdown(done)).await.is_ok() {
                let _ = wait.await;
            }
        })
        .await;
    }
}

/// The resource of the spans (`[service]` and `OTEL_RESOURCE_ATTRIBUTES`).
fn resource(config: &Config) -> Resource {
    let attributes =
        ResourceAttributesWithSchema::from(&super::resource::resource(&config.service));
    Resource {
        attributes: attributes.attributes.0,
        ..Resource::default()
    }
}

async fn run(mut exporting: Exporting, interval: Duration, mut shutdown: mpsc::Receiver<Shutdown>) {
    // The first export is one period after the start, as the SDK's periodic reader does.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => exporting.export().await,
            stop = shutdown.recv() => {
                // Without a sender the sidecar is gone: nothing to wait for.
                if let Some(Shutdown(done)) = stop {
                    exporting.export().await;
                    let _ = done.send(());
                }
                return;
            }
        }
    }
}

struct Exporting {
    metrics: Arc<Metrics>,
    otlp: Option<(MetricsBridge, Collector)>,
    console: bool,
    dropped: Arc<AtomicU64>,
    timeout: Duration,
    health: ExportHealth,
}

impl Exporting {
    async fn export(&mut self) {
        if self.console {
            let text = self.metrics.encode();
            // stdout may be a full pipe: block a blocking thread, not a worker.
            let _ = tokio::task::spawn_blocking(move || print(&text)).await;
        }
        let Some((bridge, collector)) = &mut self.otlp else {
            return;
        };
        let set = match self.metrics.snapshot() {
            Ok(set) => set,
            Err(_) => {
                tracing::warn!("the metrics registry could not be read for export");
                return;
            }
        };
        let batch = bridge.convert(set, SystemTime::now());
        let sent = tokio::time::timeout(self.timeout, collector.send(batch.request)).await;
        let failure = match sent {
            Ok(Ok(None)) => {
                self.health.succeeded();
                return;
            }
            Ok(Ok(Some(partial))) => {
                let rejected = u64::try_from(partial.rejected_data_points).unwrap_or(0);
                if rejected == 0 {
                    // The collector's warning about data it accepted.
                    tracing::debug!(message = %partial.error_message, "metric export accepted with a warning");
                    self.health.succeeded();
                    return;
                }
                self.dropped.fetch_add(rejected, Ordering::Relaxed);
                self.health.failed(
                    rejected,
                    &format!(
                        "the collector rejected {rejected} data points: {}",
                        partial.error_message
                    ),
                );
                return;
            }
            Ok(Err(failure)) => failure,
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        self.dropped.fetch_add(batch.points, Ordering::Relaxed);
        self.health.failed(batch.points, &failure);
    }
}

/// The console exporter's output: a line that says what follows, then the
/// exposition, written under one lock so log lines cannot interleave.
fn print(exposition: &str) {
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "otel-sidecar console metrics exporter, {now}: OpenMetrics text exposition follows"
    );
    let _ = out.write_all(exposition.as_bytes());
    let _ = out.flush();
}

/// The connection to the collector.
// One of them exists per process: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Collector {
    Grpc {
        client: MetricsServiceClient<Channel>,
        metadata: MetadataMap,
    },
    Http {
        client: opentelemetry_http::hyper::HyperClient<HttpsConnector>,
        url: http::Uri,
        headers: HeaderMap,
        gzip: bool,
    },
}

impl Collector {
    /// Builds the client; nothing connects until the first export, so a
    /// collector that is down at start delays nothing.
    fn connect(target: &OtlpTarget) -> Result<Self, TransportError> {
        let invalid = |e: &dyn std::fmt::Display| TransportError::Endpoint {
            url: target.url.clone(),
            reason: e.to_string(),
        };
        let gzip = target.compression == Compression::Gzip;
        Ok(match target.protocol {
            OtlpProtocol::Grpc => {
                let mut endpoint = Endpoint::from_shared(target.url.clone())
                    .map_err(|e| invalid(&e))?
                    .connect_timeout(target.timeout);
                if let Some(tls) = otlp_transport::tonic_tls(target)? {
                    endpoint = endpoint.tls_config(tls).map_err(|e| invalid(&e))?;
                }
                let mut client = MetricsServiceClient::new(endpoint.connect_lazy());
                if gzip {
                    client = client
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip);
                }
                Collector::Grpc {
                    client,
                    metadata: otlp_transport::metadata(target)?,
                }
            }
            OtlpProtocol::HttpProtobuf => {
                let mut headers = HeaderMap::new();
                for (name, value) in otlp_transport::http_headers(target) {
                    let header = HeaderName::try_from(name.as_str())
                        .ok()
                        .zip(HeaderValue::try_from(value).ok());
                    let (name, value) = header.ok_or(TransportError::Header(name))?;
                    headers.insert(name, value);
                }
                Collector::Http {
                    client: otlp_transport::http_client(target)?,
                    url: target.url.parse().map_err(|e| invalid(&e))?,
                    headers,
                    gzip,
                }
            }
        })
    }

    /// Sends one request; the collector's partial success, if it reported one.
    async fn send(
        &mut self,
        request: ExportMetricsServiceRequest,
    ) -> Result<Option<ExportMetricsPartialSuccess>, String> {
        match self {
            Collector::Grpc { client, metadata } => {
                let mut request = tonic::Request::new(request);
                *request.metadata_mut() = metadata.clone();
                let response = client
                    .export(request)
                    .await
                    .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
                Ok(response.into_inner().partial_success)
            }
            Collector::Http {
                client,
                url,
                headers,
                gzip,
            } => {
                let mut body = request.encode_to_vec();
                if *gzip {
                    body = gzip_bytes(&body).map_err(|e| format!("gzip: {e}"))?;
                }
                let mut post = http::Request::post(url.clone())
                    .body(Bytes::from(body))
                    .map_err(|e| e.to_string())?;
                *post.headers_mut() = headers.clone();
                let post_headers = post.headers_mut();
                post_headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                );
                if *gzip {
                    post_headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                let response = client.send_bytes(post).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("the collector answered {}", response.status()));
                }
                // An empty body is a full success.
                let reply = ExportMetricsServiceResponse::decode(response.into_body())
                    .map_err(|e| format!("unreadable answer: {e}"))?;
                Ok(reply.partial_success)
            }
        }
    }
}

fn gzip_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(data)?;
    encoder.finish()
}
