//! A real OTLP receiver on loopback: tonic's gRPC server with the generated
//! `TraceService` (plain, or TLS requiring a client certificate), or a hyper
//! server taking protobuf on `POST /v1/traces` (or another path). Both
//! accept gzip and remember which encodings they were sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;

/// One received span with its resource attributes.
#[derive(Debug, Clone)]
pub struct Received {
    pub span: Span,
    pub resource: Vec<KeyValue>,
}

impl Received {
    pub fn attr(&self, key: &str) -> Option<Value> {
        attr(&self.span.attributes, key)
    }

    pub fn str_attr(&self, key: &str) -> Option<String> {
        str_attr(&self.span.attributes, key)
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            Value::IntValue(i) => Some(i),
            _ => None,
        }
    }

    pub fn resource_attr(&self, key: &str) -> Option<String> {
        str_attr(&self.resource, key)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.span.end_time_unix_nano - self.span.start_time_unix_nano)
    }
}

/// The value of attribute `key`, for spans, log records and data points alike.
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

/// The value of attribute `key` when it is a string.
pub fn str_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attr(attributes, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Default)]
struct Store {
    spans: Arc<Mutex<Vec<Received>>>,
    /// How long each export takes to answer: a slow collector.
    delay: Duration,
    /// The content encoding of each request (`grpc-encoding`,
    /// `content-encoding`), `identity` when none.
    encodings: Arc<Mutex<Vec<String>>>,
}

impl Store {
    fn add(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        span,
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        tokio::time::sleep(self.delay).await;
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .map_or("identity".to_owned(), |v| v.to_str().unwrap().to_owned());
        self.encodings.lock().unwrap().push(encoding);
        self.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

pub struct OtlpReceiver {
    pub addr: SocketAddr,
    store: Store,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// gRPC on `http://addr` (the OTLP default transport).
    pub async fn grpc() -> Self {
        Self::grpc_at(0, Duration::ZERO).await
    }

    /// gRPC on a given loopback port (0: any), answering each export after `delay`.
    pub async fn grpc_at(port: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store {
            delay,
            ..Store::default()
        };
        let service = TraceServiceServer::new(store.clone()).accept_compressed(GZIP);
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, store, task }
    }

    /// gRPC over TLS with `pki`'s server certificate, accepting only clients
    /// that present a certificate of `pki`'s CA (mTLS), on
    /// `https://localhost:port`.
    pub async fn grpc_mtls(pki: &crate::pki::Pki) -> Self {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let service = TraceServiceServer::new(store.clone()).accept_compressed(GZIP);
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(
                &pki.server_cert_pem,
                &pki.server_key_pem,
            ))
            .client_ca_root(Certificate::from_pem(&pki.ca_pem));
        let mut server = tonic::transport::Server::builder().tls_config(tls).unwrap();
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = server
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, store, task }
    }

    /// HTTP/protobuf on `http://addr/v1/traces`.
    pub async fn http() -> Self {
        Self::http_at(0).await
    }

    /// HTTP/protobuf on a given loopback port (0: any).
    pub async fn http_at(port: u16) -> Self {
        Self::http_on(port, "/v1/traces").await
    }

    /// HTTP/protobuf taking exports only on `path`.
    pub async fn http_on(port: u16, path: &'static str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let shared = store.clone();
        let task = crate::otlp_http::serve(listener, path, move |export| {
            let encoding = export.encoding.unwrap_or_else(|| "identity".to_owned());
            shared.encodings.lock().unwrap().push(encoding);
            ExportTraceServiceRequest::decode(export.body)
                .map(|request| shared.add(request))
                .is_ok()
        });
        Self { addr, store, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The content encodings the exports came with, in order.
    pub fn encodings(&self) -> Vec<String> {
        self.store.encodings.lock().unwrap().clone()
    }

    /// Turns tracing on in `config`, samples every request and exports here.
    pub fn receive_every_span(&self, config: &mut otel_sidecar::config::Config) {
        config.tracing.enabled = true;
        config.tracing.sampler = otel_sidecar::config::Sampler::AlwaysOn;
        config.tracing.otlp.endpoint = Some(self.endpoint());
    }

    pub fn spans(&self) -> Vec<Received> {
        self.store.spans.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` spans arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let spans = self.spans();
            if spans.len() >= n {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} spans, got {:?}", self.spans().len());
    }
}

const GZIP: tonic::codec::CompressionEncoding = tonic::codec::CompressionEncoding::Gzip;

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
