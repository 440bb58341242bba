//! A real OTLP metrics receiver on loopback: tonic's gRPC server with the
//! generated `MetricsService` (optionally TLS that requires a client
//! certificate from a private CA), or a hyper server taking protobuf on
//! `POST /v1/metrics`, gzip-compressed or not. Each export is kept with the
//! compression it arrived with.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, HistogramDataPoint, Metric, NumberDataPoint,
};
use prost::Message;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

/// One export as the receiver got it.
#[derive(Debug, Clone)]
pub struct Export {
    pub request: ExportMetricsServiceRequest,
    /// `grpc-encoding` or `content-encoding`, when the request had one.
    pub encoding: Option<String>,
}

impl Export {
    pub fn metrics(&self) -> Vec<&Metric> {
        self.request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .collect()
    }

    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics().into_iter().find(|m| m.name == name)
    }

    pub fn histogram_points(&self, name: &str) -> Vec<&HistogramDataPoint> {
        match self.metric(name).and_then(|m| m.data.as_ref()) {
            Some(metric::Data::Histogram(h)) => h.data_points.iter().collect(),
            _ => Vec::new(),
        }
    }

    pub fn number_points(&self, name: &str) -> Vec<&NumberDataPoint> {
        match self.metric(name).and_then(|m| m.data.as_ref()) {
            Some(metric::Data::Sum(s)) => s.data_points.iter().collect(),
            Some(metric::Data::Gauge(g)) => g.data_points.iter().collect(),
            _ => Vec::new(),
        }
    }

    pub fn resource_attr(&self, key: &str) -> Option<String> {
        let resource = self.request.resource_metrics.first()?.resource.as_ref()?;
        match attr(&resource.attributes, key)? {
            Value::StringValue(s) => Some(s),
            _ => None,
        }
    }
}

pub use crate::otlp::{attr, str_attr};

#[derive(Clone, Default)]
struct Store {
    exports: Arc<Mutex<Vec<Export>>>,
}

impl Store {
    fn add(&self, request: ExportMetricsServiceRequest, encoding: Option<String>) {
        self.exports
            .lock()
            .unwrap()
            .push(Export { request, encoding });
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        self.add(request.into_inner(), encoding);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

pub struct MetricsCollector {
    pub addr: SocketAddr,
    store: Store,
    task: tokio::task::JoinHandle<()>,
    tls: bool,
}

impl MetricsCollector {
    /// gRPC on `http://addr`, accepting gzip.
    pub async fn grpc() -> Self {
        Self::grpc_with(None).await
    }

    /// gRPC over TLS on `https://localhost:port`, requiring a client
    /// certificate signed by `pki`'s CA.
    pub async fn grpc_mtls(pki: &crate::pki::Pki) -> Self {
        let identity =
            tonic::transport::Identity::from_pem(&pki.server_cert_pem, &pki.server_key_pem);
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(tonic::transport::Certificate::from_pem(&pki.ca_pem));
        Self::grpc_with(Some(tls)).await
    }

    async fn grpc_with(tls: Option<tonic::transport::ServerTlsConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let service =
            MetricsServiceServer::new(store.clone()).accept_compressed(CompressionEncoding::Gzip);
        let secure = tls.is_some();
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                builder = builder.tls_config(tls).unwrap();
            }
            let _ = builder
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            addr,
            store,
            task,
            tls: secure,
        }
    }

    /// HTTP/protobuf on `http://addr/v1/metrics`; a gzip body is
    /// decompressed as its `Content-Encoding` says.
    pub async fn http() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let shared = store.clone();
        let task = crate::otlp_http::serve(listener, "/v1/metrics", move |export| {
            ExportMetricsServiceRequest::decode(export.body)
                .map(|request| shared.add(request, export.encoding))
                .is_ok()
        });
        Self {
            addr,
            store,
            task,
            tls: false,
        }
    }

    pub fn endpoint(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn exports(&self) -> Vec<Export> {
        self.store.exports.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for the exports received so far.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Export]) -> bool) -> Vec<Export> {
        for _ in 0..400 {
            let exports = self.exports();
            if done(&exports) {
                return exports;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what}: never happened in {} exports", self.exports().len());
    }
}

impl Drop for MetricsCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
