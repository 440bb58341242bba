//! Sentry: one scrubbed event per qualifying exchange, linked to its trace,
//! delivered to a real envelope endpoint on loopback; a down, hanging or
//! rate-limiting Sentry never gets in the way.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otel_sidecar::config::{Config, SentryDsn, StatusRange};
use tokio::net::TcpListener;

use crate::metrics::{scrape, value};
use crate::otlp::OtlpReceiver;
use crate::support::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ingest {
    Accept,
    RateLimit,
    Hang,
}

/// One envelope as received: raw (decompressed) bytes and parsed items.
#[derive(Clone, Debug)]
struct Envelope {
    raw: Vec<u8>,
    items: Vec<(serde_json::Value, serde_json::Value)>,
}

impl Envelope {
    fn events(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.items
            .iter()
            .filter(|(h, _)| h["type"] == "event")
            .map(|(_, p)| p)
    }

    fn transactions(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.items
            .iter()
            .filter(|(h, _)| h["type"] == "transaction")
            .map(|(_, p)| p)
    }
}

/// `POST /api/{project}/envelope/`, decoding gzip or deflate if the client compresses.
pub(crate) struct SentryIngest {
    addr: std::net::SocketAddr,
    envelopes: Arc<Mutex<Vec<Envelope>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SentryIngest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SentryIngest {
    pub(crate) async fn start(mode: Ingest) -> Self {
        Self::start_at(mode, 0).await
    }

    /// On a given loopback port (0: any).
    async fn start_at(mode: Ingest, port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let envelopes = Arc::new(Mutex::new(Vec::new()));
        let store = envelopes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let store = store.clone();
                            async move {
                                if mode == Ingest::Hang {
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                }
                                let ok = req.method() == http::Method::POST
                                    && req.uri().path().starts_with("/api/42/envelope/")
                                    && req.headers().get("x-sentry-auth").is_some_and(|v| {
                                        v.to_str().unwrap().contains("sentry_key=publickey")
                                    });
                                let encoding = req
                                    .headers()
                                    .get("content-encoding")
                                    .map(|v| v.to_str().unwrap().to_owned());
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let raw = decode(encoding.as_deref(), &body);
                                if ok {
                                    store.lock().unwrap().push(Envelope {
                                        items: parse(&raw),
                                        raw,
                                    });
                                }
                                let mut response =
                                    Response::new(Full::new(Bytes::from_static(b"{}")));
                                match (ok, mode) {
                                    (false, _) => {
                                        *response.status_mut() = http::StatusCode::BAD_REQUEST
                                    }
                                    (true, Ingest::RateLimit) => {
                                        *response.status_mut() =
                                            http::StatusCode::TOO_MANY_REQUESTS;
                                        response
                                            .headers_mut()
                                            .insert("retry-after", "60".parse().unwrap());
                                        response.headers_mut().insert(
                                            "x-sentry-rate-limits",
                                            "60::organization".parse().unwrap(),
                                        );
                                    }
                                    _ => {}
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
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
            envelopes,
            task,
        }
    }

    pub(crate) fn dsn(&self) -> String {
        format!("http://publickey@{}/42", self.addr)
    }

    fn envelopes(&self) -> Vec<Envelope> {
        self.envelopes.lock().unwrap().clone()
    }

    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        self.envelopes()
            .iter()
            .flat_map(|e| e.events().cloned().collect::<Vec<_>>())
            .collect()
    }
}

fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        Some("gzip") => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap(),
        Some("deflate") => flate2::read::ZlibDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap(),
        None | Some("identity") => return body.to_vec(),
        Some(other) => panic!("unexpected content-encoding {other}"),
    };
    out
}

/// Envelope format: a header line, then items of a header line and a payload
/// (`length` bytes when given, else up to the next newline).
fn parse(raw: &[u8]) -> Vec<(serde_json::Value, serde_json::Value)> {
    let mut rest = raw;
    let line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let l = rest[..end].to_vec();
        *rest = &rest[(end + 1).min(rest.len())..];
        Some(l)
    };
    line(&mut rest).expect("envelope header");
    let mut items = Vec::new();
    while let Some(header) = line(&mut rest) {
        if header.is_empty() {
            continue;
        }
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        let payload = match header["length"].as_u64() {
            Some(len) => {
                let p = rest[..len as usize].to_vec();
                rest = &rest[(len as usize + 1).min(rest.len())..];
                p
            }
            None => line(&mut rest).unwrap_or_default(),
        };
        items.push((
            header,
            serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null),
        ));
    }
    items
}

async fn status_upstream() -> TestUpstream {
    TestUpstream::start(|req| async move {
        let status: u16 = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap_or(200);
        Response::builder()
            .status(status)
            .body(full("body"))
            .unwrap()
    })
    .await
}

fn with_sentry(upstream: &str, dsn: &str) -> Config {
    let mut config = test_config(upstream);
    config.sentry.dsn = SentryDsn::parse(dsn).unwrap();
    config.service.name = "agent-api".into();
    config.service.version = "1.2.3".into();
    config.service.environment = "staging".into();
    config
}

async fn call(sidecar: &otel_sidecar::Sidecar, path: &str) -> http::response::Parts {
    send(
        &client(),
        get(format!("http://{}{path}", sidecar.proxy_addr())),
    )
    .await
    .0
}

#[tokio::test]
async fn one_event_per_5xx_none_for_200_and_404() {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let upstream = status_upstream().await;
    let sidecar = start_sidecar(with_sentry(&upstream.url(), &ingest.dsn())).await;
    for path in ["/200", "/404", "/500/a", "/503", "/200", "/401"] {
        call(&sidecar, path).await;
    }
    sidecar.stop().await;
    let events = ingest.events();
    let mut messages: Vec<&str> = events
        .iter()
        .map(|e| {
            e["message"]
                .as_str()
                .or(e["logentry"]["message"].as_str())
                .unwrap()
        })
        .collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        vec!["HTTP 500 GET other", "HTTP 503 GET other"],
        "{events:#?}"
    );
    let e = events
        .iter()
        .find(|e| e["tags"]["http.status_code"] == "503")
        .unwrap();
    assert!(
        e["level"].is_null() || e["level"] == "error",
        "level error (Sentry's default, so it may be omitted)"
    );
    assert_eq!(e["fingerprint"], serde_json::json!(["GET other 503"]));
    assert_eq!(e["environment"], "staging");
    assert_eq!(e["release"], "agent-api@1.2.3");
    assert_eq!(e["tags"]["handler"], "other");
    assert_eq!(e["tags"]["http.method"], "GET");
    assert_eq!(e["tags"]["upstream"], upstream.url());
    assert_eq!(e["request"]["method"], "GET");
}

#[tokio::test]
async fn report_status_decides_what_is_reported() {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let upstream = status_upstream().await;
    let mut config = with_sentry(&upstream.url(), &ingest.dsn());
    config.sentry.report_status = vec![
        "404".parse::<StatusRange>().unwrap(),
        "500-502".parse().unwrap(),
    ];
    let sidecar = start_sidecar(config).await;
    for path in ["/404", "/500", "/502", "/503", "/200"] {
        call(&sidecar, path).await;
    }
    sidecar.stop().await;
    let mut statuses: Vec<String> = ingest
        .events()
        .iter()
        .map(|e| e["tags"]["http.status_code"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, vec!["404", "500", "502"]);
}

#[tokio::test]
async fn events_carry_correlation_trace_and_user_and_no_secrets() {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let receiver = OtlpReceiver::grpc().await;
    let upstream = status_upstream().await;
    let mut config = with_sentry(&upstream.url(), &ingest.dsn());
    receiver.receive_every_span(&mut config);
    config.sentry.user_header = Some("x-user-id".parse().unwrap());
    let sidecar = start_sidecar(config).await;
    let req = Request::get(format!(
        "http://{}/500/chat?api_key=QSECRET1&token=QSECRET2&model=m",
        sidecar.proxy_addr()
    ))
    .header("authorization", "Bearer HSECRET3")
    .header("cookie", "session=HSECRET4")
    .header("x-api-key", "HSECRET5")
    .header("x-client-secret", "HSECRET6")
    .header("referer", "https://admin:PSECRET7@app.example.com/page")
    .header("x-user-id", "user-123")
    .header("x-correlation-id", "sentry-corr-1")
    .body(full(Bytes::new()))
    .unwrap();
    let (parts, _) = send(&client(), req).await;
    assert_eq!(parts.status, 500);
    sidecar.traces().unwrap().flush().await;
    sidecar.stop().await;

    let spans = receiver.wait_for(2).await;
    let server = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Server as i32)
        .unwrap();
    let events = ingest.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        e["tags"]["correlation_id"],
        parts.headers["x-correlation-id"].to_str().unwrap()
    );
    assert_eq!(e["tags"]["correlation_id"], "sentry-corr-1");
    assert_eq!(
        e["contexts"]["trace"]["trace_id"],
        server.trace_id().as_str()
    );
    assert_eq!(e["contexts"]["trace"]["span_id"], server.span_id().as_str());
    assert_eq!(e["user"]["id"], "user-123");
    assert!(e["user"].get("ip_address").is_none());
    let url = e["request"]["url"].as_str().unwrap();
    assert!(
        url.contains("api_key=[REDACTED]") || url.contains("api_key=%5BREDACTED%5D"),
        "{url}"
    );
    let headers = &e["request"]["headers"];
    for dropped in [
        "authorization",
        "Authorization",
        "cookie",
        "Cookie",
        "x-api-key",
        "X-Api-Key",
    ] {
        assert!(headers.get(dropped).is_none(), "{dropped} sent: {headers}");
    }
    assert!(e["request"].get("cookies").is_none() || e["request"]["cookies"].is_null());
    for envelope in ingest.envelopes() {
        let raw = String::from_utf8_lossy(&envelope.raw);
        for secret in [
            "QSECRET1", "QSECRET2", "HSECRET3", "HSECRET4", "HSECRET5", "HSECRET6", "PSECRET7",
        ] {
            assert!(!raw.contains(secret), "{secret} left the process:\n{raw}");
        }
    }
}

#[tokio::test]
async fn connect_refused_is_reported_with_error_type_and_chain() {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sidecar = start_sidecar(with_sentry(
        &format!("http://127.0.0.1:{port}"),
        &ingest.dsn(),
    ))
    .await;
    assert_eq!(call(&sidecar, "/api/chat").await.status, 502);
    sidecar.stop().await;
    let events = ingest.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["tags"]["error.type"], "connect");
    assert_eq!(e["message"], "HTTP 502 GET /api/chat");
    let exception = &e["exception"]["values"][0];
    assert_eq!(exception["type"], "connect");
    let chain = exception["value"].as_str().unwrap();
    assert!(
        chain.contains("upstream unreachable") && chain.to_lowercase().contains("refused"),
        "{chain}"
    );
}

#[tokio::test]
async fn sample_rate_zero_sends_nothing_and_transactions_share_the_trace() {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let receiver = OtlpReceiver::grpc().await;
    let upstream = status_upstream().await;
    let mut config = with_sentry(&upstream.url(), &ingest.dsn());
    config.sentry.sample_rate = 0.0;
    config.sentry.traces_sample_rate = 1.0;
    receiver.receive_every_span(&mut config);
    let sidecar = start_sidecar(config).await;
    call(&sidecar, "/500").await;
    call(&sidecar, "/200").await;
    sidecar.traces().unwrap().flush().await;
    sidecar.stop().await;
    assert!(ingest.events().is_empty(), "sample_rate 0 sends no events");
    let transactions: Vec<serde_json::Value> = ingest
        .envelopes()
        .iter()
        .flat_map(|e| e.transactions().cloned().collect::<Vec<_>>())
        .collect();
    assert_eq!(transactions.len(), 2);
    let spans = receiver.wait_for(4).await;
    for t in &transactions {
        let trace_id = t["contexts"]["trace"]["trace_id"].as_str().unwrap();
        assert!(
            spans.iter().any(|s| s.trace_id() == trace_id),
            "transaction trace {trace_id} not among exported spans"
        );
        assert_eq!(t["transaction"], "GET other");
        assert_eq!(t["spans"][0]["op"], "http.client");
    }
}

#[tokio::test]
async fn a_down_hanging_or_rate_limiting_sentry_never_gets_in_the_way() {
    let upstream = status_upstream().await;
    let down = format!("http://publickey@127.0.0.1:{}/42", closed_port().await);
    let hanging = SentryIngest::start(Ingest::Hang).await;
    let limiting = SentryIngest::start(Ingest::RateLimit).await;
    // A refused or rate-limited Sentry answers at once: the queue drains and
    // nothing is dropped here. A hanging one fills the queue: drops are counted.
    for (dsn, must_drop) in [
        (down, false),
        (hanging.dsn(), true),
        (limiting.dsn(), false),
    ] {
        let mut config = with_sentry(&upstream.url(), &dsn);
        config.sentry.max_queue_size = 4;
        let sidecar = start_sidecar(config).await;
        for _ in 0..30 {
            assert_eq!(call(&sidecar, "/500").await.status, 500, "{dsn}");
        }
        let text = scrape(&sidecar, None).await.2;
        let dropped = value(
            &text,
            r#"sidecar_telemetry_dropped_total{signal="sentry_events"}"#,
        )
        .unwrap();
        if must_drop {
            assert!(
                dropped > 0.0,
                "{dsn}: 30 events into a queue of 4 must drop some"
            );
        }
        let started = Instant::now();
        bounded("shutdown with Sentry unavailable", sidecar.stop()).await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{dsn}: shutdown took {:?}",
            started.elapsed()
        );
    }
    assert!(
        !limiting.envelopes().is_empty(),
        "the rate-limited endpoint was reached"
    );
}

#[tokio::test]
async fn events_flow_again_when_sentry_comes_back() {
    let upstream = status_upstream().await;
    let port = closed_port().await;
    let dsn = format!("http://publickey@127.0.0.1:{port}/42");
    let sidecar = start_sidecar(with_sentry(&upstream.url(), &dsn)).await;
    for _ in 0..5 {
        assert_eq!(call(&sidecar, "/500").await.status, 500);
    }
    let ingest = SentryIngest::start_at(Ingest::Accept, port).await;
    let mut arrived = false;
    for _ in 0..100 {
        assert_eq!(call(&sidecar, "/500").await.status, 500);
        if !ingest.events().is_empty() {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(arrived, "no event reached Sentry once it was back");
    bounded("shutdown", sidecar.stop()).await;
}

#[tokio::test]
async fn requests_shed_for_overload_are_not_reported() {
    let ingest = SentryIngest::start(Ingest::Accept).await;
    let (upstream, gate) = gated_upstream().await;
    let mut config = with_sentry(&upstream.url(), &ingest.dsn());
    config.listener.max_concurrent_requests = Some(1);
    let sidecar = start_sidecar(config).await;
    let held = open_stream(get(format!("http://{}/gated/held", sidecar.proxy_addr()))).await;
    assert_eq!(call(&sidecar, "/status/500").await.status, 503, "shed");
    gate.add_permits(1);
    bounded(
        "the held stream",
        http_body_util::BodyExt::collect(held.body),
    )
    .await
    .unwrap();
    // The same request once admitted: the upstream's 500 is reported.
    let mut status = 0;
    for _ in 0..100 {
        status = call(&sidecar, "/status/500").await.status.as_u16();
        if status == 500 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 500);
    sidecar.stop().await;
    let statuses: Vec<String> = ingest
        .events()
        .iter()
        .map(|e| e["tags"]["http.status_code"].to_string())
        .collect();
    assert_eq!(
        statuses,
        vec!["\"500\"".to_owned()],
        "only the admitted 500"
    );
}
