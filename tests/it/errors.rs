//! The proxy's own answers: 502, 504, 413, 431 with the JSON body and the
//! correlation header; streams cut cleanly; a client leaving cancels upstream.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::support::*;

/// Asserts DESIGN.md's error shape and returns the body's `error`.
fn assert_error_reply(parts: &http::response::Parts, body: &Bytes, status: u16) -> String {
    assert_eq!(parts.status, status, "{body:?}");
    assert_eq!(parts.headers["content-type"], "application/json");
    let id = parts.headers["x-correlation-id"].to_str().unwrap();
    let json = json_body(body);
    assert_eq!(json["correlation_id"], id);
    assert!(
        json.get("trace_id").is_some(),
        "trace_id key present (null without tracing)"
    );
    json["error"].as_str().unwrap().to_owned()
}

/// A TCP upstream that reads a request, writes `reply` (raw bytes, maybe
/// nothing) and closes the connection.
async fn raw_upstream(reply: &'static [u8]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(reply).await;
        }
    });
    addr
}

#[tokio::test]
async fn connect_refused_is_502_with_correlation_id() {
    let sidecar = start_sidecar(test_config(&format!(
        "http://127.0.0.1:{}",
        closed_port().await
    )))
    .await;
    let req = Request::get(format!("http://{}/api/tags", sidecar.proxy_addr()))
        .header("x-correlation-id", "corr-502")
        .body(full(Bytes::new()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(
        assert_error_reply(&parts, &body, 502),
        "upstream unreachable"
    );
    assert_eq!(parts.headers["x-correlation-id"], "corr-502");
    sidecar.stop().await;
}

#[tokio::test]
async fn reset_before_headers_is_502() {
    // Closes the connection without a response.
    let addr = raw_upstream(b"").await;
    let sidecar = start_sidecar(test_config(&format!("http://{addr}"))).await;
    let (parts, body) = send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
    assert_eq!(
        assert_error_reply(&parts, &body, 502),
        "upstream closed the connection"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn invalid_upstream_response_is_502() {
    let addr = raw_upstream(b"SMTP READY\r\n\r\n").await;
    let sidecar = start_sidecar(test_config(&format!("http://{addr}"))).await;
    let (parts, body) = send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
    assert_eq!(
        assert_error_reply(&parts, &body, 502),
        "upstream sent an invalid response"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn response_timeout_is_504() {
    let upstream = TestUpstream::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Response::new(full("too late"))
    })
    .await;
    let mut config = test_config(&upstream.url());
    config.upstream.response_timeout = Duration::from_millis(200);
    let sidecar = start_sidecar(config).await;
    let (parts, body) = send(
        &client(),
        get(format!("http://{}/slow", sidecar.proxy_addr())),
    )
    .await;
    assert_eq!(assert_error_reply(&parts, &body, 504), "upstream timeout");
    sidecar.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let upstream = TestUpstream::start(|req| async move {
        let n = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        Response::new(full(n.to_string()))
    })
    .await;
    let mut config = test_config(&upstream.url());
    config.listener.max_request_body = Some(otel_sidecar::config::ByteSize(1024));
    let sidecar = start_sidecar(config).await;
    let url = format!("http://{}/upload", sidecar.proxy_addr());

    // Declared length over the limit: refused before anything goes upstream.
    let (parts, body) = send(
        &client(),
        Request::post(&url).body(full(vec![b'a'; 2048])).unwrap(),
    )
    .await;
    assert_eq!(
        assert_error_reply(&parts, &body, 413),
        "request body too large"
    );

    // Chunked, no length: cut off when the limit is crossed.
    let (tx, streamed) = channel_body();
    tokio::spawn(async move {
        for _ in 0..4 {
            if tx.send(Bytes::from(vec![b'b'; 512])).await.is_err() {
                return;
            }
        }
    });
    let (parts, body) = send(&client(), Request::post(&url).body(streamed).unwrap()).await;
    assert_error_reply(&parts, &body, 413);

    // Under the limit passes.
    let (parts, body) = send(
        &client(),
        Request::post(&url).body(full(vec![b'c'; 1000])).unwrap(),
    )
    .await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"1000"[..]));
    sidecar.stop().await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let upstream = TestUpstream::start(|_req| async { Response::new(full("ok")) }).await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let url = format!("http://{}/x", sidecar.proxy_addr());

    let big = "v".repeat(70 * 1024);
    let req = Request::get(&url)
        .header("x-big", big)
        .body(full(Bytes::new()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(
        assert_error_reply(&parts, &body, 431),
        "request headers too large"
    );

    let mut req = Request::get(&url);
    for i in 0..150 {
        req = req.header(format!("x-h-{i}"), "1");
    }
    let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
    assert_error_reply(&parts, &body, 431);

    let (parts, _) = send(&client(), get(url)).await;
    assert_eq!(parts.status, 200);
    sidecar.stop().await;
}

#[tokio::test]
async fn silent_stream_is_cut_after_idle_timeout() {
    let upstream = TestUpstream::start(|_req| async {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            tx.send(Bytes::from_static(b"{\"response\":\"a\"}\n"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx);
        });
        Response::new(body)
    })
    .await;
    let mut config = test_config(&upstream.url());
    config.upstream.idle_timeout = Some(Duration::from_millis(200));
    let sidecar = start_sidecar(config).await;
    let OpenStream {
        status,
        first,
        mut body,
    } = open_stream(get(format!("http://{}/s", sidecar.proxy_addr()))).await;
    assert_eq!(status, 200);
    assert_eq!(first, Bytes::from_static(b"{\"response\":\"a\"}\n"));
    let cut = bounded("cut-off", body.frame()).await;
    assert!(
        matches!(cut, Some(Err(_))),
        "stream must end in an error, not a clean end: {cut:?}"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn client_leaving_mid_stream_cancels_the_upstream_request() {
    let (cancelled_tx, mut cancelled_rx) = tokio::sync::mpsc::channel::<()>(1);
    let upstream = TestUpstream::start(move |_req| {
        let cancelled_tx = cancelled_tx.clone();
        async move {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                // Bounded: 500 chunks at most; the send fails once the proxy drops the stream.
                for i in 0..500 {
                    let line = Bytes::from(format!("{{\"n\":{i}}}\n"));
                    if tx.send(line).await.is_err() {
                        let _ = cancelled_tx.send(()).await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            Response::new(body)
        }
    })
    .await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let stream = open_stream(get(format!("http://{}/s", sidecar.proxy_addr()))).await;
    drop(stream); // the client goes away
    bounded("upstream cancellation", cancelled_rx.recv())
        .await
        .expect("upstream saw the cancel");
    sidecar.stop().await;
}
