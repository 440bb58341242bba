//! A real OTLP metrics receiver on loopback: tonic's gRPC server with the
//! generated `MetricsService` (optionally TLS that requires a client
//! certificate from a private CA), or a hyper server taking protobuf on
//! `POST /v1/metrics`, gzip-compressed or not. Each export is kept with the
//! compression it arrived with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
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

pub fn attr(attributes: &[KeyValue], key: &str) -> Option<Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

pub fn str_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attr(attributes, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

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

/// PEM files of a private CA, a server certificate for `localhost` and a
/// client certificate, both signed by it.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: String,
    server: (String, String),
}

impl Pki {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let signed = |names: Vec<String>| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = signed(vec!["localhost".to_owned()]);
        let client = signed(vec!["otel-sidecar".to_owned()]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
        std::fs::write(dir.path().join("client.pem"), &client.0).unwrap();
        std::fs::write(dir.path().join("client-key.pem"), &client.1).unwrap();
        Self { dir, ca, server }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
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
    pub async fn grpc_mtls(pki: &Pki) -> Self {
        let identity = tonic::transport::Identity::from_pem(&pki.server.0, &pki.server.1);
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(tonic::transport::Certificate::from_pem(&pki.ca));
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
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let store = store.clone();
                            async move { Ok::<_, std::convert::Infallible>(receive(&store, req).await) }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
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

/// One OTLP/HTTP request: 200 with an empty response message, 400 for
/// anything that is not a (possibly gzip-compressed) protobuf export.
async fn receive(
    store: &Store,
    req: http::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    use std::io::Read;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let ok = req.method() == http::Method::POST
        && req.uri().path() == "/v1/metrics"
        && header("content-type").as_deref() == Some("application/x-protobuf");
    let encoding = header("content-encoding");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let body = match encoding.as_deref() {
        Some("gzip") => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .map(|_| Bytes::from(plain))
        }
        None => Ok(body),
        Some(_) => Err(std::io::Error::other("unknown content-encoding")),
    };
    let decoded = body
        .ok()
        .and_then(|b| ExportMetricsServiceRequest::decode(b).ok());
    let status = match decoded {
        Some(request) if ok => {
            store.add(request, encoding);
            200
        }
        _ => 400,
    };
    let reply = ExportMetricsServiceResponse {
        partial_success: None,
    }
    .encode_to_vec();
    let mut response = Response::new(Full::new(Bytes::from(reply)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", "application/x-protobuf".parse().unwrap());
    response
}
