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

/// The mock Ollama on 127.0.0.1:0, streaming at the given pace.
pub async fn mock_ollama(
    token_delay: Duration,
    first_token_delay: Duration,
) -> otel_sidecar::mock_ollama::MockOllama {
    let options = otel_sidecar::mock_ollama::MockOptions {
        token_delay,
        first_token_delay,
    };
    otel_sidecar::mock_ollama::MockOllama::start("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
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
    // Tests stop sidecars often; the shutdown tests set the delay themselves.
    config.listener.shutdown_delay = Duration::ZERO;
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

/// A streamed response whose headers and first body chunk have arrived; the
/// rest is left unread so a test can hold, cut or finish the stream.
pub struct OpenStream {
    pub status: http::StatusCode,
    pub first: Bytes,
    pub body: Incoming,
}

pub async fn open_stream(req: Request<TestBody>) -> OpenStream {
    let response = bounded("response headers", client().request(req))
        .await
        .expect("request succeeds");
    let status = response.status();
    let mut body = response.into_body();
    let first = bounded("first chunk", body.frame())
        .await
        .expect("a first frame")
        .expect("the first frame arrives intact")
        .into_data()
        .expect("the first frame is data");
    OpenStream {
        status,
        first,
        body,
    }
}

pub fn get(url: String) -> Request<TestBody> {
    Request::get(url).body(full(Bytes::new())).unwrap()
}

pub fn json_body(bytes: &Bytes) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
}

/// Answers with the request's method, URI and headers as JSON.
pub async fn mirror() -> TestUpstream {
    TestUpstream::start(|req| async move {
        let headers: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .keys()
            .map(|k| {
                let values: Vec<String> = req
                    .headers()
                    .get_all(k)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                (k.as_str().to_owned(), serde_json::json!(values.join(" | ")))
            })
            .collect();
        let seen = serde_json::json!({"method": req.method().as_str(), "uri": req.uri().to_string(), "headers": headers});
        Response::builder()
            .header("connection", "x-response-hop")
            .header("x-response-hop", "secret-hop")
            .header("keep-alive", "timeout=5")
            .header("x-from-upstream", "1")
            .body(full(seen.to_string()))
            .unwrap()
    })
    .await
}

/// The built binary, running with a config file written to a temp dir.
pub struct BinaryUnderTest {
    pub child: std::process::Child,
    /// The listener address from the JSON "otel-sidecar started" log line.
    pub listener: String,
    /// Every stdout line so far.
    pub lines: Arc<std::sync::Mutex<Vec<String>>>,
    /// Holds the config file for the binary's lifetime.
    _dir: tempfile::TempDir,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_otel-sidecar");

/// Starts the binary with `config` and waits for its start line on stdout.
pub fn spawn_binary(config: &str) -> BinaryUnderTest {
    spawn_binary_with_env(config, &[])
}

/// As [`spawn_binary`], with extra environment variables.
///
/// Unless `config` sets `shutdown_delay`, the binary closes its listener at
/// once on SIGTERM (`0s`), so tests that stop it do not wait out the
/// production default; the shutdown tests set the delay themselves.
pub fn spawn_binary_with_env(config: &str, env: &[(&str, &str)]) -> BinaryUnderTest {
    let (mut binary, started) = launch_binary(config, env);
    let started = started.recv_timeout(STEP).expect("binary logs its start");
    // JSON lines carry the address as a field; pretty lines as `listener=ADDR`.
    binary.listener = match serde_json::from_str::<serde_json::Value>(&started) {
        Ok(json) => json["listener"].as_str().unwrap().to_owned(),
        Err(_) => started
            .split("listener=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .to_owned(),
    };
    binary
}

/// Starts the binary without waiting for its start line (which a level
/// above `info` hides); `listener` is left empty. The receiver gets the
/// start line if it is logged.
pub fn launch_binary(
    config: &str,
    env: &[(&str, &str)],
) -> (BinaryUnderTest, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let config = if config.contains("shutdown_delay") {
        config.to_owned()
    } else if config.contains("[listener]\n") {
        config.replacen("[listener]\n", "[listener]\nshutdown_delay = \"0s\"\n", 1)
    } else {
        format!("[listener]\nshutdown_delay = \"0s\"\n{config}")
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Recorded before the start is announced, so a test that reads
            // `lines` after the start sees the start line.
            let started = line.contains("otel-sidecar started").then(|| line.clone());
            sink.lock().unwrap().push(line);
            if let Some(line) = started {
                let _ = started_tx.send(line);
            }
        }
    });
    let binary = BinaryUnderTest {
        child,
        listener: String::new(),
        lines,
        _dir: dir,
    };
    (binary, started_rx)
}

impl BinaryUnderTest {
    pub fn child_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The admin address from the JSON "otel-sidecar started" line.
    pub fn admin(&self) -> String {
        let lines = self.lines.lock().unwrap();
        let started = lines
            .iter()
            .find(|l| l.contains("otel-sidecar started"))
            .expect("the start line");
        let json: serde_json::Value = serde_json::from_str(started).unwrap();
        json["admin"].as_str().unwrap().to_owned()
    }

    /// SIGTERM, then its exit code once it has exited, and the binary for
    /// its lines.
    pub async fn terminate(mut self) -> (i32, Self) {
        crate::lifecycle::sigterm(&self.child);
        tokio::task::spawn_blocking(move || (crate::lifecycle::wait_exit(&mut self.child), self))
            .await
            .unwrap()
    }

    /// The configuration file the binary runs with (a test may rewrite it
    /// and reload).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("sidecar.toml")
    }
}

impl Drop for BinaryUnderTest {
    /// A failing test must not leave the binary running (it would hold the
    /// test harness's output open).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An upstream that streams `first` at once and `rest` only after the test
/// sends on the returned channel, then ends the body: for tests that must
/// hold a stream open (no buffering, draining, span and metric durations).
pub async fn gated_stream(
    first: &'static [u8],
    rest: &'static [u8],
) -> (TestUpstream, mpsc::Sender<()>) {
    let (release_tx, release_rx) = mpsc::channel::<()>(1);
    let release_rx = Arc::new(tokio::sync::Mutex::new(release_rx));
    let upstream = TestUpstream::start(move |_req| {
        let release_rx = release_rx.clone();
        async move {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(first)).await;
                release_rx.lock().await.recv().await;
                if !rest.is_empty() {
                    let _ = tx.send(Bytes::from_static(rest)).await;
                }
            });
            Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(body)
                .unwrap()
        }
    })
    .await;
    (upstream, release_tx)
}

/// A loopback port nothing listens on (bound, read, released): connects are refused.
pub async fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A path in the repository.
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A file of the repository, as text.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `/gated/...` streams a first line at once and the last only when the
/// test adds a permit; `/status/{code}` answers with that status; every
/// other path answers 200 `quick` at once.
pub async fn gated_upstream() -> (TestUpstream, Arc<tokio::sync::Semaphore>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let permits = gate.clone();
    let upstream = TestUpstream::start(move |req| {
        let gate = permits.clone();
        async move {
            let path = req.uri().path();
            if let Some(code) = path.strip_prefix("/status/") {
                return Response::builder()
                    .status(code.parse::<u16>().unwrap_or(500))
                    .body(full("status"))
                    .unwrap();
            }
            if !path.starts_with("/gated/") {
                return Response::new(full("quick"));
            }
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from_static(b"{\"response\":\"one\"}\n"))
                    .await;
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                    let _ = tx.send(Bytes::from_static(b"{\"done\":true}\n")).await;
                }
            });
            Response::builder()
                .header("content-type", "application/x-ndjson")
                .body(body)
                .unwrap()
        }
    })
    .await;
    (upstream, gate)
}
