//! `/metrics`: exact RED values for a known mix of requests, bounded labels,
//! exemplars that name exported traces, a strict OpenMetrics parse, the token.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use otel_sidecar::config::OtlpProtocol;

use crate::otlp::OtlpReceiver;
use crate::support::*;

/// The exposition, fetched from the admin listener.
pub async fn scrape(sidecar: &otel_sidecar::Sidecar, token: Option<&str>) -> (u16, String, String) {
    let mut req = Request::get(format!("http://{}/metrics", sidecar.admin_addr()));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let (parts, body) = send(&client(), req.body(full(Bytes::new())).unwrap()).await;
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        parts.status.as_u16(),
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The value of the sample `series` (e.g. `http_requests_total{method="GET",...}`),
/// ignoring any exemplar.
pub fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Scrapes until `series` reads `expected` (an exchange is recorded when its
/// body ends, which can be just after the client has it), at most ~1 s;
/// asserts it does.
pub async fn expect_value(sidecar: &otel_sidecar::Sidecar, series: &str, expected: f64) {
    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(sidecar, None).await.2;
        if value(&text, series) == Some(expected) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(value(&text, series), Some(expected), "{series} in {text}");
}

/// `gen_ai_client_token_usage_sum` for one token type, model and operation.
pub fn token_usage_sum(exposition: &str, kind: &str, model: &str, operation: &str) -> Option<f64> {
    value(
        exposition,
        &format!(
            r#"gen_ai_client_token_usage_sum{{gen_ai_token_type="{kind}",gen_ai_request_model="{model}",gen_ai_operation_name="{operation}"}}"#
        ),
    )
}

/// Every series name with labels, without values.
fn series(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.rsplit_once('}')
                .map(|(s, _)| format!("{s}}}"))
                .or_else(|| l.split_whitespace().next().map(str::to_owned))
        })
        .collect()
}

async fn eventually(sidecar: &otel_sidecar::Sidecar, series: &str, expected: f64) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = scrape(sidecar, None).await.2;
        if value(&last, series) == Some(expected) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} never became {expected}:\n{last}");
}

async fn status_upstream() -> TestUpstream {
    TestUpstream::start(|req| async move {
        match req.uri().path() {
            "/api/generate" => Response::new(full(r#"{"response":"ok","done":true}"#)),
            "/api/tags" => Response::new(full("{}")),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Response::new(full("late"))
            }
            "/fail" => Response::builder().status(500).body(full("boom")).unwrap(),
            _ => Response::builder()
                .status(404)
                .body(full("not found"))
                .unwrap(),
        }
    })
    .await
}

#[tokio::test]
async fn a_known_mix_of_requests_gives_exact_counts() {
    let upstream = status_upstream().await;
    let mut config = test_config(&upstream.url());
    config.upstream.response_timeout = Duration::from_millis(200);
    let sidecar = start_sidecar(config).await;
    let base = format!("http://{}", sidecar.proxy_addr());
    for _ in 0..3 {
        send(&client(), get(format!("{base}/api/tags"))).await;
    }
    for _ in 0..2 {
        let req = Request::post(format!("{base}/api/generate"))
            .body(full("0123456789"))
            .unwrap();
        send(&client(), req).await;
    }
    send(&client(), get(format!("{base}/nope"))).await;
    send(&client(), get(format!("{base}/fail"))).await;
    send(&client(), get(format!("{base}/slow"))).await;
    let purge = Request::builder()
        .method("PURGE")
        .uri(format!("{base}/api/tags"))
        .body(full(Bytes::new()))
        .unwrap();
    send(&client(), purge).await;

    let text = eventually(
        &sidecar,
        r#"http_requests_total{method="OTHER",handler="/api/tags",status="200"}"#,
        1.0,
    )
    .await;
    let expect = [
        (
            r#"http_requests_total{method="GET",handler="/api/tags",status="200"}"#,
            3.0,
        ),
        (
            r#"http_requests_total{method="POST",handler="/api/generate",status="200"}"#,
            2.0,
        ),
        (
            r#"http_requests_total{method="GET",handler="other",status="404"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{method="GET",handler="other",status="500"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{method="GET",handler="other",status="504"}"#,
            1.0,
        ),
        (
            r#"http_request_duration_seconds_count{method="GET",handler="/api/tags",status="200"}"#,
            3.0,
        ),
        (
            r#"http_response_first_byte_seconds_count{method="POST",handler="/api/generate"}"#,
            2.0,
        ),
        (
            r#"http_request_size_bytes_sum{handler="/api/generate"}"#,
            20.0,
        ),
        (
            r#"http_request_size_bytes_count{handler="/api/generate"}"#,
            2.0,
        ),
        (r#"http_response_size_bytes_sum{handler="/api/tags"}"#, 8.0),
        (
            r#"http_response_size_bytes_count{handler="/api/tags"}"#,
            4.0,
        ),
        (
            r#"upstream_request_duration_seconds_count{handler="other",status="404"}"#,
            1.0,
        ),
        (
            r#"upstream_request_duration_seconds_count{handler="other",status="500"}"#,
            1.0,
        ),
        (
            r#"upstream_errors_total{handler="other",error_type="timeout"}"#,
            1.0,
        ),
        (r#"http_requests_in_flight{handler="/api/tags"}"#, 0.0),
        (r#"sidecar_telemetry_dropped_total{signal="spans"}"#, 0.0),
        (r#"sidecar_build_info{version="0.1.0"}"#, 1.0),
    ];
    for (series, expected) in expect {
        assert_eq!(value(&text, series), Some(expected), "{series}\n{text}");
    }
    assert!(!text.contains("PURGE"), "methods are bounded");
    sidecar.stop().await;
}

#[tokio::test]
async fn durations_end_with_the_body_and_aborts_are_499() {
    let (release_tx, release_rx) = tokio::sync::mpsc::channel::<()>(1);
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(release_rx));
    let upstream = TestUpstream::start(move |req| {
        let release_rx = release_rx.clone();
        async move {
            let (tx, body) = channel_body();
            let gated = req.uri().path() == "/api/generate";
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"{\"response\":\"a\"}\n"))
                    .await
                    .unwrap();
                if gated {
                    release_rx.lock().await.recv().await;
                    let _ = tx.send(Bytes::from_static(b"{\"done\":true}\n")).await;
                } else {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
            Response::new(body)
        }
    })
    .await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let base = format!("http://{}", sidecar.proxy_addr());

    let OpenStream { body, .. } = open_stream(get(format!("{base}/api/generate"))).await;
    eventually(
        &sidecar,
        r#"http_requests_in_flight{handler="/api/generate"}"#,
        1.0,
    )
    .await;
    let held = Duration::from_millis(300);
    tokio::time::sleep(held).await;
    release_tx.send(()).await.unwrap();
    bounded("rest", body.collect()).await.unwrap();
    let text = eventually(
        &sidecar,
        r#"http_requests_in_flight{handler="/api/generate"}"#,
        0.0,
    )
    .await;
    let total = value(
        &text,
        r#"http_request_duration_seconds_sum{method="GET",handler="/api/generate",status="200"}"#,
    )
    .unwrap();
    let first_byte = value(
        &text,
        r#"http_response_first_byte_seconds_sum{method="GET",handler="/api/generate"}"#,
    )
    .unwrap();
    assert!(
        total >= held.as_secs_f64(),
        "duration must run to the end of the body: {total}"
    );
    assert!(
        first_byte < total,
        "first byte ({first_byte}) is the headers, before the body ends ({total})"
    );

    let stream = open_stream(get(format!("{base}/api/chat"))).await;
    drop(stream);
    eventually(
        &sidecar,
        r#"http_requests_total{method="GET",handler="/api/chat",status="499"}"#,
        1.0,
    )
    .await;
    sidecar.stop().await;
}

#[tokio::test]
async fn a_thousand_random_paths_add_no_label_values() {
    let upstream = status_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let base = format!("http://{}", sidecar.proxy_addr());
    send(&client(), get(format!("{base}/warm-up"))).await;
    let before = series(&scrape(&sidecar, None).await.2);
    let client = client();
    for i in 0..1000u32 {
        let path = format!(
            "/{:x}/{}/{}",
            i.wrapping_mul(2654435761),
            i,
            "x".repeat((i % 7) as usize)
        );
        send(&client, get(format!("{base}{path}?q={i}"))).await;
    }
    let text = eventually(
        &sidecar,
        r#"http_requests_total{method="GET",handler="other",status="404"}"#,
        1001.0,
    )
    .await;
    assert_eq!(series(&text), before, "random paths created series");
    sidecar.stop().await;
}

#[tokio::test]
async fn exemplars_name_the_exported_trace() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = status_upstream().await;
    let mut config = test_config(&upstream.url());
    receiver.receive_every_span(&mut config);
    config.tracing.otlp.protocol = Some(OtlpProtocol::Grpc);
    let sidecar = start_sidecar(config).await;
    send(
        &client(),
        get(format!("http://{}/api/tags", sidecar.proxy_addr())),
    )
    .await;
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let trace_id = spans[0].trace_id();
    let text = eventually(
        &sidecar,
        r#"http_requests_total{method="GET",handler="/api/tags",status="200"}"#,
        1.0,
    )
    .await;
    let exemplar_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_request_duration_seconds_bucket") && l.contains(" # {"))
        .collect();
    assert_eq!(exemplar_lines.len(), 1, "{text}");
    assert!(
        exemplar_lines[0].contains(&format!("trace_id=\"{trace_id}\"")),
        "{}",
        exemplar_lines[0]
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_response_first_byte_seconds_bucket")
                && l.contains(&trace_id))
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn exposition_is_strict_openmetrics() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = status_upstream().await;
    let mut config = test_config(&upstream.url());
    receiver.receive_every_span(&mut config);
    let sidecar = start_sidecar(config).await;
    let base = format!("http://{}", sidecar.proxy_addr());
    for path in ["/api/tags", "/nope", "/fail", "/api/generate"] {
        send(&client(), get(format!("{base}{path}"))).await;
    }
    let (status, content_type, text) = scrape(&sidecar, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"));
    let families = parse_with_reference_parser(&text);
    for family in [
        "http_requests",
        "http_request_duration_seconds",
        "http_response_first_byte_seconds",
        "http_requests_in_flight",
        "http_request_size_bytes",
        "http_response_size_bytes",
        "upstream_request_duration_seconds",
        "sidecar_telemetry_dropped",
        "sidecar_build_info",
    ] {
        assert!(
            families.iter().any(|f| f == family),
            "{family} missing from {families:?}"
        );
    }
    sidecar.stop().await;
}

/// Parses with `prometheus_client.openmetrics.parser` (the reference Python
/// implementation); returns the family names. `scripts/test` installs it.
fn parse_with_reference_parser(text: &str) -> Vec<String> {
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
                  for f in text_string_to_metric_families(sys.stdin.read()):\n    print(f.name)\n";
    crate::tools::python_filter(&["prometheus_client"], script, text)
        .unwrap_or_else(|e| {
            panic!("the reference OpenMetrics parser rejected the exposition:\n{e}\n{text}")
        })
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn admin_token_protects_metrics() {
    let upstream = status_upstream().await;
    let mut config = test_config(&upstream.url());
    config.admin.token = Some(otel_sidecar::config::Secret::new("scrape-token"));
    let sidecar = start_sidecar(config).await;
    assert_eq!(scrape(&sidecar, None).await.0, 401);
    assert_eq!(scrape(&sidecar, Some("nope")).await.0, 401);
    let (status, _, text) = scrape(&sidecar, Some("scrape-token")).await;
    assert_eq!(status, 200);
    assert!(text.contains("sidecar_build_info"));
    sidecar.stop().await;
}

#[tokio::test]
async fn the_process_families_describe_this_process() {
    let upstream = status_upstream().await;
    let sidecar = start_sidecar(test_config(&upstream.url())).await;
    let (_, _, text) = scrape(&sidecar, None).await;
    let read = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}: {text}"));
    // The sidecar runs inside this test process: /proc/self is the same.
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count() as f64;
    let open = read("process_open_fds");
    assert!(open > 3.0 && (open - fds).abs() < 64.0, "{open} vs {fds}");
    assert!(read("process_max_fds") >= open);
    assert!(read("process_resident_memory_bytes") > 1e6);
    assert!(read("process_virtual_memory_bytes") >= read("process_resident_memory_bytes"));
    let cpu = read("process_cpu_seconds_total");
    assert!(cpu > 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = read("process_start_time_seconds");
    assert!(started <= now + 1.0 && started > now - 3600.0, "{started}");
    // Burn some CPU in the proxy: the counter moves.
    for _ in 0..200 {
        send(
            &client(),
            get(format!("http://{}/ok", sidecar.proxy_addr())),
        )
        .await;
    }
    let (_, _, later) = scrape(&sidecar, None).await;
    assert!(value(&later, "process_cpu_seconds_total").unwrap() > cpu);
    for family in [
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
    sidecar.stop().await;
}
