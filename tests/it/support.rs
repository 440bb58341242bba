//! Fixtures: test upstreams, a client, and a sidecar started on ephemeral ports.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use otel_sidecar::config::Config;
use otel_sidecar::Sidecar;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub type TestBody = BoxBody<Bytes, Infallible>;

/// Every test step that waits on the network is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).boxed()
}

/// A response body fed chunk by chunk through the returned sender.
pub fn channel_body() -> (mpsc::Sender<Bytes>, TestBody) {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    (tx, BodyExt::boxed(StreamBody::new(frames)))
}

/// An HTTP/1.1 + HTTP/2 upstream on 127.0.0.1:0 that answers with `handler`.
pub struct TestUpstream {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let fut = handler(req);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A configuration for tests: ephemeral loopback ports, no exporters.
pub fn test_config(upstream: &str) -> Config {
    let mut config = Config::default();
    config.upstream.url = upstream.parse().unwrap();
    config.listener.address = "127.0.0.1:0".parse().unwrap();
    config.admin.address = "127.0.0.1:0".parse().unwrap();
    config.upstream.probe_interval = Duration::from_millis(100);
    config.tracing.enabled = false;
    config
}

pub async fn start_sidecar(config: Config) -> Sidecar {
    Sidecar::start(config).await.expect("sidecar starts")
}

pub type TestClient = Client<HttpConnector, TestBody>;

pub fn client() -> TestClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

pub fn h2c_client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends a request and collects the whole response.
pub async fn send(client: &TestClient, req: Request<TestBody>) -> (http::response::Parts, Bytes) {
    let response = bounded("response headers", client.request(req))
        .await
        .expect("request succeeds");
    let (parts, body) = response.into_parts();
    let body = bounded("response body", body.collect())
        .await
        .expect("body completes")
        .to_bytes();
    (parts, body)
}

pub fn get(url: String) -> Request<TestBody> {
    Request::get(url).body(full(Bytes::new())).unwrap()
}

pub fn json_body(bytes: &Bytes) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
}
