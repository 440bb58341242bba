//! Forwarding is transparent: bodies stream both ways unbuffered, the target is
//! byte-exact, headers are rewritten exactly as DESIGN.md's "Headers" says.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;

use crate::support::*;

#[tokio::test]
async fn five_mib_bodies_round_trip_both_ways() {
    let upstream = TestUpstream::start(|req| async move {
        // Echo the request body back as it arrives.
        let body = req.into_body().map_err(|_| unreachable!()).boxed();
        Response::new(body.map_err(|_: Infallible| unreachable!()).boxed())
    })
    .await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let payload: Bytes = (0..5 * 1024 * 1024u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();

    // Content-Length framed.
    let req = Request::post(format!("http://{}/upload", sidecar.proxy_addr()))
        .body(full(payload.clone()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body.len(), payload.len());
    assert!(body == payload, "5 MiB body changed in transit");

    // Chunked, in 64 KiB pieces.
    let (tx, streamed) = channel_body();
    let chunks = payload.clone();
    tokio::spawn(async move {
        for piece in chunks.chunks(64 * 1024) {
            if tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                return;
            }
        }
    });
    let req = Request::post(format!("http://{}/upload", sidecar.proxy_addr()))
        .body(streamed)
        .unwrap();
    let (_, body) = send(&client(), req).await;
    assert!(body == payload, "chunked 5 MiB body changed in transit");
    sidecar.stop().await;
}

#[tokio::test]
async fn streamed_response_is_not_buffered() {
    // The upstream sends its second chunk only after the test has received the
    // first one through the proxy: a buffering proxy deadlocks here and the
    // bounded wait fails the test. No timing is measured.
    let (upstream, release_tx) = gated_stream(
        b"{\"response\":\"first\"}\n",
        b"{\"response\":\"second\",\"done\":true}\n",
    )
    .await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let req = Request::post(format!("http://{}/api/generate", sidecar.proxy_addr()))
        .body(full(r#"{"model":"m","prompt":"p"}"#))
        .unwrap();
    let OpenStream {
        first, mut body, ..
    } = open_stream(req).await;
    assert_eq!(&first[..], b"{\"response\":\"first\"}\n");
    release_tx.send(()).await.unwrap();
    let second = bounded("second chunk", body.frame())
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&second[..], b"{\"response\":\"second\",\"done\":true}\n");
    assert!(bounded("end", body.frame()).await.is_none());
    sidecar.stop().await;
}

#[tokio::test]
async fn hop_by_hop_removed_and_forwarded_headers_appended() {
    let upstream = mirror().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let req = Request::get(format!("http://{}/api/tags", sidecar.proxy_addr()))
        .header("host", "api.example.com")
        .header("connection", "keep-alive, x-custom-hop")
        .header("x-custom-hop", "must-not-pass")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-end-to-end", "kept")
        .body(full(Bytes::new()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    let seen = json_body(&body);
    let h = &seen["headers"];
    for hop in [
        "connection",
        "x-custom-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert!(h.get(hop).is_none(), "{hop} was forwarded: {h}");
    }
    assert_eq!(h["x-end-to-end"], "kept");
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https, http");
    assert_eq!(h["x-forwarded-host"], "api.example.com");
    assert_eq!(h["host"], upstream.addr.to_string());

    assert!(
        parts.headers.get("x-response-hop").is_none(),
        "response hop-by-hop leaked"
    );
    assert!(parts.headers.get("keep-alive").is_none());
    assert_eq!(parts.headers["x-from-upstream"], "1");
    sidecar.stop().await;
}

#[tokio::test]
async fn path_and_query_are_forwarded_byte_exact() {
    let upstream = mirror().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let target = "/a%2Fb/./../c;p=1/%7Euser?q=%20x&y=a+b&&z=%zz&empty=";
    let (_, body) = send(
        &client(),
        get(format!("http://{}{target}", sidecar.proxy_addr())),
    )
    .await;
    let uri = json_body(&body)["uri"].as_str().unwrap().to_owned();
    assert_eq!(
        uri,
        format!("http://{}{target}", upstream.addr)
            .replace(&format!("http://{}", upstream.addr), "")
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn upstream_base_path_is_prepended() {
    let upstream = mirror().await;
    let sidecar = start_sidecar(test_config(&format!("{}/base/", upstream.url()))).await;
    let (_, body) = send(
        &client(),
        get(format!("http://{}/api/tags?x=1", sidecar.proxy_addr())),
    )
    .await;
    assert_eq!(json_body(&body)["uri"], "/base/api/tags?x=1");
    sidecar.stop().await;
}

#[tokio::test]
async fn correlation_id_accepted_validated_or_generated() {
    let upstream = mirror().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let url = format!("http://{}/api/tags", sidecar.proxy_addr());
    let call = |headers: Vec<(&'static str, &'static str)>| {
        let url = url.clone();
        async move {
            let mut req = Request::get(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
            let seen = json_body(&body)["headers"].clone();
            let response_id = parts.headers["x-correlation-id"]
                .to_str()
                .unwrap()
                .to_owned();
            (response_id, seen)
        }
    };

    // Absent: a new UUID, the same upstream and downstream.
    let (id, seen) = call(vec![]).await;
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(seen["x-correlation-id"], id);

    // A valid client ID is kept, never overwritten.
    let (id, seen) = call(vec![("x-correlation-id", "client-abc-123")]).await;
    assert_eq!(id, "client-abc-123");
    assert_eq!(seen["x-correlation-id"], "client-abc-123");

    // Only X-Request-ID: it becomes the correlation ID and is itself kept.
    let (id, seen) = call(vec![("x-request-id", "req-77")]).await;
    assert_eq!(id, "req-77");
    assert_eq!(seen["x-correlation-id"], "req-77");
    assert_eq!(seen["x-request-id"], "req-77");

    // An invalid first candidate falls through to the next valid one and is replaced upstream.
    let (id, seen) = call(vec![
        ("x-correlation-id", "has spaces in it"),
        ("x-request-id", "req-88"),
    ])
    .await;
    assert_eq!(id, "req-88");
    assert_eq!(seen["x-correlation-id"], "req-88");

    // Too long and nothing else: a fresh UUID.
    let long: &'static str = Box::leak("x".repeat(129).into_boxed_str());
    let (id, _) = call(vec![("x-correlation-id", long)]).await;
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    sidecar.stop().await;
}

#[tokio::test]
async fn ndjson_and_sse_streams_match_a_direct_connection() {
    use otel_sidecar::mock_ollama::{MockOllama, MockOptions};
    let mock = MockOllama::start(
        "127.0.0.1:0".parse().unwrap(),
        MockOptions {
            token_delay: std::time::Duration::from_millis(2),
            first_token_delay: std::time::Duration::from_millis(2),
        },
    )
    .await
    .unwrap();
    let sidecar = start_sidecar(test_config(&mock.url())).await;
    let cases = [
        (
            "/api/generate",
            r#"{"model":"llama3.2:1b","prompt":"why is the sky blue"}"#,
        ),
        (
            "/api/chat",
            r#"{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}]}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"llama3.2:1b","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        ),
    ];
    for (path, body) in cases {
        let mut received = Vec::new();
        for base in [mock.url(), format!("http://{}", sidecar.proxy_addr())] {
            let req = Request::post(format!("{base}{path}"))
                .body(full(body))
                .unwrap();
            let response = bounded("headers", client().request(req)).await.unwrap();
            let content_type = response.headers()["content-type"].clone();
            let mut body = response.into_body();
            let (mut bytes, mut frames) = (Vec::new(), 0);
            while let Some(frame) = bounded("frame", body.frame()).await {
                if let Ok(data) = frame.unwrap().into_data() {
                    bytes.extend_from_slice(&data);
                    frames += 1;
                }
            }
            assert!(
                frames > 5,
                "{path} arrived in {frames} frames: streamed responses must stay streamed"
            );
            received.push((content_type, bytes));
        }
        assert_eq!(
            received[0], received[1],
            "{path}: proxied stream differs from direct"
        );
    }
    sidecar.stop().await;
    mock.stop();
}
