//! The shutdown sequence of a rolling update, with the real binary: on
//! SIGTERM `/readyz` turns 503 while the listener keeps serving for
//! `shutdown_delay`, then the listener closes, in-flight streams finish, every
//! exchange is logged, traced and counted, and the process exits 0. A second
//! signal ends it at once.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::lifecycle::{signal, sigterm, wait_exit};
use crate::metrics::value;
use crate::otlp::OtlpReceiver;
use crate::support::*;

fn config(upstream: &TestUpstream, receiver: &OtlpReceiver, listener: &str) -> String {
    format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n{listener}\
         [admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\nprobe_interval = \"100ms\"\n\
         [tracing]\nsampler = \"always_on\"\n[tracing.otlp]\nendpoint = \"{}\"\n",
        upstream.url(),
        receiver.endpoint()
    )
}

async fn readyz(admin: &str) -> u16 {
    let (parts, _) = send(&client(), get(format!("http://{admin}/readyz"))).await;
    parts.status.as_u16()
}

async fn eventually_readyz(admin: &str, status: u16) {
    for _ in 0..200 {
        if readyz(admin).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/readyz never answered {status}");
}

/// A request on a connection of its own (no pooled connection can hide a
/// closed listener): the status, the `Connection` header, the body.
async fn fresh_connection_get(url: String) -> Result<(u16, Option<String>, Bytes), String> {
    let response = bounded("response", client().request(get(url)))
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let connection = response
        .headers()
        .get("connection")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = bounded("body", response.into_body().collect())
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, connection, body))
}

/// A keep-alive HTTP/1.1 connection that has finished one exchange and idles.
async fn idle_keep_alive_connection(listener: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listener).await.unwrap();
    stream
        .write_all(b"GET /idle HTTP/1.1\r\nhost: sidecar\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"quick") {
        let mut buf = [0u8; 1024];
        let n = bounded("idle connection's response", stream.read(&mut buf))
            .await
            .unwrap();
        assert!(n > 0, "closed before its response");
        response.extend_from_slice(&buf[..n]);
    }
    stream
}

async fn exit_code(binary: BinaryUnderTest) -> (i32, BinaryUnderTest) {
    let mut binary = binary;
    tokio::task::spawn_blocking(move || (wait_exit(&mut binary.child), binary))
        .await
        .unwrap()
}

fn access_lines(binary: &BinaryUnderTest) -> Vec<serde_json::Value> {
    binary
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"request completed\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_rolling_update_loses_no_exchange() {
    let (upstream, gate) = gated_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let mut binary = spawn_binary(&config(
        &upstream,
        &receiver,
        "shutdown_delay = \"4s\"\ndrain_timeout = \"20s\"\n",
    ));
    let (listener, admin) = (binary.listener.clone(), binary.admin());
    eventually_readyz(&admin, 200).await;

    let first = open_stream(get(format!("http://{listener}/gated/first"))).await;
    let second = open_stream(get(format!("http://{listener}/gated/second"))).await;
    let mut idle = idle_keep_alive_connection(&listener).await;
    sigterm(&binary.child);

    // The endpoint controller sees the pod unready at once...
    eventually_readyz(&admin, 503).await;
    // ...while a request routed before that still lands, on a new
    // connection, told to close so the client's next one goes elsewhere.
    let (status, connection, body) =
        fresh_connection_get(format!("http://{listener}/during-delay"))
            .await
            .expect("a request during the shutdown delay is served");
    assert_eq!((status, &body[..]), (200, &b"quick"[..]));
    assert_eq!(connection.as_deref(), Some("close"));
    // A keep-alive connection idle at SIGTERM is closed at once, while the
    // listener still takes the client's next connection.
    let mut buf = [0u8; 16];
    let read = bounded(
        "the idle connection to close",
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the idle connection stays open: {read:?}"
    );

    // After the delay the listener is closed: connections are refused.
    let mut refused = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(&listener).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        refused,
        "the listener still accepts after the shutdown delay"
    );
    assert!(
        fresh_connection_get(format!("http://{listener}/after-delay"))
            .await
            .is_err(),
        "a request after the delay must find no listener"
    );

    // Both streams opened before SIGTERM go on; the first finishes intact
    // and is counted while the second keeps the process draining.
    assert_eq!(&first.first[..], b"{\"response\":\"one\"}\n");
    gate.add_permits(1);
    let rest = bounded("rest of the first stream", first.body.collect())
        .await
        .expect("the first stream completes")
        .to_bytes();
    assert_eq!(&rest[..], b"{\"done\":true}\n");
    let mut counted = None;
    for _ in 0..100 {
        let (_, body) = send(&client(), get(format!("http://{admin}/metrics"))).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        counted = value(
            &text,
            r#"http_requests_total{method="GET",handler="other",status="200"}"#,
        );
        if counted == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        counted,
        Some(3.0),
        "the idle connection's request, the one during the delay and the drained \
         stream are counted while draining"
    );
    assert!(
        binary.child_running(),
        "exited while the second stream was in flight"
    );

    gate.add_permits(1);
    let rest = bounded("rest of the second stream", second.body.collect())
        .await
        .expect("the second stream completes")
        .to_bytes();
    assert_eq!(&rest[..], b"{\"done\":true}\n");
    let (code, binary) = exit_code(binary).await;
    assert_eq!(code, 0);

    let lines = access_lines(&binary);
    let mut paths: Vec<(&str, u64)> = lines
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            ("/during-delay", 200),
            ("/gated/first", 200),
            ("/gated/second", 200),
            ("/idle", 200),
        ],
        "one access line per exchange, none for the refused connection"
    );
    let spans = receiver.wait_for(8).await;
    for path in ["/during-delay", "/gated/first", "/gated/second"] {
        let server = spans
            .iter()
            .find(|s| {
                s.span.kind == SpanKind::Server as i32
                    && s.str_attr("url.path").as_deref() == Some(path)
            })
            .unwrap_or_else(|| panic!("no server span for {path}"));
        assert!(
            spans.iter().any(|s| s.span.kind == SpanKind::Client as i32
                && s.parent_span_id() == server.span_id()),
            "no client span for {path}"
        );
    }
}

#[tokio::test]
async fn a_stream_cut_at_the_drain_timeout_is_still_recorded() {
    let (upstream, _gate) = gated_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let binary = spawn_binary(&config(
        &upstream,
        &receiver,
        "shutdown_delay = \"0s\"\ndrain_timeout = \"500ms\"\n",
    ));
    let stream = open_stream(get(format!("http://{}/gated/held", binary.listener))).await;
    sigterm(&binary.child);
    // The drain gives up on the stream: the client sees it cut, never a
    // short success.
    let cut = bounded("the cut", stream.body.collect()).await;
    assert!(
        cut.is_err(),
        "a stream cut at the drain timeout must end in an error"
    );
    let (code, binary) = exit_code(binary).await;
    assert_eq!(code, 0);

    let lines = access_lines(&binary);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["path"], "/gated/held");
    // Cut by the proxy, not left by the client: the status sent, and why.
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["error_type"], "drain_timeout");
    let spans = receiver.wait_for(2).await;
    let server = spans
        .iter()
        .find(|s| {
            s.span.kind == SpanKind::Server as i32
                && s.str_attr("url.path").as_deref() == Some("/gated/held")
        })
        .expect("the cut stream's server span is exported");
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("drain_timeout")
    );
}

#[tokio::test]
async fn a_second_signal_ends_the_drain_at_once() {
    for (name, expected) in [("-TERM", 143), ("-INT", 130)] {
        let (upstream, _gate) = gated_upstream().await;
        let receiver = OtlpReceiver::grpc().await;
        let binary = spawn_binary(&config(
            &upstream,
            &receiver,
            "shutdown_delay = \"30s\"\ndrain_timeout = \"30s\"\n",
        ));
        let admin = binary.admin();
        let _held = open_stream(get(format!("http://{}/gated/held", binary.listener))).await;
        signal(&binary.child, name);
        eventually_readyz(&admin, 503).await;
        signal(&binary.child, name);
        // wait_exit gives up after 10 s, far inside the 60 s the sequence
        // would otherwise take.
        let (code, _) = exit_code(binary).await;
        assert_eq!(code, expected, "second {name}");
    }
}
