//! Trace context in and out, and the spans exported over OTLP (gRPC and
//! HTTP/protobuf) to a real receiver.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use otel_sidecar::config::{Config, OtlpProtocol, Sampler};

use crate::otlp::{OtlpReceiver, Received};
use crate::support::*;

const INBOUND: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const INBOUND_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn traced(upstream: &str, receiver: &OtlpReceiver, protocol: OtlpProtocol) -> Config {
    let mut config = test_config(upstream);
    config.tracing.enabled = true;
    config.tracing.sampler = Sampler::ParentbasedAlwaysOn;
    config.tracing.otlp.endpoint = Some(receiver.endpoint());
    config.tracing.otlp.protocol = Some(protocol);
    config.tracing.otlp.timeout = Some(Duration::from_secs(2));
    config.service.name = "agent-api".into();
    config.service.version = "1.2.3".into();
    config.service.namespace = "agents".into();
    config
        .service
        .resource_attributes
        .insert("k8s.pod.name".into(), "pod-7".into());
    config
}

/// Sends `req`, returns the response head, body and the headers the upstream saw.
async fn exchange(req: Request<TestBody>) -> (http::response::Parts, serde_json::Value) {
    let (parts, body) = send(&client(), req).await;
    let seen = if parts.status == 200 {
        json_body(&body)["headers"].clone()
    } else {
        json_body(&body)
    };
    (parts, seen)
}

fn by_kind(spans: &[Received], kind: SpanKind) -> Received {
    let found: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.kind == kind as i32)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span expected: {spans:#?}");
    found[0].clone()
}

/// `(trace id, parent id, flags)` of a traceparent header value.
fn parts_of(traceparent: &str) -> (String, String, String) {
    let p: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(p.len(), 4, "{traceparent}");
    assert_eq!(p[0], "00");
    (p[1].to_owned(), p[2].to_owned(), p[3].to_owned())
}

async fn server_and_client_spans(protocol: OtlpProtocol) {
    let receiver = match protocol {
        OtlpProtocol::Grpc => OtlpReceiver::grpc().await,
        OtlpProtocol::HttpProtobuf => OtlpReceiver::http().await,
    };
    let upstream = mirror().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, protocol)).await;
    let req = Request::get(format!(
        "http://{}/api/tags?api_key=s3cr3t&x=1",
        sidecar.proxy_addr()
    ))
    .header("user-agent", "it-test/1.0")
    .header("host", "api.example.com:8080")
    .body(full(Bytes::new()))
    .unwrap();
    let (parts, seen) = exchange(req).await;
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let server = by_kind(&spans, SpanKind::Server);
    let client = by_kind(&spans, SpanKind::Client);

    assert_eq!(server.span.name, "GET /api/tags");
    assert_eq!(client.span.name, "GET");
    assert_eq!(client.trace_id(), server.trace_id());
    assert_eq!(client.parent_span_id(), server.span_id());
    assert!(
        server.span.parent_span_id.is_empty(),
        "a new trace has a root server span"
    );

    let (trace_id, parent_id, flags) = parts_of(seen["traceparent"].as_str().unwrap());
    assert_eq!(
        (trace_id.as_str(), parent_id.as_str(), flags.as_str()),
        (server.trace_id().as_str(), client.span_id().as_str(), "03"),
        "a new trace: sampled, and random (W3C Level 2)"
    );

    let correlation = parts.headers["x-correlation-id"].to_str().unwrap();
    assert_eq!(
        server.str_attr("http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(server.str_attr("url.path").as_deref(), Some("/api/tags"));
    assert_eq!(server.str_attr("url.scheme").as_deref(), Some("http"));
    assert_eq!(server.str_attr("http.route").as_deref(), Some("/api/tags"));
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert_eq!(
        server.str_attr("network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        server.str_attr("user_agent.original").as_deref(),
        Some("it-test/1.0")
    );
    assert_eq!(
        server.str_attr("server.address").as_deref(),
        Some("api.example.com")
    );
    assert_eq!(
        server.str_attr("correlation_id").as_deref(),
        Some(correlation)
    );
    assert!(server
        .span
        .status
        .as_ref()
        .is_none_or(|s| s.code == StatusCode::Unset as i32));

    assert_eq!(
        client.str_attr("server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        client.int_attr("server.port"),
        Some(i64::from(upstream.addr.port()))
    );
    assert_eq!(
        client.str_attr("url.full").as_deref(),
        Some(format!("{}/api/tags?api_key=[REDACTED]&x=1", upstream.url()).as_str())
    );
    assert_eq!(client.int_attr("http.response.status_code"), Some(200));

    assert_eq!(
        server.resource_attr("service.name").as_deref(),
        Some("agent-api")
    );
    assert_eq!(
        server.resource_attr("service.version").as_deref(),
        Some("1.2.3")
    );
    assert_eq!(
        server.resource_attr("service.namespace").as_deref(),
        Some("agents")
    );
    assert_eq!(
        server
            .resource_attr("deployment.environment.name")
            .as_deref(),
        Some("production")
    );
    assert_eq!(
        server.resource_attr("k8s.pod.name").as_deref(),
        Some("pod-7")
    );
    assert!(
        spans
            .iter()
            .all(|s| !format!("{:?}", s.span).contains("s3cr3t")),
        "secret query value exported"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn spans_over_grpc() {
    server_and_client_spans(OtlpProtocol::Grpc).await;
}

#[tokio::test]
async fn spans_over_http_protobuf() {
    server_and_client_spans(OtlpProtocol::HttpProtobuf).await;
}

#[tokio::test]
async fn inbound_traceparent_is_continued_with_tracestate_and_baggage() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = mirror().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, OtlpProtocol::Grpc)).await;
    let req = Request::post(format!("http://{}/api/chat", sidecar.proxy_addr()))
        .header("traceparent", INBOUND)
        .header("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        .header("baggage", "userId=alice")
        .header("x-correlation-id", "corr-42")
        .body(full("{}"))
        .unwrap();
    let (_, seen) = exchange(req).await;
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let server = by_kind(&spans, SpanKind::Server);
    let client = by_kind(&spans, SpanKind::Client);
    assert_eq!(server.trace_id(), INBOUND_TRACE);
    assert_eq!(server.parent_span_id(), "b7ad6b7169203331");
    let (trace_id, parent_id, flags) = parts_of(seen["traceparent"].as_str().unwrap());
    assert_eq!(trace_id, INBOUND_TRACE);
    assert_eq!(
        parent_id,
        client.span_id(),
        "upstream's parent is the proxy's client span"
    );
    assert_eq!(flags, "01");
    assert_eq!(
        seen["tracestate"],
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
    assert_eq!(seen["baggage"], "userId=alice,correlation_id=corr-42");
    sidecar.stop().await;
}

#[tokio::test]
async fn invalid_traceparents_start_new_traces_and_are_not_forwarded() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = mirror().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, OtlpProtocol::Grpc)).await;
    let invalid = [
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
        "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c8031.c-b7ad6b7169203331-01",
    ];
    for value in invalid {
        let req = Request::get(format!("http://{}/x", sidecar.proxy_addr()))
            .header("traceparent", value)
            .header("tracestate", "foo=1")
            .body(full(Bytes::new()))
            .unwrap();
        let (_, seen) = exchange(req).await;
        let forwarded = seen["traceparent"].as_str().unwrap();
        let (trace_id, _, _) = parts_of(forwarded);
        assert_ne!(trace_id, INBOUND_TRACE, "{value}: trace continued");
        assert_ne!(forwarded, value);
        assert!(
            seen.get("tracestate").is_none(),
            "{value}: tracestate forwarded without a valid parent"
        );
    }
    // Two traceparent headers are invalid together.
    let req = Request::get(format!("http://{}/x", sidecar.proxy_addr()))
        .header("traceparent", INBOUND)
        .header(
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        )
        .body(full(Bytes::new()))
        .unwrap();
    let (_, seen) = exchange(req).await;
    let (trace_id, _, _) = parts_of(seen["traceparent"].as_str().unwrap());
    assert!(trace_id != INBOUND_TRACE && trace_id != "12345678901234567890123456789012");
    sidecar.stop().await;
}

async fn exported_after(
    config: Config,
    receiver: &OtlpReceiver,
    traceparent: Option<&str>,
    upstream: &TestUpstream,
) -> (usize, String) {
    let _ = upstream;
    let sidecar = start_sidecar(config).await;
    let mut req = Request::get(format!("http://{}/x", sidecar.proxy_addr()));
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let (_, seen) = exchange(req.body(full(Bytes::new())).unwrap()).await;
    sidecar.traces().unwrap().flush().await;
    sidecar.stop().await;
    (
        receiver.spans().len(),
        seen["traceparent"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn samplers_decide_what_is_exported() {
    let upstream = mirror().await;
    let unsampled_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    // Flags: the sampled bit is the decision; the random bit (02) is set on
    // the traces the proxy starts and kept as received on the others.
    let cases: [(Sampler, f64, Option<&str>, usize, &str); 6] = [
        (Sampler::Traceidratio, 0.0, None, 0, "02"),
        (
            Sampler::ParentbasedTraceidratio,
            1.0,
            Some(unsampled_parent),
            0,
            "00",
        ),
        (
            Sampler::ParentbasedTraceidratio,
            0.0,
            Some(INBOUND),
            2,
            "01",
        ),
        (Sampler::AlwaysOff, 1.0, None, 0, "02"),
        (Sampler::AlwaysOn, 1.0, Some(unsampled_parent), 2, "01"),
        (Sampler::ParentbasedAlwaysOff, 1.0, None, 0, "02"),
    ];
    for (sampler, ratio, parent, expected, flags) in cases {
        let receiver = OtlpReceiver::grpc().await;
        let mut config = traced(&upstream.url(), &receiver, OtlpProtocol::Grpc);
        config.tracing.sampler = sampler;
        config.tracing.ratio = ratio;
        let (exported, forwarded) = exported_after(config, &receiver, parent, &upstream).await;
        assert_eq!(
            exported, expected,
            "{sampler:?} ratio {ratio} parent {parent:?}"
        );
        assert_eq!(
            parts_of(&forwarded).2,
            flags,
            "{sampler:?}: sampled flag sent upstream"
        );
    }
}

#[tokio::test]
async fn statuses_and_error_types_for_404_502_504_and_client_abort() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = TestUpstream::start(|req| async move {
        match req.uri().path() {
            "/missing" => Response::builder().status(404).body(full("no")).unwrap(),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Response::new(full("late"))
            }
            "/boom" => Response::builder().status(503).body(full("down")).unwrap(),
            _ => {
                let (tx, body) = channel_body();
                tokio::spawn(async move {
                    for _ in 0..500 {
                        if tx
                            .send(Bytes::from_static(b"{\"response\":\"x\"}\n"))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
                Response::new(body)
            }
        }
    })
    .await;
    let mut config = traced(&upstream.url(), &receiver, OtlpProtocol::Grpc);
    config.upstream.response_timeout = Duration::from_millis(200);
    let sidecar = start_sidecar(config).await;
    let base = format!("http://{}", sidecar.proxy_addr());

    let (parts, _) = send(&client(), get(format!("{base}/missing"))).await;
    assert_eq!(parts.status, 404);
    let (parts, body) = send(&client(), get(format!("{base}/slow"))).await;
    assert_eq!(parts.status, 504);
    let timeout_trace = json_body(&body)["trace_id"].as_str().unwrap().to_owned();
    let (parts, _) = send(&client(), get(format!("{base}/boom"))).await;
    assert_eq!(parts.status, 503);
    let stream = open_stream(get(format!("{base}/stream"))).await;
    drop(stream);

    // The refused case needs an upstream that is gone.
    let refused_upstream = format!("http://127.0.0.1:{}", closed_port().await);
    let mut config = traced(&refused_upstream, &receiver, OtlpProtocol::Grpc);
    config.service.name = "refused".into();
    let refused = start_sidecar(config).await;
    let (parts, body) = send(
        &client(),
        get(format!("http://{}/down", refused.proxy_addr())),
    )
    .await;
    assert_eq!(parts.status, 502);
    let refused_trace = json_body(&body)["trace_id"].as_str().unwrap().to_owned();
    refused.stop().await;

    for _ in 0..100 {
        sidecar.traces().unwrap().flush().await;
        if receiver
            .spans()
            .iter()
            .filter(|s| s.span.kind == SpanKind::Server as i32)
            .count()
            >= 5
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spans = receiver.spans();
    let server = |path: &str| {
        spans
            .iter()
            .find(|s| {
                s.span.kind == SpanKind::Server as i32
                    && s.str_attr("url.path").as_deref() == Some(path)
            })
            .unwrap_or_else(|| panic!("no server span for {path}: {spans:#?}"))
            .clone()
    };
    let client_of = |server: &Received| {
        spans
            .iter()
            .find(|s| {
                s.span.kind == SpanKind::Client as i32 && s.parent_span_id() == server.span_id()
            })
            .cloned()
    };
    let status = |s: &Received| {
        s.span
            .status
            .as_ref()
            .map_or(StatusCode::Unset as i32, |st| st.code)
    };

    let missing = server("/missing");
    assert_eq!(missing.int_attr("http.response.status_code"), Some(404));
    assert_eq!(
        status(&missing),
        StatusCode::Unset as i32,
        "4xx is not a server error"
    );
    let missing_client = client_of(&missing).unwrap();
    assert_eq!(
        missing_client.str_attr("error.type").as_deref(),
        Some("404")
    );
    assert_eq!(status(&missing_client), StatusCode::Error as i32);

    let slow = server("/slow");
    assert_eq!(
        slow.trace_id(),
        timeout_trace,
        "the 504 body names the span's trace"
    );
    assert_eq!(slow.int_attr("http.response.status_code"), Some(504));
    assert_eq!(slow.str_attr("error.type").as_deref(), Some("timeout"));
    assert_eq!(status(&slow), StatusCode::Error as i32);
    assert_eq!(
        client_of(&slow).unwrap().str_attr("error.type").as_deref(),
        Some("timeout")
    );

    let boom = server("/boom");
    assert_eq!(boom.str_attr("error.type").as_deref(), Some("503"));
    assert_eq!(status(&boom), StatusCode::Error as i32);

    let aborted = server("/stream");
    assert_eq!(aborted.int_attr("http.response.status_code"), Some(499));
    assert_eq!(
        aborted.str_attr("error.type").as_deref(),
        Some("client_abort")
    );

    let down = server("/down");
    assert_eq!(down.trace_id(), refused_trace);
    assert_eq!(down.int_attr("http.response.status_code"), Some(502));
    assert_eq!(down.str_attr("error.type").as_deref(), Some("connect"));
    assert_eq!(
        client_of(&down).unwrap().str_attr("error.type").as_deref(),
        Some("connect")
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn server_span_lasts_until_the_stream_ends() {
    let receiver = OtlpReceiver::grpc().await;
    let (upstream, release_tx) =
        gated_stream(b"{\"response\":\"a\"}\n", b"{\"done\":true}\n").await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, OtlpProtocol::Grpc)).await;
    let OpenStream { body, .. } =
        open_stream(get(format!("http://{}/api/generate", sidecar.proxy_addr()))).await;
    let held = Duration::from_millis(300);
    tokio::time::sleep(held).await;
    release_tx.send(()).await.unwrap();
    bounded("rest", body.collect()).await.unwrap();
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let server = by_kind(&spans, SpanKind::Server);
    assert!(
        server.duration() >= held,
        "server span ended before the body: {:?}",
        server.duration()
    );
    assert!(by_kind(&spans, SpanKind::Client).duration() >= held);
    sidecar.stop().await;
}

#[tokio::test]
async fn tracing_off_leaves_trace_headers_untouched() {
    let upstream = mirror().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let req = Request::get(format!("http://{}/x", sidecar.proxy_addr()))
        .header("traceparent", INBOUND)
        .header("tracestate", "foo=1")
        .header("x-correlation-id", "c-1")
        .body(full(Bytes::new()))
        .unwrap();
    let (parts, seen) = exchange(req).await;
    assert_eq!(seen["traceparent"], INBOUND);
    assert_eq!(seen["tracestate"], "foo=1");
    assert_eq!(
        seen["baggage"], "correlation_id=c-1",
        "baggage carries the correlation id regardless"
    );
    assert!(sidecar.traces().is_none());
    assert_eq!(parts.status, 200);
    sidecar.stop().await;
}

#[tokio::test]
async fn collector_down_or_hanging_never_fails_requests_and_drops_are_counted() {
    let upstream = mirror().await;
    // Down: nothing listens. Hanging: accepts TCP and never answers.
    let down = format!("http://127.0.0.1:{}", closed_port().await);
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    let keep_open = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = hanging.accept().await {
            open.push(stream);
        }
    });
    for (endpoint, protocol) in [
        (down.clone(), OtlpProtocol::Grpc),
        (hanging_url.clone(), OtlpProtocol::Grpc),
        (down.clone(), OtlpProtocol::HttpProtobuf),
        (hanging_url.clone(), OtlpProtocol::HttpProtobuf),
    ] {
        let mut config = test_config(&upstream.url());
        config.tracing.enabled = true;
        config.tracing.sampler = Sampler::AlwaysOn;
        config.tracing.otlp.endpoint = Some(endpoint.clone());
        config.tracing.otlp.protocol = Some(protocol);
        config.tracing.otlp.timeout = Some(Duration::from_millis(200));
        config.tracing.otlp.max_queue_size = 8;
        let sidecar = start_sidecar(config).await;
        for _ in 0..40 {
            let (parts, _) =
                send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
            assert_eq!(parts.status, 200, "{endpoint} {protocol:?}");
        }
        let tracing = sidecar.traces().unwrap();
        for _ in 0..100 {
            if tracing.dropped_spans() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            tracing.dropped_spans() > 0,
            "{endpoint} {protocol:?}: drops not counted"
        );
        bounded("shutdown with a dead collector", sidecar.stop()).await;
    }
    keep_open.abort();
}

#[tokio::test]
async fn spans_flow_again_when_the_collector_comes_back() {
    let upstream = mirror().await;
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let port = closed_port().await;
        let mut config = test_config(&upstream.url());
        config.tracing.enabled = true;
        config.tracing.sampler = Sampler::AlwaysOn;
        config.tracing.otlp.endpoint = Some(format!("http://127.0.0.1:{port}"));
        config.tracing.otlp.protocol = Some(protocol);
        config.tracing.otlp.timeout = Some(Duration::from_millis(200));
        config.tracing.otlp.max_queue_size = 8;
        let sidecar = start_sidecar(config).await;
        let url = || get(format!("http://{}/x", sidecar.proxy_addr()));
        for _ in 0..20 {
            assert_eq!(send(&client(), url()).await.0.status, 200);
        }
        let tracing = sidecar.traces().unwrap();
        for _ in 0..100 {
            if tracing.dropped_spans() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dropped_while_down = tracing.dropped_spans();
        assert!(dropped_while_down > 0, "{protocol:?}: drops not counted");

        // The collector comes back on the same address.
        let receiver = match protocol {
            OtlpProtocol::Grpc => OtlpReceiver::grpc_at(port, Duration::ZERO).await,
            OtlpProtocol::HttpProtobuf => OtlpReceiver::http_at(port).await,
        };
        let mut arrived = false;
        for _ in 0..100 {
            assert_eq!(send(&client(), url()).await.0.status, 200);
            if !receiver.spans().is_empty() {
                arrived = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            arrived,
            "{protocol:?}: no span reached the collector once it was back"
        );
        bounded("shutdown", sidecar.stop()).await;
    }
}

#[tokio::test]
async fn a_slow_collector_never_fails_requests_and_every_span_is_accounted_for() {
    let upstream = mirror().await;
    // Each export answers after 300 ms; requests keep coming meanwhile.
    let receiver = OtlpReceiver::grpc_at(0, Duration::from_millis(300)).await;
    let mut config = test_config(&upstream.url());
    receiver.receive_every_span(&mut config);
    config.tracing.otlp.timeout = Some(Duration::from_secs(2));
    config.tracing.otlp.max_queue_size = 64;
    let sidecar = start_sidecar(config).await;
    for _ in 0..300 {
        let (parts, _) = send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
        assert_eq!(parts.status, 200);
    }
    // 600 spans into a queue of 64 drained by 300 ms exports: whatever did
    // not fit is counted, and everything else arrives.
    let tracing = sidecar.traces().unwrap();
    let mut total = 0;
    for _ in 0..200 {
        total = receiver.spans().len() as u64 + tracing.dropped_spans();
        if total == 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total, 600, "every span delivered or counted as dropped");
    assert!(!receiver.spans().is_empty());
    bounded("shutdown", sidecar.stop()).await;
}
