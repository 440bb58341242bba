//! HTTP/1 framing on raw sockets, on both sides of the proxy: pipelined
//! requests, heads that trickle in a byte at a time or outgrow the first read,
//! keep-alive connections that go quiet between requests, bodies on either
//! side of the read sizes. These are the paths the vendored hyper's buffer
//! handling changes (vendor/hyper/PATCHES.md): a connection with nothing
//! buffered reads onto the stack and keeps only what arrived.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// One response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads from `stream` into `pending` until it holds `at_least` bytes.
async fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>, at_least: usize) {
    let mut chunk = [0u8; 16 * 1024];
    while pending.len() < at_least {
        let n = bounded("a response's bytes", stream.read(&mut chunk))
            .await
            .unwrap();
        assert!(n > 0, "connection closed mid-response: {pending:?}");
        pending.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP/1.1 response (Content-Length or chunked) and leaves what
/// follows it in `pending`, so pipelined responses read one after another.
async fn read_response(stream: &mut TcpStream, pending: &mut Vec<u8>) -> RawResponse {
    let head_end = loop {
        if let Some(at) = find(pending, b"\r\n\r\n") {
            break at;
        }
        let want = pending.len() + 1;
        fill(stream, pending, want).await;
    };
    let head = String::from_utf8(pending[..head_end].to_vec()).unwrap();
    pending.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().unwrap();
        fill(stream, pending, len).await;
        response.body = pending.drain(..len).collect();
    } else {
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        loop {
            let line_end = loop {
                if let Some(at) = find(pending, b"\r\n") {
                    break at;
                }
                let want = pending.len() + 1;
                fill(stream, pending, want).await;
            };
            let size_line = String::from_utf8(pending[..line_end].to_vec()).unwrap();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap(), 16).unwrap();
            pending.drain(..line_end + 2);
            fill(stream, pending, size + 2).await;
            response.body.extend(pending.drain(..size));
            pending.drain(..2);
            if size == 0 {
                break;
            }
        }
    }
    response
}

/// An upstream that answers every request with its path, its body's length
/// and a checksum of the body, and echoes `x-probe`'s length.
async fn echo_upstream() -> TestUpstream {
    TestUpstream::start(|req| async move {
        let path = req.uri().path().to_string();
        let probe = req
            .headers()
            .get("x-probe")
            .map(|v| v.len())
            .unwrap_or_default();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        Response::new(full(format!(
            "{path} {} {} {probe}",
            body.len(),
            checksum(&body)
        )))
    })
    .await
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// A body whose every byte depends on its position, so a dropped, repeated
/// or reordered slice changes the checksum.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: wire\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test]
async fn pipelined_requests_in_one_write_are_answered_in_order() {
    let upstream = echo_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let mut stream = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();

    let bodies: Vec<Vec<u8>> = [0usize, 5, 8191, 8192, 8193, 70_000]
        .iter()
        .map(|len| patterned(*len))
        .collect();
    let mut all = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        all.extend(post(&format!("/p{i}"), body));
    }
    stream.write_all(&all).await.unwrap();

    let mut pending = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let response = read_response(&mut stream, &mut pending).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            format!("/p{i} {} {} 0", body.len(), checksum(body))
        );
    }
    assert!(
        pending.is_empty(),
        "bytes beyond the last response: {pending:?}"
    );
}

#[tokio::test]
async fn a_request_head_trickled_a_byte_at_a_time_is_parsed_whole() {
    let upstream = echo_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let mut stream = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();

    let probe = "p".repeat(300);
    let mut request = format!(
        "POST /trickle HTTP/1.1\r\nHost: wire\r\nX-Probe: {probe}\r\nContent-Length: 3\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(b"abc");
    for byte in &request {
        stream.write_all(std::slice::from_ref(byte)).await.unwrap();
        // Each byte its own segment, read by its own wakeup of the proxy.
        tokio::time::sleep(Duration::from_micros(200)).await;
    }

    let mut pending = Vec::new();
    let response = read_response(&mut stream, &mut pending).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        String::from_utf8(response.body).unwrap(),
        format!("/trickle 3 {} 300", checksum(b"abc"))
    );
}

#[tokio::test]
async fn request_heads_larger_than_the_first_read_are_parsed_whole() {
    let upstream = echo_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let mut stream = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();

    // 8 KiB is the first read's size; these heads need two to four reads.
    let mut pending = Vec::new();
    for probe_len in [8_000usize, 8_300, 30_000] {
        let probe = "q".repeat(probe_len);
        let request = format!("GET /big-head HTTP/1.1\r\nHost: wire\r\nX-Probe: {probe}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream, &mut pending).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            format!("/big-head 0 {} {probe_len}", checksum(b""))
        );
    }
}

#[tokio::test]
async fn a_keep_alive_connection_that_goes_quiet_keeps_serving() {
    let upstream = echo_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let mut stream = TcpStream::connect(sidecar.proxy_addr()).await.unwrap();

    let mut pending = Vec::new();
    for (i, len) in [0usize, 1, 8191, 8192, 8193, 200_000, 3, 0, 65_536, 17]
        .into_iter()
        .enumerate()
    {
        let body = patterned(len);
        stream
            .write_all(&post(&format!("/quiet{i}"), &body))
            .await
            .unwrap();
        let response = read_response(&mut stream, &mut pending).await;
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            format!("/quiet{i} {len} {} 0", checksum(&body))
        );
        // Quiet long enough for both connections to park with nothing read.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// An upstream that is not hyper: it writes its response head a byte at a
/// time, with a header past the first read's 8 KiB, then a chunked body cut
/// at odd places, on every request of a keep-alive connection.
async fn trickling_upstream(body_chunks: Vec<Vec<u8>>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body_chunks = body_chunks.clone();
            tokio::spawn(async move {
                stream.set_nodelay(true).unwrap();
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while find(&pending, b"\r\n\r\n").is_none() {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = find(&pending, b"\r\n\r\n").unwrap();
                    pending.drain(..end + 4);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nX-Large: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                        "L".repeat(9_000)
                    );
                    // The status line and first headers a byte per segment;
                    // the rest in one write, past the 8 KiB first read.
                    for byte in &head.as_bytes()[..64] {
                        stream.write_all(std::slice::from_ref(byte)).await.unwrap();
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                    stream.write_all(&head.as_bytes()[64..]).await.unwrap();
                    let mut encoded = Vec::new();
                    for chunk in &body_chunks {
                        encoded.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
                        encoded.extend_from_slice(chunk);
                        encoded.extend_from_slice(b"\r\n");
                    }
                    encoded.extend_from_slice(b"0\r\n\r\n");
                    for piece in encoded.chunks(7) {
                        stream.write_all(piece).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn upstream_heads_trickled_or_past_the_first_read_are_relayed_whole() {
    let body_chunks: Vec<Vec<u8>> = vec![
        b"{\"response\":\"a\"}\n".to_vec(),
        patterned(9_000),
        b"x".to_vec(),
    ];
    let expected: Vec<u8> = body_chunks.concat();
    let upstream = trickling_upstream(body_chunks).await;
    let sidecar = start_sidecar(test_config(&format!("http://{upstream}"))).await;
    let client = client();

    // Twice: the second exchange reuses the pooled upstream connection,
    // which went quiet with nothing buffered in between.
    for _ in 0..2 {
        let (parts, body) = send(
            &client,
            get(format!("http://{}/trickle", sidecar.proxy_addr())),
        )
        .await;
        assert_eq!(parts.status, 200);
        assert_eq!(parts.headers["x-large"].len(), 9_000);
        assert_eq!(body, Bytes::from(expected.clone()));
    }
}
