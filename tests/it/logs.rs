//! Logs as an operator collects them from the binary: JSON lines on stdout and
//! in `logging.file`, carrying the ids of the exchange, never a secret.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::otlp::OtlpReceiver;
use crate::support::*;

const SECRETS: [&str; 6] = [
    "AUTHZSECRET1",
    "COOKIESECRET2",
    "APIKEYSECRET3",
    "QUERYSECRET4",
    "QUERYSECRET5",
    "PROXYAUTHSECRET6",
];

#[tokio::test]
async fn json_logs_carry_the_exchange_ids_and_no_secrets() {
    let receiver = OtlpReceiver::grpc().await;
    let upstream = mirror().await;
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("sidecar.log");
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n\
         [tracing]\nsampler = \"always_on\"\n[tracing.otlp]\nendpoint = \"{}\"\n\
         [logging]\nfile = \"{}\"\n",
        upstream.url(),
        receiver.endpoint(),
        log_file.display()
    );
    let binary = spawn_binary(&config);
    let req = Request::get(format!(
        "http://{}/api/tags?api_key=QUERYSECRET4&token=QUERYSECRET5&model=llama",
        binary.listener
    ))
    .header("authorization", "Bearer AUTHZSECRET1")
    .header("cookie", "session=COOKIESECRET2")
    .header("x-api-key", "APIKEYSECRET3")
    .header("proxy-authorization", "Basic PROXYAUTHSECRET6")
    .header("x-correlation-id", "log-test-1")
    .body(full(Bytes::new()))
    .unwrap();
    let (parts, _) = send(&client(), req).await;
    assert_eq!(parts.headers["x-correlation-id"], "log-test-1");
    // Invalid inbound correlation id: discarded, logged by length only.
    let req = Request::get(format!("http://{}/api/tags", binary.listener))
        .header("x-correlation-id", "bad id with spaces APIKEYSECRET3")
        .body(full(Bytes::new()))
        .unwrap();
    send(&client(), req).await;

    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    let spans = receiver.wait_for(2).await;
    let server = spans
        .iter()
        .find(|s| {
            s.span.kind == SpanKind::Server as i32
                && s.str_attr("correlation_id").as_deref() == Some("log-test-1")
        })
        .expect("server span of the first request");

    let stdout = binary.lines.lock().unwrap().clone();
    let file = std::fs::read_to_string(&log_file).unwrap();
    for (origin, lines) in [
        ("stdout", stdout.clone()),
        ("file", file.lines().map(str::to_owned).collect()),
    ] {
        let mut access = None;
        for line in &lines {
            for secret in SECRETS {
                assert!(!line.contains(secret), "{origin}: {secret} leaked: {line}");
            }
            let json: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{origin}: not JSON ({e}): {line}"));
            for field in ["timestamp", "level", "message", "target"] {
                assert!(
                    json.get(field).is_some(),
                    "{origin}: {field} missing: {line}"
                );
            }
            let stamp = json["timestamp"].as_str().unwrap();
            assert!(
                stamp.ends_with('Z') && stamp.contains('T'),
                "RFC 3339 UTC: {stamp}"
            );
            if json["message"] == "request completed" && json["correlation_id"] == "log-test-1" {
                access = Some(json);
            }
        }
        let access = access.unwrap_or_else(|| panic!("{origin}: no access line in {lines:#?}"));
        assert_eq!(access["trace_id"], server.trace_id().as_str(), "{origin}");
        assert_eq!(access["span_id"], server.span_id().as_str(), "{origin}");
        assert_eq!(access["method"], "GET");
        assert_eq!(
            access["path"],
            "/api/tags?api_key=[REDACTED]&token=[REDACTED]&model=llama"
        );
        assert_eq!(access["handler"], "/api/tags");
        assert_eq!(access["status"], 200);
        assert_eq!(access["client_address"], "127.0.0.1");
        assert_eq!(access["protocol"], "HTTP/1.1");
        assert_eq!(
            access["timestamp"].as_str().map(str::len),
            Some(27),
            "{access}"
        );
        assert_eq!(access["bytes_in"], 0);
        assert!(access["bytes_out"].as_u64().unwrap() > 0);
        assert!(access["duration_ms"].as_f64().unwrap() >= access["upstream_ms"].as_f64().unwrap());
    }
    let discarded = stdout
        .iter()
        .filter(|l| l.contains("discarded an invalid inbound correlation id"))
        .count();
    assert_eq!(discarded, 0, "debug line is off at level info");
}

#[tokio::test]
async fn rust_log_overrides_the_level_and_pretty_format_is_plain_text() {
    let upstream = mirror().await;
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n[tracing]\nenabled = false\n[logging]\nlevel = \"error\"\n",
        upstream.url()
    );
    // RUST_LOG=debug beats level = "error": the start line (info) appears.
    let binary = spawn_binary_with_env(&config, &[("RUST_LOG", "debug")]);
    let req = Request::get(format!("http://{}/x", binary.listener))
        .header("x-correlation-id", "bad id")
        .body(full(Bytes::new()))
        .unwrap();
    send(&client(), req).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = binary.lines.lock().unwrap().clone();
    let discarded = lines
        .iter()
        .find(|l| l.contains("discarded an invalid inbound correlation id"))
        .unwrap_or_else(|| panic!("debug line missing: {lines:#?}"));
    let json: serde_json::Value = serde_json::from_str(discarded).unwrap();
    assert_eq!(json["length"], 6);
    assert!(
        !discarded.contains("bad id"),
        "the invalid value itself is never logged"
    );
    assert!(json["correlation_id"]
        .as_str()
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    binary.terminate().await;

    let pretty = config.replace("level = \"error\"", "level = \"info\"\nformat = \"pretty\"");
    let binary = spawn_binary_with_env(&pretty, &[]);
    let lines = binary.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("otel-sidecar started") && !l.starts_with('{')),
        "{lines:#?}"
    );
    binary.terminate().await;
}

/// `warning` is `warn` (not a target named "warning" that silences all),
/// warnings are logged, info lines are not, and the access log — switched by
/// `access_log` alone — keeps its line per exchange.
#[tokio::test]
async fn a_quieter_level_keeps_the_access_log_and_warning_means_warn() {
    let upstream = mirror().await;
    let port = closed_port().await;
    let dead_collector = closed_port().await;
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:{port}\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n\
         [tracing]\nsampler = \"always_on\"\n\
         [tracing.otlp]\nendpoint = \"http://127.0.0.1:{dead_collector}\"\ntimeout = \"1s\"\n\
         [logging]\nlevel = \"warning\"\n",
        upstream.url()
    );
    let (binary, _) = launch_binary(&config, &[]);
    let url = format!("http://127.0.0.1:{port}/quiet");
    let mut served = false;
    for _ in 0..200 {
        if let Ok(Ok(response)) =
            tokio::time::timeout(STEP, client().request(get(url.clone()))).await
        {
            assert_eq!(response.status(), 200);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(served, "the binary never answered on 127.0.0.1:{port}");
    // The span cannot be exported: the exporter's failure is a warning.
    let mut lines = Vec::new();
    for _ in 0..200 {
        lines = binary.lines.lock().unwrap().clone();
        if lines.iter().any(|l| l.contains("span export failed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);
    let levels: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let json: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                json["level"].as_str().unwrap().to_owned(),
                json["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        levels
            .iter()
            .any(|(level, m)| level == "WARN" && m.contains("span export failed")),
        "the warning is logged: {levels:#?}"
    );
    let access: Vec<_> = levels
        .iter()
        .filter(|(_, m)| m == "request completed")
        .collect();
    assert_eq!(access.len(), 1, "{levels:#?}");
    assert!(
        !levels
            .iter()
            .any(|(level, m)| level == "INFO" && m != "request completed"),
        "info lines are filtered: {levels:#?}"
    );
}

/// The pretty console gets the access line as text beside a JSON log file,
/// and each output gets it once; with no exporter at all, stdout is silent
/// and the file still gets every line.
#[tokio::test]
async fn every_output_gets_the_access_line_once() {
    let upstream = mirror().await;
    let dir = tempfile::tempdir().unwrap();
    for (exporters, format) in [("[\"console\"]", "pretty"), ("[]", "json")] {
        let log_file = dir.path().join(format!("{format}.log"));
        let port = closed_port().await;
        let config = format!(
            "[listener]\naddress = \"127.0.0.1:{port}\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"{}\"\n[tracing]\nenabled = false\n\
             [logging]\nexporters = {exporters}\nformat = \"{format}\"\nfile = \"{}\"\n",
            upstream.url(),
            log_file.display()
        );
        let (binary, _) = launch_binary(&config, &[]);
        let req = |id: &str| {
            Request::get(format!("http://127.0.0.1:{port}/once"))
                .header("x-correlation-id", id)
                .body(full(Bytes::new()))
                .unwrap()
        };
        let mut served = false;
        for attempt in 0..200 {
            let id = format!("{format}-{attempt}");
            if let Ok(Ok(response)) = tokio::time::timeout(STEP, client().request(req(&id))).await {
                assert_eq!(response.status(), 200);
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(served, "the binary never answered on 127.0.0.1:{port}");
        let (parts, _) = send(&client(), req("once-1")).await;
        assert_eq!(parts.status, 200);
        let (code, binary) = binary.terminate().await;
        assert_eq!(code, 0);
        let stdout = binary.lines.lock().unwrap().clone();
        let file = std::fs::read_to_string(&log_file).unwrap();
        let in_file = file
            .lines()
            .filter(|l| l.contains("request completed") && l.contains("\"once-1\""))
            .count();
        assert_eq!(in_file, 1, "{format}: {file}");
        let on_stdout: Vec<_> = stdout
            .iter()
            .filter(|l| l.contains("request completed") && l.contains("once-1"))
            .collect();
        if exporters == "[]" {
            assert!(stdout.is_empty(), "no console exporter: {stdout:#?}");
        } else {
            assert_eq!(on_stdout.len(), 1, "{stdout:#?}");
            assert!(
                !on_stdout[0].starts_with('{'),
                "plain text: {}",
                on_stdout[0]
            );
        }
    }
}
