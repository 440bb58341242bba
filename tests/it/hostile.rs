//! Hostile input: request-smuggling shapes, slow-loris clients, and header
//! values built to break parsers or leak into logs. The proxy keeps serving,
//! forwards nothing invalid, and answers what it cannot parse itself.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Every request the upstream saw: method, path and body.
async fn recording_upstream() -> (TestUpstream, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let upstream = TestUpstream::start(move |req| {
        let log = log.clone();
        async move {
            let line = format!("{} {}", req.method(), req.uri().path());
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            log.lock()
                .unwrap()
                .push(format!("{line} {}", String::from_utf8_lossy(&body)));
            Response::new(full("ok"))
        }
    })
    .await;
    (upstream, seen)
}

/// Writes raw bytes to the proxy and returns what it answers until it closes
/// the connection or 2 s pass.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn smuggling_shapes_are_normalised_or_rejected() {
    let (upstream, seen) = recording_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let addr = sidecar.proxy_addr();

    // Content-Length and chunked together: the chunked framing wins (RFC 9112
    // 6.3) and the proxy re-frames the body, so the "smuggled" bytes inside it
    // are body, never a second request upstream.
    let hidden = "GET /smuggled HTTP/1.1\r\nHost: x\r\nFoo: bar\r\n\r\n";
    let smuggle = format!(
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{hidden}\r\n0\r\n\r\n",
        hidden.len()
    );
    let reply = raw(addr, smuggle.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("POST /a GET /smuggled"),
        "the smuggled request is body: {requests:?}"
    );

    // Shapes that cannot be parsed safely are refused outright.
    for (name, request) in [
        (
            "two different Content-Lengths",
            &b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
        ),
        (
            "obs-fold",
            &b"GET /c HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n"[..],
        ),
        (
            "bare CR",
            &b"GET /d HTTP/1.1\r\nHost: x\rX-Evil: 1\r\n\r\n"[..],
        ),
        (
            "space before colon",
            &b"GET /e HTTP/1.1\r\nHost : x\r\n\r\n"[..],
        ),
        (
            "NUL in a value",
            &b"GET /f HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n"[..],
        ),
    ] {
        let reply = raw(addr, request).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{name}: {reply:?}");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing rejected reached the upstream"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn slow_loris_clients_are_cut_off() {
    let upstream = mirror().await;
    let mut config = test_config(&upstream.url());
    config.listener.header_read_timeout = Duration::from_millis(300);
    let sidecar = start_sidecar(config).await;
    let mut stream = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header line every 100 ms, never finishing the head.
    let cut = async {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            let mut probe = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await
            {
                return n == 0 || String::from_utf8_lossy(&probe[..n]).starts_with("HTTP/1.1 408");
            }
        }
        false
    };
    assert!(
        bounded("slow client cut off", cut).await,
        "a client trickling its head was never cut off"
    );
    // The proxy still serves everyone else.
    let (parts, _) = send(
        &client(),
        get(format!("http://{}/ok", sidecar.proxy_addr())),
    )
    .await;
    assert_eq!(parts.status, 200);
    sidecar.stop().await;
}

#[tokio::test]
async fn hostile_context_headers_are_replaced_never_forwarded_raw() {
    let upstream = mirror().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let huge = "a".repeat(64 * 1024 - 200);
    let members: Vec<String> = (0..3000).map(|i| format!("k{i}=v{i}")).collect();
    let baggage = members.join(",");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("x-correlation-id", huge.clone().into_bytes()),
        (
            "x-correlation-id",
            "caf\u{e9}-\u{1F600}".as_bytes().to_vec(),
        ),
        ("x-correlation-id", b"has\ttab".to_vec()),
        (
            "traceparent",
            "00-\u{e9}af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .as_bytes()
                .to_vec(),
        ),
        ("traceparent", huge.clone().into_bytes()),
        ("tracestate", huge.clone().into_bytes()),
        ("baggage", baggage.clone().into_bytes()),
        ("baggage", b"k=\xff\xfe".to_vec()),
    ];
    for (name, value) in cases {
        let mut req = Request::get(format!("http://{}/x", sidecar.proxy_addr()));
        req = req.header(name, http::HeaderValue::from_bytes(&value).unwrap());
        let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
        assert_eq!(parts.status, 200, "{name}");
        let seen = json_body(&body)["headers"].clone();
        let id = parts.headers["x-correlation-id"].to_str().unwrap();
        assert!(
            id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{name}: correlation id {id:?}"
        );
        assert_eq!(seen["x-correlation-id"], id);
        let forwarded_baggage = seen["baggage"].as_str().unwrap();
        assert!(
            forwarded_baggage.len() <= 8192
                && forwarded_baggage.ends_with(&format!("correlation_id={id}")),
            "{name}"
        );
        if name == "traceparent" || name == "tracestate" {
            assert!(
                seen.get("traceparent").is_none(),
                "{name}: an invalid traceparent was forwarded"
            );
            assert!(
                seen.get("tracestate").is_none(),
                "{name}: tracestate forwarded without a valid traceparent"
            );
        }
    }
    sidecar.stop().await;
}
