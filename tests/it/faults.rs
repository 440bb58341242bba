//! Faults the proxy must survive: upstreams that break mid-body, clients that
//! leave at random, a log disk that refuses writes. Every loop is bounded.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::{expect_value, scrape, value};
use crate::support::*;

#[tokio::test]
async fn upstream_reset_mid_body_cuts_the_stream_and_is_counted() {
    // Promises 100 bytes, sends 10, closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                .await;
        }
    });
    let sidecar = start_sidecar(test_config(&format!("http://{addr}"))).await;
    let response = bounded(
        "headers",
        client().request(get(format!("http://{}/api/chat", sidecar.proxy_addr()))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body = bounded("cut body", response.into_body().collect()).await;
    assert!(
        body.is_err(),
        "a truncated upstream body must reach the client as an error, not a short success"
    );
    expect_value(
        &sidecar,
        r#"upstream_errors_total{handler="/api/chat",error_type="reset"}"#,
        1.0,
    )
    .await;
    sidecar.stop().await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_with_random_disconnects_leak_nothing() {
    let upstream = TestUpstream::start(|req| async move {
        if req.uri().path() == "/stream" {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                for _ in 0..20 {
                    if tx
                        .send(Bytes::from_static(b"{\"response\":\"x\"}\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            Response::new(body)
        } else {
            Response::new(full("ok"))
        }
    })
    .await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let base = format!("http://{}", sidecar.proxy_addr());
    // Warm up the pools, then take the baseline.
    send(&client(), get(format!("{base}/warm"))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let (fds_before, tasks_before) = (open_fds(), metrics.num_alive_tasks());

    let workers: Vec<_> = (0..50u64)
        .map(|w| {
            let base = base.clone();
            tokio::spawn(async move {
                let client = client();
                let mut seed = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..200 {
                    // xorshift: a fixed, reproducible mix of behaviours.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    match seed % 4 {
                        0 => {
                            let _ = send(&client, get(format!("{base}/ok"))).await;
                        }
                        1 => {
                            // Leave before the response headers.
                            let _ = tokio::time::timeout(
                                Duration::from_micros(50),
                                client.request(get(format!("{base}/stream"))),
                            )
                            .await;
                        }
                        2 => {
                            // Leave mid-stream.
                            if let Ok(response) =
                                client.request(get(format!("{base}/stream"))).await
                            {
                                let mut body = response.into_body();
                                let _ = body.frame().await;
                            }
                        }
                        _ => {
                            // A raw connection that sends half a request and goes away.
                            if let Ok(mut s) =
                                tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
                                    .await
                            {
                                let _ = s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n").await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Bounded as a whole, not per step: alone this takes ~9 s in a debug
    // build on two cores, and far longer beside the rest of the suite.
    tokio::time::timeout(Duration::from_secs(120), async {
        for worker in workers {
            worker.await.unwrap();
        }
    })
    .await
    .expect("10,000 requests within two minutes");

    // Give the proxy a moment to notice closed connections, then compare.
    let mut last = (0, 0);
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = (open_fds(), metrics.num_alive_tasks());
        if last.0 <= fds_before + 2 && last.1 <= tasks_before + 2 {
            break;
        }
    }
    assert!(
        last.0 <= fds_before + 2,
        "file descriptors leaked: {fds_before} before, {} after",
        last.0
    );
    assert!(
        last.1 <= tasks_before + 2,
        "tasks leaked: {tasks_before} before, {} after",
        last.1
    );
    let text = scrape(&sidecar, None).await.2;
    let in_flight = value(&text, r#"http_requests_in_flight{handler="other"}"#);
    assert_eq!(in_flight, Some(0.0), "every exchange completed: {text}");
    sidecar.stop().await;
}

#[tokio::test]
async fn a_log_disk_that_refuses_writes_loses_lines_counted_and_nothing_else() {
    let upstream = mirror().await;
    // A full disk (ENOSPC), and a file that opens but refuses every write
    // (EIO, even for root, so the test holds in CI).
    for file in ["/dev/full", "/proc/version"] {
        let config = format!(
            "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"{}\"\n[tracing]\nenabled = false\n[logging]\nfile = \"{file}\"\n",
            upstream.url()
        );
        let binary = spawn_binary(&config);
        let admin = {
            let lines = binary.lines.lock().unwrap().clone();
            let started: serde_json::Value = serde_json::from_str(
                lines
                    .iter()
                    .find(|l| l.contains("otel-sidecar started"))
                    .unwrap(),
            )
            .unwrap();
            started["admin"].as_str().unwrap().to_owned()
        };
        for _ in 0..50 {
            let (parts, _) = send(&client(), get(format!("http://{}/x", binary.listener))).await;
            assert_eq!(parts.status, 200, "{file}");
        }
        let mut dropped = 0.0;
        for _ in 0..100 {
            let (_, body) = send(&client(), get(format!("http://{admin}/metrics"))).await;
            dropped = value(
                &String::from_utf8_lossy(&body),
                r#"sidecar_telemetry_dropped_total{signal="logs"}"#,
            )
            .unwrap_or(0.0);
            if dropped >= 50.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            dropped >= 50.0,
            "{file}: 50 access lines that cannot be written must be counted, got {dropped}"
        );
        let (code, _) = binary.terminate().await;
        assert_eq!(code, 0, "{file}");
    }
}
