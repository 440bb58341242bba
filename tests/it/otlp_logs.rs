//! OTLP log records from the binary, received by real collectors on
//! loopback: tonic's gRPC server with the generated `LogsService` (plain, or
//! TLS with a client certificate from a private CA), and a hyper server
//! taking protobuf, gzip or not, on `POST /v1/logs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::metrics::value;
use crate::otlp::{hex, OtlpReceiver};
use crate::support::*;

/// One received record with its resource and scope.
#[derive(Debug, Clone)]
pub struct Received {
    pub record: LogRecord,
    pub resource: Vec<KeyValue>,
    pub scope: String,
}

impl Received {
    pub fn attr(&self, key: &str) -> Option<Value> {
        crate::otlp::attr(&self.record.attributes, key)
    }

    pub fn str_attr(&self, key: &str) -> Option<String> {
        crate::otlp::str_attr(&self.record.attributes, key)
    }

    pub fn body(&self) -> String {
        match self.record.body.clone().and_then(|b| b.value) {
            Some(Value::StringValue(s)) => s,
            other => panic!("body is not a string: {other:?}"),
        }
    }

    pub fn resource_attr(&self, key: &str) -> Option<String> {
        crate::otlp::str_attr(&self.resource, key)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.record.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.record.span_id)
    }

    fn is(&self, body: &str, correlation_id: Option<&str>) -> bool {
        self.body() == body
            && correlation_id
                .is_none_or(|id| self.str_attr("correlation_id").as_deref() == Some(id))
    }
}

#[derive(Clone, Default)]
struct Store {
    records: Arc<Mutex<Vec<Received>>>,
    /// How long each gRPC export takes to answer: a hanging collector.
    delay: Duration,
    /// OTLP/HTTP requests, and those of them gzip-encoded.
    http_requests: Arc<AtomicUsize>,
    gzip_requests: Arc<AtomicUsize>,
}

impl Store {
    fn add(&self, request: ExportLogsServiceRequest) {
        let mut records = self.records.lock().unwrap();
        for resource_logs in request.resource_logs {
            let resource = resource_logs
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope_logs in resource_logs.scope_logs {
                let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
                for record in scope_logs.log_records {
                    records.push(Received {
                        record,
                        resource: resource.clone(),
                        scope: scope.clone(),
                    });
                }
            }
        }
    }
}

#[tonic::async_trait]
impl LogsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        tokio::time::sleep(self.delay).await;
        self.add(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

pub struct LogsReceiver {
    pub addr: SocketAddr,
    store: Store,
    task: tokio::task::JoinHandle<()>,
}

impl LogsReceiver {
    /// gRPC on `http://addr`.
    pub async fn grpc() -> Self {
        Self::grpc_with(Duration::ZERO, None).await
    }

    /// gRPC answering each export after `delay`, over TLS when `tls` is given.
    pub async fn grpc_with(delay: Duration, tls: Option<ServerTlsConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store {
            delay,
            ..Store::default()
        };
        let service = LogsServiceServer::new(store.clone());
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls).unwrap();
        }
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = server
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, store, task }
    }

    /// HTTP/protobuf on `http://addr/v1/logs`, gzip-encoded bodies decoded.
    pub async fn http() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Store::default();
        let shared = store.clone();
        let task = crate::otlp_http::serve(listener, "/v1/logs", move |export| {
            shared.http_requests.fetch_add(1, Ordering::Relaxed);
            if export.encoding.as_deref() == Some("gzip") {
                shared.gzip_requests.fetch_add(1, Ordering::Relaxed);
            }
            ExportLogsServiceRequest::decode(export.body)
                .map(|request| shared.add(request))
                .is_ok()
        });
        Self { addr, store, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> Vec<Received> {
        self.store.records.lock().unwrap().clone()
    }

    /// Waits (bounded) for the first record that `matches`.
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if let Some(found) = self.records().into_iter().find(|r| matches(r)) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no {what} among {:#?}", self.records());
    }

    /// (OTLP/HTTP requests, of which gzip-encoded).
    pub fn http_requests(&self) -> (usize, usize) {
        (
            self.store.http_requests.load(Ordering::Relaxed),
            self.store.gzip_requests.load(Ordering::Relaxed),
        )
    }
}

impl Drop for LogsReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Every attribute of the record has the JSON line's value, of the same type.
fn assert_attributes_match_line(record: &Received, line: &serde_json::Value) {
    assert!(!record.record.attributes.is_empty());
    for kv in &record.record.attributes {
        let expected = &line[&kv.key];
        let value = kv.value.clone().and_then(|v| v.value);
        match value {
            Some(Value::StringValue(s)) => {
                assert_eq!(expected, &serde_json::json!(s), "{}", kv.key)
            }
            Some(Value::IntValue(i)) => assert_eq!(expected.as_i64(), Some(i), "{}", kv.key),
            Some(Value::DoubleValue(d)) => assert_eq!(expected.as_f64(), Some(d), "{}", kv.key),
            other => panic!("{}: unexpected {other:?}", kv.key),
        }
    }
}

/// The sample of `sidecar_telemetry_dropped_total{signal="logs"}`, polled
/// (bounded) until it reaches `at_least`.
async fn logs_dropped(admin: &str, at_least: f64) -> f64 {
    let mut dropped = 0.0;
    for _ in 0..200 {
        let (_, body) = send(&client(), get(format!("http://{admin}/metrics"))).await;
        dropped = value(
            &String::from_utf8_lossy(&body),
            r#"sidecar_telemetry_dropped_total{signal="logs"}"#,
        )
        .unwrap_or(0.0);
        if dropped >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    dropped
}

/// Waits (bounded) until the binary on `port` answers.
async fn wait_until_serving(port: u16) {
    for _ in 0..200 {
        let attempt = tokio::time::timeout(
            Duration::from_secs(1),
            client().request(get(format!("http://127.0.0.1:{port}/ready-probe"))),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the binary never answered on 127.0.0.1:{port}");
}

#[tokio::test]
async fn access_and_own_lines_reach_a_grpc_collector_beside_the_console() {
    let spans = OtlpReceiver::grpc().await;
    let logs = LogsReceiver::grpc().await;
    let upstream = mirror().await;
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n\
         [service]\nname = \"logs-test-api\"\nversion = \"2.1.0\"\nenvironment = \"staging\"\n\
         [tracing]\nsampler = \"always_on\"\n[tracing.otlp]\nendpoint = \"{}\"\n\
         [logging]\nexporters = [\"console\", \"otlp\"]\n\
         [logging.otlp]\nendpoint = \"{}\"\nschedule_delay = \"100ms\"\n",
        upstream.url(),
        spans.endpoint(),
        logs.endpoint()
    );
    let before = SystemTime::now();
    let binary = spawn_binary(&config);
    let req = Request::get(format!(
        "http://{}/api/tags?token=QUERYSECRET",
        binary.listener
    ))
    .header("x-correlation-id", "otlp-logs-1")
    .body(full(Bytes::new()))
    .unwrap();
    let (parts, _) = send(&client(), req).await;
    assert_eq!(parts.status, 200);

    let access = logs
        .wait_for("access record", |r| {
            r.is("request completed", Some("otlp-logs-1"))
        })
        .await;
    let started = logs
        .wait_for("start record", |r| r.is("otel-sidecar started", None))
        .await;
    let after = SystemTime::now();
    let server = spans
        .wait_for(2)
        .await
        .into_iter()
        .find(|s| {
            s.span.kind == SpanKind::Server as i32
                && s.str_attr("correlation_id").as_deref() == Some("otlp-logs-1")
        })
        .expect("the server span");

    // The access record: the exchange's server span, INFO, typed fields.
    assert_eq!(access.scope, "access");
    assert_eq!(access.record.severity_number, SeverityNumber::Info as i32);
    assert_eq!(access.record.severity_text, "INFO");
    assert_eq!(access.trace_id(), server.trace_id());
    assert_eq!(access.span_id(), server.span_id());
    assert_eq!(access.record.flags & 0xff, 1, "sampled");
    let time = access.record.time_unix_nano;
    assert!(
        unix_nanos(before) <= time && time <= unix_nanos(after),
        "the record's time is the exchange's end"
    );
    assert_eq!(access.record.observed_time_unix_nano, time);
    assert_eq!(access.str_attr("method").as_deref(), Some("GET"));
    assert_eq!(
        access.str_attr("path").as_deref(),
        Some("/api/tags?token=[REDACTED]")
    );
    assert_eq!(access.attr("status"), Some(Value::IntValue(200)));
    assert!(matches!(access.attr("duration_ms"), Some(Value::DoubleValue(ms)) if ms > 0.0));
    assert!(matches!(access.attr("bytes_out"), Some(Value::IntValue(n)) if n > 0));
    for own in [
        "trace_id",
        "span_id",
        "message",
        "level",
        "timestamp",
        "target",
    ] {
        assert_eq!(access.attr(own), None, "{own} is the record's own field");
    }

    // The process's own line, with its fields.
    assert_eq!(started.record.severity_number, SeverityNumber::Info as i32);
    assert_eq!(started.record.severity_text, "INFO");
    assert_eq!(started.scope, "otel_sidecar::sidecar");
    assert_eq!(started.str_attr("listener"), Some(binary.listener.clone()));
    assert!(started.record.trace_id.is_empty(), "no exchange, no trace");

    // The resource is the spans'.
    for record in [&access, &started] {
        assert_eq!(
            record.resource_attr("service.name").as_deref(),
            Some("logs-test-api")
        );
        assert_eq!(
            record.resource_attr("service.version").as_deref(),
            Some("2.1.0")
        );
        assert_eq!(
            record
                .resource_attr("deployment.environment.name")
                .as_deref(),
            Some("staging")
        );
        let mut ours: Vec<_> = record.resource.iter().map(|kv| format!("{kv:?}")).collect();
        let mut theirs: Vec<_> = server.resource.iter().map(|kv| format!("{kv:?}")).collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
    }

    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    // The console still has its lines, and they say what the records say.
    let lines = binary.lines.lock().unwrap().clone();
    let line: serde_json::Value = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["message"] == "request completed" && l["correlation_id"] == "otlp-logs-1")
        .expect("the access line on stdout");
    assert_eq!(line["trace_id"], access.trace_id().as_str());
    assert_eq!(line["span_id"], access.span_id().as_str());
    assert_attributes_match_line(&access, &line);
}

#[tokio::test]
async fn otlp_only_over_http_with_gzip_and_a_warning_with_its_exchange_ids() {
    let spans = OtlpReceiver::grpc().await;
    let logs = LogsReceiver::http().await;
    let dead_upstream = closed_port().await;
    let port = closed_port().await;
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("sidecar.log");
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:{port}\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"http://127.0.0.1:{dead_upstream}\"\n\
         [tracing]\nsampler = \"always_on\"\n[tracing.otlp]\nendpoint = \"{}\"\n\
         [logging]\nfile = \"{}\"\n\
         [logging.otlp]\nendpoint = \"{}\"\nprotocol = \"http/protobuf\"\n\
         compression = \"gzip\"\n",
        spans.endpoint(),
        log_file.display(),
        logs.endpoint()
    );
    // The specification's variables choose the exporter and the delay.
    let env = [
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
    ];
    let (binary, started_on_stdout) = launch_binary(&config, &env);
    wait_until_serving(port).await;
    let req = Request::get(format!("http://127.0.0.1:{port}/api/chat"))
        .header("x-correlation-id", "otlp-logs-2")
        .body(full(Bytes::new()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 502);
    let trace_id = json_body(&body)["trace_id"].as_str().unwrap().to_owned();

    let warning = logs
        .wait_for("the warning", |r| {
            r.is("proxy answered with an error", Some("otlp-logs-2"))
        })
        .await;
    let access = logs
        .wait_for("access record", |r| {
            r.is("request completed", Some("otlp-logs-2"))
        })
        .await;
    logs.wait_for("start record", |r| r.is("otel-sidecar started", None))
        .await;
    assert_eq!(warning.record.severity_number, SeverityNumber::Warn as i32);
    assert_eq!(warning.record.severity_text, "WARN");
    assert_eq!(warning.str_attr("error_type").as_deref(), Some("connect"));
    assert!(warning.str_attr("error").is_some());
    assert_eq!(warning.trace_id(), trace_id);
    assert_eq!(warning.span_id().len(), 16);
    assert_eq!(access.trace_id(), trace_id);
    assert_eq!(
        access.span_id(),
        warning.span_id(),
        "both the server span's"
    );
    assert_eq!(access.attr("status"), Some(Value::IntValue(502)));
    assert_eq!(access.str_attr("error_type").as_deref(), Some("connect"));
    assert_eq!(
        access.resource_attr("service.name").as_deref(),
        Some("otel-sidecar")
    );
    let (requests, gzipped) = logs.http_requests();
    assert!(requests > 0);
    assert_eq!(gzipped, requests, "every export is gzip-encoded");

    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    // Without `console` nothing goes to stdout; the file keeps every line.
    assert_eq!(*binary.lines.lock().unwrap(), Vec::<String>::new());
    assert!(started_on_stdout.try_recv().is_err());
    let file = std::fs::read_to_string(&log_file).unwrap();
    let line: serde_json::Value = file
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["message"] == "request completed" && l["correlation_id"] == "otlp-logs-2")
        .expect("the access line in the file");
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_attributes_match_line(&access, &line);
    assert!(file.contains("otel-sidecar started"));
}

#[tokio::test]
async fn a_dead_or_hanging_collector_never_slows_requests_and_lost_records_are_counted() {
    let upstream = mirror().await;
    let hanging = LogsReceiver::grpc_with(Duration::from_secs(60), None).await;
    let dead = format!("http://127.0.0.1:{}", closed_port().await);
    for (collector, endpoint) in [("dead", dead), ("hanging", hanging.endpoint())] {
        let config = format!(
            "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"{}\"\n[tracing]\nenabled = false\n\
             [logging]\nexporters = [\"console\", \"otlp\"]\n\
             [logging.otlp]\nendpoint = \"{endpoint}\"\ntimeout = \"1s\"\n\
             max_queue_size = 8\nmax_export_batch_size = 4\nschedule_delay = \"50ms\"\n",
            upstream.url()
        );
        let binary = spawn_binary(&config);
        let admin = binary.admin();
        let client = client();
        let mut slowest = Duration::ZERO;
        for i in 0..100 {
            let started = Instant::now();
            let (parts, _) = send(&client, get(format!("http://{}/r{i}", binary.listener))).await;
            slowest = slowest.max(started.elapsed());
            assert_eq!(parts.status, 200, "{collector}");
        }
        assert!(
            slowest < Duration::from_millis(500),
            "{collector}: a request took {slowest:?}"
        );
        // 100 access records through a queue of 8 whose exports fail or
        // hang: most are dropped at once, the rest when their export fails.
        let dropped = logs_dropped(&admin, 100.0).await;
        assert!(
            dropped >= 100.0,
            "{collector}: every undelivered record is counted, got {dropped}"
        );
        let started = Instant::now();
        let (code, binary) = binary.terminate().await;
        assert_eq!(code, 0, "{collector}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{collector}: the flush at exit is bounded by the export timeout, took {:?}",
            started.elapsed()
        );
        let lines = binary.lines.lock().unwrap().clone();
        let access = lines
            .iter()
            .filter(|l| l.contains("\"request completed\""))
            .count();
        assert_eq!(access, 100, "{collector}: the console is unaffected");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"WARN\"") && l.contains("log record export failed")),
            "{collector}: the failure is a warning on the console"
        );
    }
    assert!(hanging.records().is_empty());
}

#[tokio::test]
async fn sigterm_flushes_records_logged_just_before() {
    let logs = LogsReceiver::grpc().await;
    let upstream = mirror().await;
    // Batches are sent when full or after an hour: only the flush at exit
    // delivers these.
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n[tracing]\nenabled = false\n\
         [logging]\nexporters = [\"console\", \"otlp\"]\n\
         [logging.otlp]\nendpoint = \"{}\"\nschedule_delay = \"1h\"\n",
        upstream.url(),
        logs.endpoint()
    );
    let binary = spawn_binary(&config);
    for i in 0..3 {
        let req = Request::get(format!("http://{}/flush", binary.listener))
            .header("x-correlation-id", format!("flush-{i}"))
            .body(full(Bytes::new()))
            .unwrap();
        assert_eq!(send(&client(), req).await.0.status, 200);
    }
    assert!(
        !logs
            .records()
            .iter()
            .any(|r| r.body() == "request completed"),
        "nothing is sent before the batch is due"
    );
    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);
    let records = logs.records();
    for i in 0..3 {
        let id = format!("flush-{i}");
        assert!(
            records
                .iter()
                .any(|r| r.is("request completed", Some(id.as_str()))),
            "{id} flushed: {records:#?}"
        );
    }
    for own in ["shutdown signal received", "stopped"] {
        assert!(
            records.iter().any(|r| r.body().starts_with(own)),
            "{own:?} flushed: {records:#?}"
        );
    }
}

/// A private CA, a server certificate for 127.0.0.1 and a client
/// certificate it signed: (CA, server cert, server key, client cert, client
/// key), PEM.
fn private_pki() -> [String; 5] {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["otel-sidecar".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    [
        ca_pem,
        server.pem(),
        server_key.serialize_pem(),
        client.pem(),
        client_key.serialize_pem(),
    ]
}

#[tokio::test]
async fn mtls_to_a_collector_with_a_private_ca_works_with_the_client_certificate_only() {
    let [ca, server_cert, server_key, client_cert, client_key] = private_pki();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(server_cert, server_key))
        .client_ca_root(Certificate::from_pem(&ca));
    let logs = LogsReceiver::grpc_with(Duration::ZERO, Some(tls)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        path("ca.pem", &ca),
        path("client.pem", &client_cert),
        path("client-key.pem", &client_key),
    );
    let upstream = mirror().await;
    let config = |service: &str, identity: &str| {
        format!(
            "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
             [upstream]\nurl = \"{}\"\n[service]\nname = \"{service}\"\n\
             [tracing]\nenabled = false\n\
             [logging]\nexporters = [\"console\", \"otlp\"]\n\
             [logging.otlp]\nendpoint = \"https://127.0.0.1:{}\"\nca_file = \"{ca_file}\"\n\
             timeout = \"1s\"\nschedule_delay = \"100ms\"\n{identity}",
            upstream.url(),
            logs.addr.port()
        )
    };

    let with_cert = format!("client_cert = \"{cert_file}\"\nclient_key = \"{key_file}\"\n");
    let binary = spawn_binary(&config("mtls-with-cert", &with_cert));
    let started = logs
        .wait_for("the start record over mTLS", |r| {
            r.is("otel-sidecar started", None)
        })
        .await;
    assert_eq!(
        started.resource_attr("service.name").as_deref(),
        Some("mtls-with-cert")
    );
    assert_eq!(binary.terminate().await.0, 0);

    // The collector asks for a client certificate: without one, nothing
    // arrives, and what was not delivered is counted and warned about.
    let binary = spawn_binary(&config("mtls-without-cert", ""));
    let admin = binary.admin();
    assert_eq!(
        send(&client(), get(format!("http://{}/x", binary.listener)))
            .await
            .0
            .status,
        200
    );
    let dropped = logs_dropped(&admin, 2.0).await;
    assert!(
        dropped >= 2.0,
        "the start and access records are lost: {dropped}"
    );
    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    assert!(
        !logs
            .records()
            .iter()
            .any(|r| r.resource_attr("service.name").as_deref() == Some("mtls-without-cert")),
        "no record without the client certificate"
    );
    let lines = binary.lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("log record export failed")),
        "{lines:#?}"
    );
}
