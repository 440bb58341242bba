//! How spans leave: the OTLP connection from `[otlp]` and `[tracing.otlp]`
//! or the standard environment (gzip, mTLS with a private CA, a per-signal
//! endpoint used as given), and the exporters chosen per signal.

use std::time::Duration;

use http::Response;
use otel_sidecar::config::{Compression, OtlpProtocol, TraceExporter};

use crate::otlp::OtlpReceiver;
use crate::pki::pki;
use crate::support::*;

async fn one_exchange(sidecar: &otel_sidecar::Sidecar) {
    let (parts, _) = send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
    assert_eq!(parts.status, 200);
}

async fn ok_upstream() -> TestUpstream {
    TestUpstream::start(|_req| async { Response::new(full("ok")) }).await
}

#[tokio::test]
async fn gzip_is_used_over_grpc_and_http() {
    let upstream = ok_upstream().await;
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let receiver = match protocol {
            OtlpProtocol::Grpc => OtlpReceiver::grpc().await,
            OtlpProtocol::HttpProtobuf => OtlpReceiver::http().await,
        };
        let mut config = test_config(&upstream.url());
        receiver.receive_every_span(&mut config);
        config.otlp.protocol = protocol;
        config.otlp.compression = Compression::Gzip;
        config.tracing.otlp.endpoint = None;
        config.otlp.endpoint = receiver.endpoint();
        let sidecar = start_sidecar(config).await;
        one_exchange(&sidecar).await;
        sidecar.traces().unwrap().flush().await;
        receiver.wait_for(2).await;
        assert_eq!(receiver.encodings(), vec!["gzip"], "{protocol:?}");
        sidecar.stop().await;
    }
}

#[tokio::test]
async fn spans_reach_a_collector_that_requires_a_client_certificate() {
    let pki = pki();
    let upstream = ok_upstream().await;
    let receiver = OtlpReceiver::grpc_mtls(&pki).await;
    let endpoint = format!("https://localhost:{}", receiver.addr.port());

    let mut config = test_config(&upstream.url());
    receiver.receive_every_span(&mut config);
    config.tracing.otlp.endpoint = Some(endpoint.clone());
    config.otlp.ca_file = Some(pki.ca.clone());
    config.otlp.client_cert = Some(pki.client_cert.clone());
    config.otlp.client_key = Some(pki.client_key.clone());
    let sidecar = start_sidecar(config.clone()).await;
    one_exchange(&sidecar).await;
    sidecar.traces().unwrap().flush().await;
    assert_eq!(receiver.wait_for(2).await.len(), 2);
    sidecar.stop().await;

    // Without the client certificate the collector refuses the connection:
    // the spans are dropped and counted, the request is unaffected.
    config.otlp.client_cert = None;
    config.otlp.client_key = None;
    config.tracing.otlp.timeout = Some(Duration::from_secs(2));
    let sidecar = start_sidecar(config).await;
    one_exchange(&sidecar).await;
    sidecar.traces().unwrap().flush().await;
    let traces = sidecar.traces().unwrap();
    assert_eq!(traces.dropped_spans(), 2);
    assert_eq!(receiver.spans().len(), 2, "nothing more arrived");
    sidecar.stop().await;
}

#[tokio::test]
async fn a_per_signal_endpoint_from_the_environment_is_used_as_given() {
    let upstream = ok_upstream().await;
    let receiver = OtlpReceiver::http_on(0, "/custom/traces").await;
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n[tracing]\nsampler = \"always_on\"\n",
        upstream.url()
    );
    let endpoint = format!("{}/custom/traces", receiver.endpoint());
    let binary = spawn_binary_with_env(
        &config,
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let (parts, _) = send(&client(), get(format!("http://{}/x", binary.listener))).await;
    assert_eq!(parts.status, 200);
    let spans = receiver.wait_for(2).await;
    assert_eq!(spans.len(), 2);
    assert!(receiver.encodings().iter().all(|e| e == "gzip"));
    let (code, _) = binary.terminate().await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn the_console_exporter_prints_spans_and_none_exports_nothing() {
    let upstream = ok_upstream().await;
    let receiver = OtlpReceiver::grpc().await;
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n\
         [tracing]\nsampler = \"always_on\"\n[tracing.otlp]\nendpoint = \"{}\"\nschedule_delay = \"100ms\"\n",
        upstream.url(),
        receiver.endpoint()
    );
    let binary = spawn_binary_with_env(&config, &[("OTEL_TRACES_EXPORTER", "console")]);
    let (parts, _) = send(&client(), get(format!("http://{}/x", binary.listener))).await;
    assert_eq!(parts.status, 200);
    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);
    let lines = binary.lines.lock().unwrap().join("\n");
    assert!(
        lines.contains("Spans") && lines.contains("GET other"),
        "no span on the console:\n{lines}"
    );
    assert!(
        receiver.spans().is_empty(),
        "console only: nothing over OTLP"
    );

    // `none`: no span is built; a client's trace context passes through.
    let mut config = test_config(&upstream.url());
    receiver.receive_every_span(&mut config);
    config.tracing.exporters = Vec::<TraceExporter>::new();
    let sidecar = start_sidecar(config).await;
    assert!(sidecar.traces().is_none());
    one_exchange(&sidecar).await;
    sidecar.stop().await;
    assert!(receiver.spans().is_empty());
}
