//! Local telemetry backends for benchmarks: an OTLP/gRPC receiver of spans,
//! metrics and log records, and a Sentry envelope endpoint, that count what
//! they get and discard it, so "every signal on" costs what exporting costs without a
//! real backend's work on the same machine.
//!
//! ```text
//! cargo run --release --example telemetry_sink -- 127.0.0.1:4317 127.0.0.1:9411
//! # [otlp] endpoint = "http://127.0.0.1:4317" (spans, metrics, log records)
//! # sentry.dsn = "http://key@127.0.0.1:9411/1"
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

#[derive(Default, Clone)]
struct Counter(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let records: usize = request
            .into_inner()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.0.fetch_add(records as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Counts metric data points.
#[derive(Default, Clone)]
struct Points(Arc<AtomicU64>);

#[tonic::async_trait]
impl MetricsService for Points {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let points: usize = request
            .into_inner()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                _ => 0,
            })
            .sum();
        self.0.fetch_add(points as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Accepts every Sentry envelope with 200 and counts it.
async fn sentry_endpoint(addr: SocketAddr, envelopes: Arc<AtomicU64>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let envelopes = envelopes.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let envelopes = envelopes.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        envelopes.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"{}",
                        ))))
                    }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let otlp: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4317".to_owned())
        .parse()?;
    let sentry: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9411".to_owned())
        .parse()?;
    let spans = Counter::default();
    let records = Counter::default();
    let points = Points::default();
    let envelopes = Arc::new(AtomicU64::new(0));
    println!("OTLP/gRPC sink (traces, metrics, logs) on {otlp}, Sentry envelope sink on {sentry}");
    tokio::spawn(sentry_endpoint(sentry, envelopes.clone()));
    let (span_total, record_total) = (spans.0.clone(), records.0.clone());
    let data_points = points.0.clone();
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(spans))
        .add_service(LogsServiceServer::new(records))
        .add_service(MetricsServiceServer::new(points))
        .serve_with_shutdown(otlp, async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    println!(
        "received {} spans, {} log records, {} metric data points and {} Sentry envelopes",
        span_total.load(Ordering::Relaxed),
        record_total.load(Ordering::Relaxed),
        data_points.load(Ordering::Relaxed),
        envelopes.load(Ordering::Relaxed)
    );
    Ok(())
}
