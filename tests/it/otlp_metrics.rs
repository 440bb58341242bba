//! Metrics over OTLP: the real proxy with traffic (GenAI through the mock
//! Ollama included) exports to real receivers (tonic's generated
//! `MetricsService`, an OTLP/HTTP endpoint, a collector that requires a
//! client certificate from a private CA), and what arrives equals what
//! `/metrics` shows for the same traffic, under the conventions' names.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Request;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, AggregationTemporality};
use otel_sidecar::config::{Compression, Config, MetricsExporter, OtlpProtocol, Temporality};
use otel_sidecar::metrics::otel_names::{self, Instrument};
use otel_sidecar::mock_ollama::MockOllama;

use crate::metrics::{expect_value, scrape, value};
use crate::metrics_collector::{attr, str_attr, Export, MetricsCollector};
use crate::otlp::OtlpReceiver;
use crate::support::*;

const INTERVAL: Duration = Duration::from_millis(200);

async fn mock() -> MockOllama {
    mock_ollama(Duration::from_millis(1), Duration::from_millis(20)).await
}

/// `/metrics` and OTLP to `collector` every 200 ms.
fn exporting(upstream: &str, collector: &MetricsCollector, protocol: OtlpProtocol) -> Config {
    let mut config = test_config(upstream);
    config.metrics.exporters = vec![MetricsExporter::Prometheus, MetricsExporter::Otlp];
    config.metrics.export_interval = INTERVAL;
    config.metrics.otlp.endpoint = Some(collector.endpoint());
    config.metrics.otlp.protocol = Some(protocol);
    config.metrics.otlp.compression = Some(Compression::Gzip);
    config
}

async fn post(sidecar: &otel_sidecar::Sidecar, path: &str, body: &str) {
    let req = Request::post(format!("http://{}{path}", sidecar.proxy_addr()))
        .header("content-type", "application/json")
        .body(full(body.to_owned()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 200, "{path}: {body:?}");
}

async fn get_path(sidecar: &otel_sidecar::Sidecar, path: &str) -> u16 {
    let (parts, _) = send(
        &client(),
        get(format!("http://{}{path}", sidecar.proxy_addr())),
    )
    .await;
    parts.status.as_u16()
}

/// One sample line of the exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The exposition's samples (exemplars left out).
fn samples(exposition: &str) -> Vec<Sample> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let line = line.split(" # ").next().unwrap();
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap(),
            }
        })
        .collect()
}

fn sample<'a>(
    samples: &'a [Sample],
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|s| s.name == name && &s.labels == labels)
}

/// A data point's attributes as the exposition's labels: the table read
/// backwards, the upstream's address left out (`/metrics` has no label for it).
fn prometheus_labels(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter(|kv| kv.key != "server.address" && kv.key != "server.port")
        .map(|kv| {
            let label = otel_names::ATTRIBUTES
                .iter()
                .find(|(_, key, _)| *key == kv.key)
                .map_or(kv.key.as_str(), |(label, ..)| label);
            let value = match kv.value.clone().unwrap().value.unwrap() {
                Value::StringValue(s) if s == "_OTHER" => "OTHER".to_owned(),
                Value::StringValue(s) => s,
                Value::IntValue(i) => i.to_string(),
                other => panic!("unexpected attribute value {other:?}"),
            };
            (label.to_owned(), value)
        })
        .collect()
}

fn number(point: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) -> f64 {
    match point.value.unwrap() {
        number_data_point::Value::AsInt(i) => i as f64,
        number_data_point::Value::AsDouble(d) => d,
    }
}

/// Every family of the table, in `export` and in `exposition`: the same
/// series with the same values (but the moving `process_*` ones); histograms with the same count, sum,
/// bounds and bucket counts.
fn assert_same(export: &Export, exposition: &str) {
    let samples = samples(exposition);
    for m in otel_names::METRICS {
        let family = m.family;
        match m.instrument {
            Instrument::Histogram => {
                let points = export.histogram_points(m.name);
                let series = samples
                    .iter()
                    .filter(|s| s.name == format!("{family}_count"))
                    .count();
                assert_eq!(points.len(), series, "{} vs {family}", m.name);
                for point in points {
                    let labels = prometheus_labels(&point.attributes);
                    let count = sample(&samples, &format!("{family}_count"), &labels)
                        .unwrap_or_else(|| panic!("{family}_count{labels:?} missing"));
                    assert_eq!(point.count as f64, count.value, "{family}{labels:?}");
                    let sum = sample(&samples, &format!("{family}_sum"), &labels).unwrap();
                    assert_eq!(point.sum, Some(sum.value), "{family}{labels:?}");
                    let mut below = 0;
                    for (bound, own) in point.explicit_bounds.iter().zip(&point.bucket_counts) {
                        below += own;
                        let mut le = labels.clone();
                        le.insert("le".into(), prometheus_float(*bound));
                        let bucket = sample(&samples, &format!("{family}_bucket"), &le)
                            .unwrap_or_else(|| panic!("{family}_bucket{le:?} missing"));
                        assert_eq!(below as f64, bucket.value, "{family}{le:?}");
                    }
                    assert_eq!(
                        point.bucket_counts.len(),
                        point.explicit_bounds.len() + 1,
                        "{family}"
                    );
                    assert_eq!(point.bucket_counts.iter().sum::<u64>(), point.count);
                }
            }
            Instrument::Counter | Instrument::Gauge | Instrument::UpDownCounter => {
                let points = export.number_points(m.name);
                let series = samples.iter().filter(|s| s.name == family).count();
                assert_eq!(points.len(), series, "{} vs {family}", m.name);
                for point in points {
                    let labels = prometheus_labels(&point.attributes);
                    let sample = sample(&samples, family, &labels)
                        .unwrap_or_else(|| panic!("{family}{labels:?} missing"));
                    // The process's CPU, memory and descriptors move between
                    // the export and the scrape; they must be there and sane.
                    if family.starts_with("process_") && family != "process_start_time_seconds" {
                        assert!(number(point) > 0.0, "{family}");
                        continue;
                    }
                    assert_eq!(number(point), sample.value, "{family}{labels:?}");
                }
            }
        }
    }
    // http_requests_total is the count of http.server.request.duration.
    for requests in samples.iter().filter(|s| s.name == "http_requests_total") {
        let point = export
            .histogram_points("http.server.request.duration")
            .into_iter()
            .find(|p| prometheus_labels(&p.attributes) == requests.labels)
            .unwrap_or_else(|| panic!("no duration for {:?}", requests.labels));
        assert_eq!(point.count as f64, requests.value);
    }
}

/// A bucket bound as the exposition writes it.
fn prometheus_float(value: f64) -> String {
    let text = value.to_string();
    if text.contains('.') || text.contains('e') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Waits for an export whose snapshot was taken after `exposition` was read.
async fn export_after_scrape(collector: &MetricsCollector, before: usize) -> Export {
    // The export under way at the scrape may hold an older snapshot: take the next.
    let exports = collector
        .wait_until("two exports after the scrape", |e| e.len() >= before + 2)
        .await;
    exports[before + 1].clone()
}

#[tokio::test]
async fn grpc_exports_equal_the_exposition_under_the_conventions_names() {
    let mock = mock().await;
    let spans = OtlpReceiver::grpc().await;
    let collector = MetricsCollector::grpc().await;
    let mut config = exporting(&mock.url(), &collector, OtlpProtocol::Grpc);
    spans.receive_every_span(&mut config);
    config.service.name = "metrics-over-otlp".into();
    let sidecar = start_sidecar(config).await;

    for _ in 0..3 {
        assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    }
    assert_eq!(get_path(&sidecar, "/nope").await, 404);
    post(
        &sidecar,
        "/api/generate",
        r#"{"model":"m-once","prompt":"why is the sky blue","stream":false,"options":{"num_predict":3}}"#,
    )
    .await;
    post(
        &sidecar,
        "/api/chat",
        r#"{"model":"m-stream","messages":[{"role":"user","content":"hi there"}],"options":{"num_predict":5}}"#,
    )
    .await;
    expect_value(
        &sidecar,
        r#"http_requests_total{method="POST",handler="/api/chat",status="200"}"#,
        1.0,
    )
    .await;
    expect_value(
        &sidecar,
        r#"http_requests_in_flight{handler="/api/chat"}"#,
        0.0,
    )
    .await;
    let before = collector.exports().len();
    let (_, _, exposition) = scrape(&sidecar, None).await;
    let export = export_after_scrape(&collector, before).await;
    assert_same(&export, &exposition);

    // The names, units and attributes of the conventions.
    let units = [
        ("http.server.request.duration", "s"),
        ("http.server.active_requests", "{request}"),
        ("http.server.request.body.size", "By"),
        ("http.server.response.body.size", "By"),
        ("http.client.request.duration", "s"),
        ("gen_ai.client.token.usage", "{token}"),
        ("gen_ai.client.operation.duration", "s"),
        ("gen_ai.server.time_to_first_token", "s"),
        ("gen_ai.server.time_per_output_token", "s"),
        ("otel_sidecar.http.server.time_to_first_byte", "s"),
        ("otel_sidecar.telemetry.dropped", "{item}"),
    ];
    for (name, unit) in units {
        let metric = export
            .metric(name)
            .unwrap_or_else(|| panic!("{name} not exported"));
        assert_eq!(metric.unit, unit, "{name}");
    }
    assert!(export.metric("http_requests_total").is_none());
    let tags = export
        .histogram_points("http.server.request.duration")
        .into_iter()
        .find(|p| str_attr(&p.attributes, "http.route").as_deref() == Some("/api/tags"))
        .unwrap();
    assert_eq!(tags.count, 3);
    assert_eq!(
        str_attr(&tags.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr(&tags.attributes, "http.response.status_code"),
        Some(Value::IntValue(200))
    );
    let client = export.histogram_points("http.client.request.duration");
    let upstream_port = i64::from(mock.addr().port());
    assert!(client.iter().all(|p| {
        str_attr(&p.attributes, "server.address").as_deref() == Some("127.0.0.1")
            && attr(&p.attributes, "server.port") == Some(Value::IntValue(upstream_port))
    }));

    let tokens = export.histogram_points("gen_ai.client.token.usage");
    let token = |model: &str, kind: &str| {
        tokens
            .iter()
            .find(|p| {
                str_attr(&p.attributes, "gen_ai.request.model").as_deref() == Some(model)
                    && str_attr(&p.attributes, "gen_ai.token.type").as_deref() == Some(kind)
            })
            .unwrap_or_else(|| panic!("no {kind} tokens of {model}"))
    };
    // The mock answers num_predict words and counts a token per prompt word.
    assert_eq!(token("m-once", "input").sum, Some(5.0));
    assert_eq!(token("m-once", "output").sum, Some(3.0));
    assert_eq!(token("m-stream", "output").sum, Some(5.0));
    assert_eq!(
        str_attr(
            &token("m-once", "input").attributes,
            "gen_ai.operation.name"
        )
        .as_deref(),
        Some("text_completion")
    );
    assert_eq!(
        str_attr(
            &token("m-stream", "input").attributes,
            "gen_ai.operation.name"
        )
        .as_deref(),
        Some("chat")
    );
    let ttft = export.histogram_points("gen_ai.server.time_to_first_token");
    assert!(ttft
        .iter()
        .any(|p| str_attr(&p.attributes, "gen_ai.request.model").as_deref() == Some("m-stream")));

    // Resource and scope as on spans.
    assert_eq!(
        export.resource_attr("service.name").as_deref(),
        Some("metrics-over-otlp")
    );
    let scope = export.request.resource_metrics[0].scope_metrics[0]
        .scope
        .clone()
        .unwrap();
    assert_eq!(scope.name, "otel-sidecar");
    assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));

    // Cumulative: every export has the totals from the same start.
    let exports = collector.exports();
    let starts: Vec<u64> = exports
        .iter()
        .flat_map(|e| e.histogram_points("http.server.request.duration"))
        .map(|p| p.start_time_unix_nano)
        .collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{starts:?}");
    match export
        .metric("http.server.request.duration")
        .unwrap()
        .data
        .as_ref()
    {
        Some(metric::Data::Histogram(h)) => assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        ),
        other => panic!("{other:?}"),
    }

    // Compressed as configured.
    assert!(exports
        .iter()
        .all(|e| e.encoding.as_deref() == Some("gzip")));

    // Exemplars name the exported traces: the generate request's trace is
    // the exemplar of its duration series, exported once.
    sidecar.traces().unwrap().flush().await;
    let spans = spans.wait_for(12).await;
    let generate_trace = spans
        .iter()
        .find(|s| s.str_attr("http.route").as_deref() == Some("/api/generate"))
        .unwrap()
        .trace_id();
    let exemplars: Vec<String> = exports
        .iter()
        .flat_map(|e| e.histogram_points("http.server.request.duration"))
        .filter(|p| str_attr(&p.attributes, "http.route").as_deref() == Some("/api/generate"))
        .flat_map(|p| p.exemplars.iter())
        .map(|e| crate::otlp::hex(&e.trace_id))
        .collect();
    assert_eq!(exemplars, vec![generate_trace]);
    sidecar.stop().await;
}

/// The count of one route's duration series summed over `exports` (with
/// delta temporality: its count since the start).
fn count_over(exports: &[Export], route: &str) -> u64 {
    exports
        .iter()
        .flat_map(|e| e.histogram_points("http.server.request.duration"))
        .filter(|p| str_attr(&p.attributes, "http.route").as_deref() == Some(route))
        .map(|p| p.count)
        .sum()
}

#[tokio::test]
async fn http_protobuf_delta_exports_carry_only_new_requests() {
    let mock = mock().await;
    let collector = MetricsCollector::http().await;
    let mut config = exporting(&mock.url(), &collector, OtlpProtocol::HttpProtobuf);
    config.metrics.temporality = Temporality::Delta;
    let sidecar = start_sidecar(config).await;

    for _ in 0..2 {
        assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    }
    assert_eq!(get_path(&sidecar, "/v1/models").await, 200);
    let first = collector
        .wait_until("the first requests exported", |e| {
            count_over(e, "/api/tags") == 2 && count_over(e, "/v1/models") == 1
        })
        .await
        .len();
    assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    let exports = collector
        .wait_until("the new request exported", |e| {
            count_over(e, "/api/tags") == 3
        })
        .await;
    let later = &exports[first..];
    assert_eq!(count_over(later, "/api/tags"), 1, "only the new request");
    // An unchanged series is left out.
    assert!(later.iter().all(|e| e
        .histogram_points("http.server.request.duration")
        .iter()
        .all(|p| str_attr(&p.attributes, "http.route").as_deref() != Some("/v1/models"))));

    // Each export starts where the previous one ended.
    for pair in exports.windows(2) {
        let ended = pair[0]
            .number_points("otel_sidecar.build.info")
            .first()
            .unwrap()
            .time_unix_nano;
        for point in pair[1].histogram_points("http.server.request.duration") {
            assert_eq!(point.start_time_unix_nano, ended);
        }
    }
    match exports[0]
        .metric("http.server.request.duration")
        .and_then(|m| m.data.as_ref())
    {
        Some(metric::Data::Histogram(h)) => {
            assert_eq!(
                h.aggregation_temporality,
                AggregationTemporality::Delta as i32
            )
        }
        other => panic!("{other:?}"),
    }

    // The deltas add up to /metrics' totals, bucket by bucket.
    let (_, _, exposition) = scrape(&sidecar, None).await;
    let mut buckets: Vec<u64> = Vec::new();
    let mut bounds = Vec::new();
    for point in exports
        .iter()
        .flat_map(|e| e.histogram_points("http.server.request.duration"))
        .filter(|p| str_attr(&p.attributes, "http.route").as_deref() == Some("/api/tags"))
    {
        buckets.resize(point.bucket_counts.len(), 0);
        for (total, own) in buckets.iter_mut().zip(&point.bucket_counts) {
            *total += own;
        }
        bounds = point.explicit_bounds.clone();
    }
    let samples = samples(&exposition);
    let mut below = 0;
    for (bound, own) in bounds.iter().zip(&buckets) {
        below += own;
        let labels = BTreeMap::from(
            [
                ("method", "GET"),
                ("handler", "/api/tags"),
                ("status", "200"),
                ("le", &prometheus_float(*bound)),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let bucket = sample(&samples, "http_request_duration_seconds_bucket", &labels)
            .unwrap_or_else(|| panic!("no bucket {labels:?}"));
        assert_eq!(bucket.value, below as f64, "{labels:?}");
    }
    assert!(!bounds.is_empty());
    assert_eq!(buckets.iter().sum::<u64>(), 3);

    // Sent gzip-compressed (the receiver decompressed every body it kept).
    assert!(exports
        .iter()
        .all(|e| e.encoding.as_deref() == Some("gzip")));
    sidecar.stop().await;
}

#[tokio::test]
async fn a_collector_requiring_client_certificates_gets_exports_only_with_one() {
    let pki = crate::pki::pki();
    let collector = MetricsCollector::grpc_mtls(&pki).await;
    let upstream = mock().await;

    let mut config = exporting(&upstream.url(), &collector, OtlpProtocol::Grpc);
    config.metrics.otlp.ca_file = Some(pki.ca.clone());
    config.metrics.otlp.client_cert = Some(pki.client_cert.clone());
    config.metrics.otlp.client_key = Some(pki.client_key.clone());
    let sidecar = start_sidecar(config).await;
    assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    collector
        .wait_until("an export over mTLS", |e| count_over(e, "/api/tags") >= 1)
        .await;
    let (_, _, text) = scrape(&sidecar, None).await;
    assert_eq!(
        value(
            &text,
            r#"sidecar_telemetry_dropped_total{signal="metrics"}"#
        ),
        Some(0.0)
    );
    sidecar.stop().await;

    // The same collector, the CA but no client certificate: the handshake
    // fails, nothing arrives, and the lost data points are counted.
    let received = collector.exports().len();
    let mut config = exporting(&upstream.url(), &collector, OtlpProtocol::Grpc);
    config.metrics.otlp.ca_file = Some(pki.ca.clone());
    let sidecar = start_sidecar(config).await;
    assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    let mut dropped = 0.0;
    for _ in 0..200 {
        let (_, _, text) = scrape(&sidecar, None).await;
        dropped = value(
            &text,
            r#"sidecar_telemetry_dropped_total{signal="metrics"}"#,
        )
        .unwrap();
        if dropped > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(dropped > 0.0, "failed exports are counted");
    assert_eq!(
        collector.exports().len(),
        received,
        "nothing arrives without a client certificate"
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn shutdown_exports_the_last_requests() {
    let upstream = mock().await;
    let collector = MetricsCollector::grpc().await;
    let mut config = exporting(&upstream.url(), &collector, OtlpProtocol::Grpc);
    // No period ends during the test: only the shutdown exports.
    config.metrics.export_interval = Duration::from_secs(3600);
    let sidecar = start_sidecar(config).await;
    assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    expect_value(
        &sidecar,
        r#"http_requests_total{method="GET",handler="/api/tags",status="200"}"#,
        1.0,
    )
    .await;
    assert!(collector.exports().is_empty());
    sidecar.stop().await;
    let exports = collector.exports();
    assert_eq!(exports.len(), 1);
    assert_eq!(count_over(&exports, "/api/tags"), 1);
}

#[tokio::test]
async fn without_the_prometheus_exporter_metrics_answers_404() {
    let upstream = mock().await;
    let collector = MetricsCollector::grpc().await;
    let mut config = exporting(&upstream.url(), &collector, OtlpProtocol::Grpc);
    config.metrics.exporters = vec![MetricsExporter::Otlp];
    let sidecar = start_sidecar(config).await;
    assert_eq!(get_path(&sidecar, "/api/tags").await, 200);
    let (status, content_type, body) = scrape(&sidecar, None).await;
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/json");
    assert_eq!(
        body,
        r#"{"error":"the prometheus metrics exporter is not enabled"}"#
    );
    // The registry is still kept: OTLP reads it.
    collector
        .wait_until("an export", |e| count_over(e, "/api/tags") >= 1)
        .await;
    sidecar.stop().await;
}

#[tokio::test]
async fn the_environment_chooses_console_and_none() {
    let upstream = mock().await;
    let config = format!(
        "[upstream]\nurl = \"{}\"\n[admin]\naddress = \"127.0.0.1:0\"\n[listener]\naddress = \"127.0.0.1:0\"\n[tracing]\nenabled = false\n",
        upstream.url()
    );
    let binary = spawn_binary_with_env(
        &config,
        &[
            ("OTEL_METRICS_EXPORTER", "console"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let admin = binary.admin();
    let mut printed = Vec::new();
    for _ in 0..200 {
        printed = binary.lines.lock().unwrap().clone();
        let header = printed
            .iter()
            .position(|l| l.starts_with("otel-sidecar console metrics exporter"));
        if let Some(at) = header {
            if printed[at..].iter().any(|l| l == "# EOF") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let at = printed
        .iter()
        .position(|l| l.starts_with("otel-sidecar console metrics exporter"))
        .unwrap_or_else(|| panic!("no console export in {printed:#?}"));
    assert!(
        printed[at..]
            .iter()
            .any(|l| l == r#"sidecar_build_info{version="0.1.0"} 1"#),
        "{printed:#?}"
    );
    // `console` alone: no `/metrics`.
    let (parts, _) = send(&client(), get(format!("http://{admin}/metrics"))).await;
    assert_eq!(parts.status, 404);
    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);

    let binary = spawn_binary_with_env(&config, &[("OTEL_METRICS_EXPORTER", "none")]);
    let (parts, _) = send(&client(), get(format!("http://{}/metrics", binary.admin()))).await;
    assert_eq!(parts.status, 404);
    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);
}
