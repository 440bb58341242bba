//! The upstream connection pool when the upstream closes connections under
//! it: idle connections closed between requests, and the keep-alive race —
//! a request written on a connection the upstream closes before answering —
//! made certain by a scripted raw TCP upstream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::{expect_value, scrape};
use crate::otlp::OtlpReceiver;
use crate::support::*;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// What a scripted upstream does with each connection after reading a request.
#[derive(Clone, Copy)]
enum Script {
    /// Answers the first request, then reads the next and closes unanswered.
    AnswerOnceThenDropNext,
    /// Reads every request and closes unanswered.
    DropEvery,
    /// Answers one request, then closes the idle connection after `ms`.
    AnswerThenCloseIdle { ms: u64 },
}

struct ScriptedUpstream {
    addr: SocketAddr,
    /// Requests read, whatever happened to them.
    requests: Arc<AtomicUsize>,
    /// Connections that carried a request (the readiness probe's carry none).
    connections: Arc<AtomicUsize>,
}

impl ScriptedUpstream {
    async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen, opened) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, script, seen.clone(), opened.clone()));
            }
        });
        Self {
            addr,
            requests,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Script,
    seen: Arc<AtomicUsize>,
    used: Arc<AtomicUsize>,
) {
    let mut answered = 0;
    let mut first = true;
    while read_request(&mut stream).await {
        seen.fetch_add(1, Ordering::SeqCst);
        if std::mem::take(&mut first) {
            used.fetch_add(1, Ordering::SeqCst);
        }
        match script {
            Script::AnswerOnceThenDropNext if answered == 0 => {}
            Script::AnswerThenCloseIdle { ms } => {
                let _ = stream.write_all(OK).await;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return;
            }
            _ => return,
        }
        if stream.write_all(OK).await.is_err() {
            return;
        }
        answered += 1;
    }
}

/// Reads one request head and its Content-Length body; false at EOF.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

fn request(method: Method, url: String, body: &'static str) -> Request<TestBody> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(full(body))
        .unwrap()
}

#[tokio::test]
async fn a_get_lost_to_a_closing_pooled_connection_is_sent_again_and_recorded() {
    let upstream = ScriptedUpstream::start(Script::AnswerOnceThenDropNext).await;
    let receiver = OtlpReceiver::grpc().await;
    let mut config = test_config(&upstream.url());
    receiver.receive_every_span(&mut config);
    let sidecar = start_sidecar(config).await;
    let url = format!("http://{}/api/tags", sidecar.proxy_addr());
    let client = client();

    let (first, _) = send(&client, request(Method::GET, url.clone(), "")).await;
    assert_eq!(first.status, 200);
    // Written on the pooled connection, which the upstream closes unanswered.
    let (second, body) = send(&client, request(Method::GET, url, "")).await;
    assert_eq!(second.status, 200, "{body:?}");
    assert_eq!(body, "ok");
    assert_eq!(
        upstream.requests(),
        3,
        "the lost GET went out exactly once more"
    );
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);

    let spans = receiver.wait_for(4).await;
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.span.kind == 3) // SPAN_KIND_CLIENT
        .collect();
    assert_eq!(clients.len(), 2);
    let resent: Vec<_> = clients
        .iter()
        .filter(|s| s.int_attr("http.request.resend_count") == Some(1))
        .collect();
    assert_eq!(resent.len(), 1, "exactly the second exchange was resent");
    let span = &resent[0].span;
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "http.request.resend");
    assert_eq!(resent[0].int_attr("http.response.status_code"), Some(200));
    assert!(resent[0].str_attr("error.type").is_none());
    let first_client = clients
        .iter()
        .find(|s| s.int_attr("http.request.resend_count").is_none());
    assert!(
        first_client.is_some(),
        "a first-time request carries no resend count"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn a_post_lost_to_a_closing_pooled_connection_is_never_sent_twice() {
    let upstream = ScriptedUpstream::start(Script::AnswerOnceThenDropNext).await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let url = format!("http://{}/api/generate", sidecar.proxy_addr());
    let client = client();

    let (first, _) = send(&client, request(Method::POST, url.clone(), "{}")).await;
    assert_eq!(first.status, 200);
    let (second, body) = send(&client, request(Method::POST, url, "{\"a\":1}")).await;
    assert_eq!(second.status, 502);
    assert_eq!(json_body(&body)["error"], "upstream closed the connection");
    assert_eq!(
        upstream.requests(),
        2,
        "a POST that reached the upstream is not repeated"
    );
    expect_value(
        &sidecar,
        r#"upstream_errors_total{handler="/api/generate",error_type="reset"}"#,
        1.0,
    )
    .await;
    sidecar.stop().await;
}

#[tokio::test]
async fn a_bodiless_get_is_resent_once_at_most() {
    let upstream = ScriptedUpstream::start(Script::DropEvery).await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let url = format!("http://{}/api/tags", sidecar.proxy_addr());

    let (parts, _) = send(&client(), request(Method::GET, url, "")).await;
    assert_eq!(parts.status, 502);
    assert_eq!(upstream.requests(), 2, "one try and one resend, no more");
    sidecar.stop().await;
}

#[tokio::test]
async fn idle_connections_the_upstream_closes_leave_the_pool_without_an_error() {
    let upstream = ScriptedUpstream::start(Script::AnswerThenCloseIdle { ms: 20 }).await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let url = format!("http://{}/api/generate", sidecar.proxy_addr());
    let client = client();

    for i in 0..5 {
        let (parts, _) = send(&client, request(Method::POST, url.clone(), "{}")).await;
        assert_eq!(parts.status, 200, "request {i}");
        // Longer than the upstream keeps a connection idle.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(upstream.requests(), 5);
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        5,
        "each request found its pooled connection closed and opened a new one"
    );
    let text = scrape(&sidecar, None).await.2;
    assert!(
        !text.contains("upstream_errors_total{"),
        "no upstream errors: {text}"
    );
    sidecar.stop().await;
}
