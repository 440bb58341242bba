//! A mock Ollama server that speaks the real wire formats: native NDJSON
//! streams (`/api/generate`, `/api/chat`), embeddings, `/api/tags`, and the
//! OpenAI-compatible `/v1` API with SSE streaming and `stream_options.include_usage`.
//!
//! Answers are deterministic (token counts follow from the request), so tests
//! can assert exact numbers. Chat requests with `tools` get a tool call. Used by `otel-sidecar demo`, the integration
//! tests and `cargo run --example mock_ollama`.

mod replies;
mod tools;

pub use replies::reply;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use replies::{Reply, ANSWER};

pub type MockBody = BoxBody<Bytes, Infallible>;

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Pause between streamed chunks, like a model producing tokens.
    pub token_delay: Duration,
    /// Pause before the first streamed chunk, like loading the model and
    /// reading the prompt (what time to first token measures).
    pub first_token_delay: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            token_delay: Duration::from_millis(20),
            first_token_delay: Duration::from_millis(60),
        }
    }
}

/// A running mock; dropping it does not stop it, [`MockOllama::stop`] does.
pub struct MockOllama {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MockOllama {
    /// Starts on `addr` (use port 0 for a free port).
    pub async fn start(addr: SocketAddr, options: MockOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let options = options.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let options = options.clone();
                        async move { Ok::<_, Infallible>(handle(req, &options).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn handle(req: Request<Incoming>, options: &MockOptions) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if parts.method == Method::GET {
        return match path.as_str() {
            "/" => text(StatusCode::OK, "Ollama is running"),
            "/api/tags" => json(StatusCode::OK, replies::tags()),
            "/v1/models" => json(StatusCode::OK, replies::models()),
            _ => not_found(),
        };
    }
    let Ok(collected) = body.collect().await else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "unreadable body"}),
        );
    };
    let request: Value = match serde_json::from_slice(&collected.to_bytes()) {
        Ok(v) => v,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": e.to_string()}),
            )
        }
    };
    match replies::reply(&path, &request) {
        Some(Reply::Json(value)) => json(StatusCode::OK, value),
        Some(Reply::Stream {
            content_type,
            chunks,
        }) => stream(content_type, chunks, options),
        Some(Reply::Error(status, message)) => json(status, serde_json::json!({"error": message})),
        None => not_found(),
    }
}

/// Sends the chunks one by one with `delay` between them; headers go at once.
fn stream(
    content_type: &'static str,
    chunks: Vec<Bytes>,
    options: &MockOptions,
) -> Response<MockBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let (first, every) = (options.first_token_delay, options.token_delay);
    tokio::spawn(async move {
        for (i, chunk) in chunks.into_iter().enumerate() {
            let delay = if i == 0 { first } else { every };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok(Frame::data(chunk)), rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(status: StatusCode, value: Value) -> Response<MockBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<MockBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}

fn not_found() -> Response<MockBody> {
    text(StatusCode::NOT_FOUND, "404 page not found")
}
