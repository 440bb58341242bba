//! Overload protection: beyond `listener.max_concurrent_requests` requests
//! get the proxy's 503 with `Retry-After`, recorded as `overloaded`, while
//! the admitted exchanges go on unharmed; beyond `listener.max_connections`
//! connections wait for a place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::metrics::{expect_value, scrape, value};
use crate::otlp::OtlpReceiver;
use crate::support::*;

#[tokio::test]
async fn requests_beyond_the_limit_get_503_and_admitted_streams_are_unharmed() {
    let (upstream, gate) = gated_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let mut config = test_config(&upstream.url());
    config.listener.max_concurrent_requests = Some(2);
    receiver.receive_every_span(&mut config);
    let sidecar = start_sidecar(config).await;
    let proxy = sidecar.proxy_addr();

    // Two concurrent clients hold the two places with their streams.
    let first = open_stream(get(format!("http://{proxy}/gated/one"))).await;
    let second = open_stream(get(format!("http://{proxy}/gated/two"))).await;

    // A third client is shed, before anything is sent upstream.
    let req = Request::get(format!("http://{proxy}/quick"))
        .header("x-correlation-id", "shed-1")
        .body(full(""))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 503);
    assert_eq!(parts.headers["retry-after"], "1");
    assert_eq!(parts.headers["x-correlation-id"], "shed-1");
    let body = json_body(&body);
    assert_eq!(body["correlation_id"], "shed-1");
    assert!(
        body["error"].as_str().unwrap().contains("overloaded"),
        "{body}"
    );

    // The admitted streams finish intact.
    for stream in [first, second] {
        gate.add_permits(1);
        assert_eq!(&stream.first[..], b"{\"response\":\"one\"}\n");
        let rest = bounded("the rest of an admitted stream", stream.body.collect())
            .await
            .expect("an admitted stream completes")
            .to_bytes();
        assert_eq!(&rest[..], b"{\"done\":true}\n");
    }
    // Their places are free again once their bodies ended.
    let mut served = false;
    for _ in 0..100 {
        let (parts, _) = send(&client(), get(format!("http://{proxy}/after"))).await;
        if parts.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "places were not given back when the streams ended");

    expect_value(
        &sidecar,
        r#"sidecar_proxy_errors_total{handler="other",error_type="overloaded"}"#,
        1.0,
    )
    .await;
    let text = scrape(&sidecar, None).await.2;
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",handler="other",status="503"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"upstream_errors_total{handler="other",error_type="overloaded"}"#
        ),
        None,
        "a shed request is not an upstream failure"
    );

    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(1).await;
    let shed = spans
        .iter()
        .find(|s| s.str_attr("correlation_id").as_deref() == Some("shed-1"))
        .expect("the shed request has a server span");
    assert_eq!(shed.span.kind, SpanKind::Server as i32);
    assert_eq!(shed.str_attr("error.type").as_deref(), Some("overloaded"));
    assert!(
        !spans.iter().any(|s| s.parent_span_id() == shed.span_id()),
        "nothing was sent upstream, so no client span"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_place() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let (release_tx, release_rx) = tokio::sync::mpsc::channel::<()>(1);
    let release_rx = Arc::new(tokio::sync::Mutex::new(release_rx));
    let upstream = TestUpstream::start(move |req| {
        counter.fetch_add(1, Ordering::SeqCst);
        let release = release_rx.clone();
        async move {
            if req.uri().path() == "/hold" {
                release.lock().await.recv().await;
            }
            Response::new(full("ok"))
        }
    })
    .await;
    let mut config = test_config(&upstream.url());
    config.listener.max_connections = Some(1);
    let sidecar = start_sidecar(config).await;
    let proxy = sidecar.proxy_addr();

    // The one place: a connection whose request the upstream holds; it
    // asks to be closed afterwards, which frees the place.
    let held = tokio::spawn(async move {
        let req = Request::get(format!("http://{proxy}/hold"))
            .header("connection", "close")
            .body(full(""))
            .unwrap();
        send(&client(), req).await
    });
    for _ in 0..200 {
        if seen.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // A second connection is accepted by the kernel but not by the proxy:
    // its request waits, and never reaches the upstream meanwhile.
    let waiting =
        tokio::spawn(async move { send(&client(), get(format!("http://{proxy}/next"))).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "a connection beyond max_connections was served"
    );
    assert!(!waiting.is_finished());

    release_tx.send(()).await.unwrap();
    let (parts, _) = bounded("the held request", held).await.unwrap();
    assert_eq!(parts.status, 200);
    let (parts, body) = bounded("the waiting request", waiting).await.unwrap();
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"ok"[..]));
    sidecar.stop().await;
}
