//! Propagators and W3C Trace Context Level 2 through the real proxy: B3
//! headers as Zipkin's tracers and Envoy send them, the first configured
//! format winning, every configured format written upstream with the
//! proxy's client span as parent, the random trace-id flag, the
//! `server-timing` trace metric, and the W3C test suite's Level 2 cases.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otel_sidecar::config::{Config, Propagator, Sampler};

use crate::otlp::{OtlpReceiver, Received};
use crate::support::*;

/// A 128-bit B3 context as Brave (Zipkin's Java tracer) writes `b3`.
const ZIPKIN_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const ZIPKIN_SPAN: &str = "e457b5a2e4d86bd1";
const ZIPKIN_PARENT: &str = "05e3ac9a4f6e3b90";
/// Envoy's Zipkin tracer uses 64-bit trace ids unless `trace_id_128bit`.
const ENVOY_TRACE: &str = "463ac35c9f6413ad";
const ENVOY_SPAN: &str = "a2fb4a1d1a96d312";
const ENVOY_PARENT: &str = "0020000000000001";
const W3C_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const W3C_PARENT: &str = "b7ad6b7169203331";

fn traced(upstream: &str, receiver: &OtlpReceiver, propagators: &[Propagator]) -> Config {
    let mut config = test_config(upstream);
    config.tracing.enabled = true;
    config.tracing.sampler = Sampler::ParentbasedAlwaysOn;
    config.tracing.otlp.endpoint = Some(receiver.endpoint());
    config.tracing.otlp.timeout = Some(Duration::from_secs(2));
    config.tracing.propagators = propagators.to_vec();
    config
}

/// Sends a GET with `headers`; the response head and the headers the upstream saw.
async fn through(
    proxy: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (http::response::Parts, serde_json::Value) {
    let mut req = Request::get(format!("http://{proxy}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
    assert_eq!(parts.status, 200, "{body:?}");
    (parts, json_body(&body)["headers"].clone())
}

fn seen<'a>(headers: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.as_str().unwrap())
}

/// The server and client span of the one exchange exported.
async fn spans(sidecar: &otel_sidecar::Sidecar, receiver: &OtlpReceiver) -> (Received, Received) {
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let kind = |k: SpanKind| {
        spans
            .iter()
            .find(|s| s.span.kind == k as i32)
            .unwrap()
            .clone()
    };
    (kind(SpanKind::Server), kind(SpanKind::Client))
}

/// The W3C trace flags of an exported span (the low byte of OTLP's `flags`).
fn w3c_flags(span: &Received) -> u32 {
    span.span.flags & 0xff
}

#[tokio::test]
async fn zipkin_b3_single_header_is_continued_and_every_format_goes_upstream() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = mirror().await;
    let all = [
        Propagator::B3,
        Propagator::B3multi,
        Propagator::Tracecontext,
        Propagator::Baggage,
    ];
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, &all)).await;
    let b3 = format!("{ZIPKIN_TRACE}-{ZIPKIN_SPAN}-1-{ZIPKIN_PARENT}");
    let (_, up) = through(
        sidecar.proxy_addr(),
        "/api/chat",
        &[("b3", &b3), ("x-correlation-id", "corr-b3")],
    )
    .await;
    let (server, client) = spans(&sidecar, &receiver).await;
    assert_eq!(server.trace_id(), ZIPKIN_TRACE);
    assert_eq!(
        server.parent_span_id(),
        ZIPKIN_SPAN,
        "the caller's span is the server span's parent"
    );
    assert_eq!(client.parent_span_id(), server.span_id());
    assert_eq!(w3c_flags(&server), 0x01, "B3 carries no random flag");

    let (span, parent) = (client.span_id(), server.span_id());
    assert_eq!(
        seen(&up, "b3"),
        Some(format!("{ZIPKIN_TRACE}-{span}-1-{parent}").as_str())
    );
    assert_eq!(seen(&up, "x-b3-traceid"), Some(ZIPKIN_TRACE));
    assert_eq!(seen(&up, "x-b3-spanid"), Some(span.as_str()));
    assert_eq!(seen(&up, "x-b3-parentspanid"), Some(parent.as_str()));
    assert_eq!(seen(&up, "x-b3-sampled"), Some("1"));
    assert_eq!(seen(&up, "x-b3-flags"), None);
    assert_eq!(
        seen(&up, "traceparent"),
        Some(format!("00-{ZIPKIN_TRACE}-{span}-01").as_str())
    );
    assert_eq!(seen(&up, "baggage"), Some("correlation_id=corr-b3"));
    sidecar.stop().await;
}

#[tokio::test]
async fn envoy_b3_multi_headers_with_a_64_bit_trace_id_are_continued() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = mirror().await;
    let config = traced(&upstream.url(), &receiver, &[Propagator::B3multi]);
    let sidecar = start_sidecar(config).await;
    // As Envoy's Zipkin tracer sends them (lower-case names, x-request-id beside).
    let envoy = [
        ("x-request-id", "9a5e9f3c-5a3e-4b5e-8c1f-2f1e3c4d5e6f"),
        ("x-b3-traceid", ENVOY_TRACE),
        ("x-b3-spanid", ENVOY_SPAN),
        ("x-b3-parentspanid", ENVOY_PARENT),
        ("x-b3-sampled", "1"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("baggage", "tenant=a"),
    ];
    let (_, up) = through(sidecar.proxy_addr(), "/x", &envoy).await;
    let (server, client) = spans(&sidecar, &receiver).await;
    assert_eq!(server.trace_id(), format!("0000000000000000{ENVOY_TRACE}"));
    assert_eq!(server.parent_span_id(), ENVOY_SPAN);
    assert_eq!(
        seen(&up, "x-b3-traceid"),
        Some(ENVOY_TRACE),
        "a 64-bit trace id goes back as it came"
    );
    assert_eq!(seen(&up, "x-b3-spanid"), Some(client.span_id().as_str()));
    assert_eq!(
        seen(&up, "x-b3-parentspanid"),
        Some(server.span_id().as_str())
    );
    assert_eq!(seen(&up, "x-b3-sampled"), Some("1"));
    assert_eq!(seen(&up, "b3"), None, "b3 single is not configured");
    // Formats that are not configured travel as ordinary headers.
    assert_eq!(
        seen(&up, "traceparent"),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(
        seen(&up, "baggage"),
        Some("tenant=a"),
        "without the baggage propagator the correlation id is not added"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn b3_sampling_states_deny_debug_and_a_bare_deny() {
    let upstream = mirror().await;
    let b3_both = [
        Propagator::B3,
        Propagator::B3multi,
        Propagator::Tracecontext,
    ];

    // X-B3-Sampled: 0 (Brave, unsampled): nothing exported, the deny goes on.
    let receiver = OtlpReceiver::grpc().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, &b3_both)).await;
    let unsampled = [
        ("X-B3-TraceId", ZIPKIN_TRACE),
        ("X-B3-SpanId", ZIPKIN_SPAN),
        ("X-B3-Sampled", "0"),
    ];
    let (_, up) = through(sidecar.proxy_addr(), "/x", &unsampled).await;
    assert_eq!(seen(&up, "x-b3-traceid"), Some(ZIPKIN_TRACE));
    assert_eq!(seen(&up, "x-b3-sampled"), Some("0"));
    let b3 = seen(&up, "b3").unwrap();
    assert!(b3.starts_with(ZIPKIN_TRACE) && b3.contains("-0-"), "{b3}");
    assert!(seen(&up, "traceparent").unwrap().ends_with("-00"));

    // b3: 0 alone: a new trace, not sampled, its ids propagated with the deny.
    let (_, up) = through(sidecar.proxy_addr(), "/x", &[("b3", "0")]).await;
    let b3 = seen(&up, "b3").unwrap();
    let fields: Vec<&str> = b3.split('-').collect();
    assert_eq!(fields.len(), 4, "{b3}");
    assert_eq!(fields[2], "0");
    assert_eq!(seen(&up, "x-b3-sampled"), Some("0"));
    let traceparent = seen(&up, "traceparent").unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{}-", fields[0])) && traceparent.ends_with("-02"),
        "a new, random, unsampled trace: {traceparent}"
    );
    sidecar.traces().unwrap().flush().await;
    assert!(receiver.spans().is_empty(), "a denied trace was exported");
    sidecar.stop().await;

    // Debug: sampled, and the upstream is told it is a debug trace.
    let receiver = OtlpReceiver::grpc().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver, &b3_both)).await;
    let debug = format!("{ZIPKIN_TRACE}-{ZIPKIN_SPAN}-d");
    let (_, up) = through(sidecar.proxy_addr(), "/x", &[("b3", &debug)]).await;
    let (server, client) = spans(&sidecar, &receiver).await;
    assert_eq!(server.trace_id(), ZIPKIN_TRACE);
    let (span, parent) = (client.span_id(), server.span_id());
    assert_eq!(
        seen(&up, "b3"),
        Some(format!("{ZIPKIN_TRACE}-{span}-d-{parent}").as_str())
    );
    assert_eq!(seen(&up, "x-b3-flags"), Some("1"));
    assert_eq!(seen(&up, "x-b3-sampled"), None, "debug implies accept");
    sidecar.stop().await;
}

#[tokio::test]
async fn the_first_configured_format_wins_when_w3c_and_b3_both_arrive() {
    let upstream = mirror().await;
    let both = [
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03",
        ),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
    ];
    for (order, trace, parent) in [
        (
            [Propagator::Tracecontext, Propagator::B3],
            W3C_TRACE,
            W3C_PARENT,
        ),
        (
            [Propagator::B3, Propagator::Tracecontext],
            ZIPKIN_TRACE,
            ZIPKIN_SPAN,
        ),
    ] {
        let receiver = OtlpReceiver::grpc().await;
        let sidecar = start_sidecar(traced(&upstream.url(), &receiver, &order)).await;
        let (_, up) = through(sidecar.proxy_addr(), "/x", &both).await;
        let (server, client) = spans(&sidecar, &receiver).await;
        assert_eq!(server.trace_id(), trace, "{order:?}");
        assert_eq!(server.parent_span_id(), parent, "{order:?}");
        let span = client.span_id();
        let b3 = seen(&up, "b3").unwrap();
        assert!(b3.starts_with(&format!("{trace}-{span}-1-")), "{b3}");
        let traceparent = seen(&up, "traceparent").unwrap();
        if trace == W3C_TRACE {
            assert_eq!(traceparent, format!("00-{trace}-{span}-03"));
            assert_eq!(seen(&up, "tracestate"), Some("congo=t61rcWkgMzE"));
        } else {
            assert_eq!(traceparent, format!("00-{trace}-{span}-01"));
            assert_eq!(
                seen(&up, "tracestate"),
                None,
                "the tracestate of a trace not continued"
            );
        }
        sidecar.stop().await;
    }
}

#[tokio::test]
async fn new_traces_carry_the_random_flag() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = mirror().await;
    let sidecar = start_sidecar(traced(
        &upstream.url(),
        &receiver,
        &[Propagator::Tracecontext, Propagator::Baggage],
    ))
    .await;
    let (_, up) = through(sidecar.proxy_addr(), "/x", &[]).await;
    let (server, client) = spans(&sidecar, &receiver).await;
    assert_eq!(
        seen(&up, "traceparent"),
        Some(format!("00-{}-{}-03", server.trace_id(), client.span_id()).as_str())
    );
    assert_eq!(w3c_flags(&server), 0x03);
    assert_eq!(w3c_flags(&client), 0x03);
    sidecar.stop().await;
}

/// An upstream that times its own work in `Server-Timing`.
async fn timed_upstream() -> TestUpstream {
    TestUpstream::start(|_req| async move {
        Response::builder()
            .header("server-timing", "db;dur=53")
            .header("server-timing", "app;dur=47.2")
            .body(full("ok"))
            .unwrap()
    })
    .await
}

fn timings(parts: &http::response::Parts) -> Vec<String> {
    parts
        .headers
        .get_all("server-timing")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn server_timing_names_the_trace_only_when_enabled_and_beside_the_upstreams() {
    let upstream = timed_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let config = traced(&upstream.url(), &receiver, &[Propagator::Tracecontext]);
    let off = start_sidecar(config.clone()).await;
    let (parts, _) = send(&client(), get(format!("http://{}/x", off.proxy_addr()))).await;
    assert_eq!(
        timings(&parts),
        ["db;dur=53", "app;dur=47.2"],
        "off by default"
    );
    off.stop().await;

    // Its own receiver: the spans of the exchange above went to the first.
    let receiver = OtlpReceiver::grpc().await;
    let mut config = traced(&upstream.url(), &receiver, &[Propagator::Tracecontext]);
    config.tracing.server_timing = true;
    let on = start_sidecar(config).await;
    let req = Request::get(format!("http://{}/x", on.proxy_addr()))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(full(Bytes::new()))
        .unwrap();
    let (parts, _) = send(&client(), req).await;
    on.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let server = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(
        timings(&parts),
        [
            "db;dur=53".to_owned(),
            "app;dur=47.2".to_owned(),
            format!("trace;desc=00-{W3C_TRACE}-{}-01", server.span_id()),
        ],
        "appended to the upstream's, never over them"
    );
    on.stop().await;

    // The proxy's own error responses carry it too, naming the same trace as the body.
    let refused = format!("http://127.0.0.1:{}", closed_port().await);
    let mut config = traced(&refused, &receiver, &[Propagator::Tracecontext]);
    config.tracing.server_timing = true;
    let failing = start_sidecar(config).await;
    let (parts, body) = send(&client(), get(format!("http://{}/x", failing.proxy_addr()))).await;
    assert_eq!(parts.status, 502);
    let trace_id = json_body(&body)["trace_id"].as_str().unwrap().to_owned();
    let timing = timings(&parts);
    assert_eq!(timing.len(), 1, "{timing:?}");
    let desc = timing[0].strip_prefix("trace;desc=00-").unwrap();
    let fields: Vec<&str> = desc.split('-').collect();
    assert_eq!((fields[0], fields[2]), (trace_id.as_str(), "03"));
    assert_eq!(fields[1].len(), 16);
    failing.stop().await;

    // No trace, no metric.
    let mut untraced = test_config(&upstream.url());
    untraced.tracing.server_timing = true;
    let untraced = start_sidecar(untraced).await;
    let (parts, _) = send(
        &client(),
        get(format!("http://{}/x", untraced.proxy_addr())),
    )
    .await;
    assert_eq!(timings(&parts), ["db;dur=53", "app;dur=47.2"]);
    untraced.stop().await;
}

#[tokio::test]
async fn tracing_off_passes_valid_b3_through_and_drops_invalid() {
    let upstream = mirror().await;
    let mut config = test_config(&upstream.url());
    config.tracing.propagators = vec![
        Propagator::Tracecontext,
        Propagator::B3,
        Propagator::B3multi,
        Propagator::Baggage,
    ];
    let sidecar = start_sidecar(config).await;
    let b3 = format!("{ZIPKIN_TRACE}-{ZIPKIN_SPAN}-1-{ZIPKIN_PARENT}");
    let valid = [
        ("b3", b3.as_str()),
        ("x-b3-traceid", ENVOY_TRACE),
        ("x-b3-spanid", ENVOY_SPAN),
        ("x-b3-sampled", "0"),
    ];
    let (_, up) = through(sidecar.proxy_addr(), "/x", &valid).await;
    assert_eq!(seen(&up, "b3"), Some(b3.as_str()));
    assert_eq!(seen(&up, "x-b3-traceid"), Some(ENVOY_TRACE));
    assert_eq!(seen(&up, "x-b3-spanid"), Some(ENVOY_SPAN));
    assert_eq!(seen(&up, "x-b3-sampled"), Some("0"));
    assert_eq!(
        seen(&up, "traceparent"),
        None,
        "tracing off creates no context"
    );

    let invalid = [
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-2"),
        ("x-b3-traceid", ENVOY_TRACE),
        ("x-b3-spanid", "-"),
    ];
    let (_, up) = through(sidecar.proxy_addr(), "/x", &invalid).await;
    for name in ["b3", "x-b3-traceid", "x-b3-spanid"] {
        assert_eq!(seen(&up, name), None, "invalid {name} forwarded");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn a_reload_changes_propagators_and_server_timing() {
    let upstream = mirror().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    let receiver = OtlpReceiver::grpc().await;
    let file = |tracing: &str| {
        format!(
            "[listener]\naddress = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n\
             [admin]\naddress = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"{}\"\n\
             [tracing]\nsampler = \"always_on\"\n{tracing}\
             [tracing.otlp]\nendpoint = \"{}\"\n",
            upstream.url(),
            receiver.endpoint()
        )
    };
    std::fs::write(&path, file("propagators = [\"tracecontext\"]\n")).unwrap();
    let config = otel_sidecar::config::load_file(&path).unwrap();
    let extras = otel_sidecar::Extras {
        traces: otel_sidecar::telemetry::TracePipeline::start(&config).unwrap(),
        config_path: Some(path.clone()),
        ..Default::default()
    };
    let sidecar = otel_sidecar::Sidecar::start_with(config, extras)
        .await
        .unwrap();
    let b3 = format!("{ZIPKIN_TRACE}-{ZIPKIN_SPAN}-1");
    let (parts, up) = through(sidecar.proxy_addr(), "/x", &[("b3", &b3)]).await;
    assert_eq!(seen(&up, "b3"), Some(b3.as_str()), "b3 not configured yet");
    assert!(!seen(&up, "traceparent").unwrap().contains(ZIPKIN_TRACE));
    assert!(timings(&parts).is_empty());

    std::fs::write(
        &path,
        file("propagators = [\"b3\", \"tracecontext\"]\nserver_timing = true\n"),
    )
    .unwrap();
    bounded("reload", sidecar.reload()).await.unwrap();
    let (parts, up) = through(sidecar.proxy_addr(), "/x", &[("b3", &b3)]).await;
    let traceparent = seen(&up, "traceparent").unwrap();
    assert!(traceparent.contains(ZIPKIN_TRACE), "{traceparent}");
    assert_ne!(seen(&up, "b3"), Some(b3.as_str()));
    let timing = timings(&parts);
    assert_eq!(timing.len(), 1);
    assert!(timing[0].starts_with(&format!("trace;desc=00-{ZIPKIN_TRACE}-")));
    sidecar.stop().await;
}

/// The W3C trace-context test suite's cases that concern Level 2
/// (github.com/w3c/trace-context, test/test.py at acab820: the harness at
/// STRICT_LEVEL=2, SPEC_LEVEL=2), driven through the proxy: the harness's
/// request goes in, and what the upstream receives is judged as the
/// harness judges its callback (test/tracecontext/tracestate.py reads the
/// tracestate headers as one list, ignoring a repeated key).
mod w3c_suite {
    use super::*;

    const SUITE_PARENT: &str = "00-12345678901234567890123456789012-1234567890123456-00";
    const SUITE_TRACE: &str = "12345678901234567890123456789012";

    /// `(trace id, parent id, flags)` and the tracestate members the harness reads.
    type Seen = ((String, String, u8), Vec<(String, String)>);

    async fn harness(proxy: std::net::SocketAddr, headers: &[(&str, &str)]) -> Seen {
        let mut req = Request::post(format!("http://{proxy}/test"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let (parts, body) = send(&client(), req.body(full("[]")).unwrap()).await;
        assert_eq!(parts.status, 200);
        let up = json_body(&body)["headers"].clone();
        let traceparent = seen(&up, "traceparent").expect("one traceparent");
        let f: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(f.len(), 4, "{traceparent}");
        let flags = u8::from_str_radix(f[3], 16).unwrap();
        let mut members: Vec<(String, String)> = Vec::new();
        // The mirror joins repeated headers with " | ".
        for value in seen(&up, "tracestate")
            .into_iter()
            .flat_map(|v| v.split(" | "))
        {
            for member in value.split(',').map(|m| m.trim_matches([' ', '\t'])) {
                if member.is_empty() {
                    continue;
                }
                let (key, value) = member.split_once('=').unwrap();
                if members.iter().all(|(k, _)| k != key) {
                    members.push((key.to_owned(), value.to_owned()));
                }
            }
        }
        ((f[1].to_owned(), f[2].to_owned(), flags), members)
    }

    fn has(members: &[(String, String)], key: &str, value: &str) -> bool {
        members.iter().any(|(k, v)| k == key && v == value)
    }

    /// Tracing on with the default propagators; nothing the suite sends is
    /// sampled (its parents are unsampled, new roots are sampled out), so
    /// nothing is exported to the collector nobody runs here.
    async fn suite_proxy(upstream: &TestUpstream) -> otel_sidecar::Sidecar {
        let mut config = test_config(&upstream.url());
        config.tracing.enabled = true;
        config.tracing.sampler = Sampler::ParentbasedAlwaysOff;
        config.tracing.otlp.endpoint = Some(format!("http://127.0.0.1:{}", closed_port().await));
        start_sidecar(config).await
    }

    /// TraceContext2Test.test_propagates_random_flag.
    #[tokio::test]
    async fn test_propagates_random_flag() {
        let upstream = mirror().await;
        let sidecar = suite_proxy(&upstream).await;
        let ((trace, parent, flags), _) = harness(
            sidecar.proxy_addr(),
            &[(
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-02",
            )],
        )
        .await;
        assert_eq!(trace, SUITE_TRACE);
        assert_ne!(parent, "1234567890123456");
        assert_eq!(flags & 0x02, 0x02, "random flag not set");
        // test_both_traceparent_and_tracestate_missing, with Level 2's flag.
        let ((trace, _, flags), _) = harness(sidecar.proxy_addr(), &[]).await;
        assert_ne!(trace, SUITE_TRACE);
        assert_eq!(flags & 0x02, 0x02, "a new trace id is random");
        sidecar.stop().await;
    }

    /// TraceContextTest.test_tracestate_key_illegal_vendor_format.
    #[tokio::test]
    async fn test_tracestate_key_illegal_vendor_format() {
        let upstream = mirror().await;
        let sidecar = suite_proxy(&upstream).await;
        for key in ["foo@", "foo@@bar", "foo@bar@baz"] {
            let state = format!("{key}=1,bar=2");
            let (_, members) = harness(
                sidecar.proxy_addr(),
                &[("traceparent", SUITE_PARENT), ("tracestate", &state)],
            )
            .await;
            assert!(has(&members, key, "1"), "{key}: {members:?}");
            assert!(has(&members, "bar", "2"), "{key}: {members:?}");
        }
        let (_, members) = harness(
            sidecar.proxy_addr(),
            &[
                ("traceparent", SUITE_PARENT),
                ("tracestate", "@foo=1,bar=2"),
            ],
        )
        .await;
        assert!(!members.iter().any(|(k, _)| k == "bar"), "{members:?}");
        sidecar.stop().await;
    }

    /// TraceContextTest.test_tracestate_key_length_limit.
    #[tokio::test]
    async fn test_tracestate_key_length_limit() {
        let upstream = mirror().await;
        let sidecar = suite_proxy(&upstream).await;
        for key in [
            "z".repeat(256),
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
        ] {
            let member = format!("{key}=1");
            let (_, members) = harness(
                sidecar.proxy_addr(),
                &[
                    ("traceparent", SUITE_PARENT),
                    ("tracestate", "foo=1"),
                    ("tracestate", &member),
                ],
            )
            .await;
            assert!(
                has(&members, "foo", "1") && has(&members, &key, "1"),
                "{key}"
            );
        }
        let too_long = format!("{}=1", "z".repeat(257));
        let (_, members) = harness(
            sidecar.proxy_addr(),
            &[
                ("traceparent", SUITE_PARENT),
                ("tracestate", "foo=1"),
                ("tracestate", &too_long),
            ],
        )
        .await;
        assert!(!members.iter().any(|(k, _)| k == "foo"));
        sidecar.stop().await;
    }

    /// TraceContextTest.test_tracestate_duplicated_keys.
    #[tokio::test]
    async fn test_tracestate_duplicated_keys() {
        let upstream = mirror().await;
        let sidecar = suite_proxy(&upstream).await;
        for headers in [
            vec![("tracestate", "foo=1,foo=1")],
            vec![("tracestate", "foo=1,foo=2")],
            vec![("tracestate", "foo=1"), ("tracestate", "foo=1")],
            vec![("tracestate", "foo=1"), ("tracestate", "foo=2")],
        ] {
            let mut all = vec![("traceparent", SUITE_PARENT)];
            all.extend(headers.iter().copied());
            let ((trace, _, _), members) = harness(sidecar.proxy_addr(), &all).await;
            assert_eq!(trace, SUITE_TRACE);
            assert_eq!(
                members,
                [("foo".to_owned(), "1".to_owned())],
                "{headers:?}: the first member of the key"
            );
        }
        sidecar.stop().await;
    }

    /// TraceContextTest.test_tracestate_member_count_limit, and the cases
    /// whose header names and empty values the proxy's HTTP layer handles:
    /// test_tracestate_header_name_valid_casing, test_tracestate_empty_header,
    /// test_tracestate_included_traceparent_missing.
    #[tokio::test]
    async fn test_tracestate_member_count_limit_casing_and_empty_headers() {
        let upstream = mirror().await;
        let sidecar = suite_proxy(&upstream).await;
        let members = |range: std::ops::RangeInclusive<u32>| {
            range
                .map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (a, b, c) = (members(1..=10), members(11..=20), members(21..=30));
        for (last, kept) in [(members(31..=32), true), (members(31..=33), false)] {
            let (_, seen) = harness(
                sidecar.proxy_addr(),
                &[
                    ("traceparent", SUITE_PARENT),
                    ("tracestate", &a),
                    ("tracestate", &b),
                    ("tracestate", &c),
                    ("tracestate", &last),
                ],
            )
            .await;
            assert_eq!(has(&seen, "bar01", "01"), kept);
            assert_eq!(seen.len(), if kept { 32 } else { 0 });
        }
        for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
            let (_, seen) = harness(
                sidecar.proxy_addr(),
                &[("TraceParent", SUITE_PARENT), (name, "foo=1")],
            )
            .await;
            assert!(has(&seen, "foo", "1"), "{name}");
        }
        let ((trace, _, _), seen) = harness(
            sidecar.proxy_addr(),
            &[
                ("traceparent", SUITE_PARENT),
                ("tracestate", ""),
                ("tracestate", "foo=1"),
            ],
        )
        .await;
        assert_eq!(trace, SUITE_TRACE);
        assert!(has(&seen, "foo", "1"));
        let (_, one) = harness(sidecar.proxy_addr(), &[("tracestate", "foo=1")]).await;
        let (_, two) = harness(sidecar.proxy_addr(), &[("tracestate", "foo=1,bar=2")]).await;
        assert_eq!(
            (one.len(), two.len()),
            (0, 0),
            "tracestate without a traceparent"
        );
        sidecar.stop().await;
    }
}
