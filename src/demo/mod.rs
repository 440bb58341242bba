//! `otel-sidecar demo`: the mock Ollama, the proxy in front of it, a few
//! generate/chat requests (streamed and not), and what they produced.
//! Needs no network and no other program.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

mod capture;
mod conversation;
mod sampling;

use capture::{CapturedLogs, CapturedSpans};

use crate::config::{Config, Sampler};
use crate::mock_ollama::{MockOllama, MockOptions};
use crate::telemetry::TracePipeline;
use crate::Sidecar;

const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

type DemoClient = Client<HttpConnector, Full<Bytes>>;

pub async fn run() -> anyhow::Result<()> {
    let logs = CapturedLogs::default();
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );

    let mock = MockOllama::start(
        LOOPBACK,
        MockOptions {
            token_delay: Duration::from_millis(25),
            first_token_delay: Duration::from_millis(80),
        },
    )
    .await?;
    let mut config = scene_config(&mock.url())?;
    config.tracing.sampler = Sampler::AlwaysOn;
    let (sidecar, spans) = start_scene(config).await?;
    let proxy = format!("http://{}", sidecar.proxy_addr());

    println!("otel-sidecar demo\n=================");
    println!("mock Ollama upstream   {}", mock.url());
    println!("otel-sidecar listener  {proxy}   (clients talk to this)");
    println!(
        "admin listener         http://{}   (/healthz /readyz)\n",
        sidecar.admin_addr()
    );

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: DemoClient = Client::builder(TokioExecutor::new()).build(connector);
    let requests: [(&str, &str, &str, Option<&str>); 5] = [
        ("GET", "/api/tags", "", None),
        (
            "POST",
            "/api/generate",
            r#"{"model":"llama3.2:1b","prompt":"Why is the sky blue?","stream":false}"#,
            None,
        ),
        (
            "POST",
            "/api/generate",
            r#"{"model":"llama3.2:1b","prompt":"Why is the sky blue?","options":{"num_predict":8}}"#,
            Some("demo-request-42"),
        ),
        (
            "POST",
            "/api/chat",
            r#"{"model":"llama3.2:1b","messages":[{"role":"user","content":"Say hi"}],"options":{"num_predict":6}}"#,
            None,
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"llama3.2:1b","messages":[{"role":"user","content":"Say hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":5}"#,
            None,
        ),
    ];
    for (method, path, body, correlation) in requests {
        send(&client, &proxy, method, path, body, correlation).await?;
    }

    if let Some(traces) = sidecar.traces() {
        traces.flush().await;
    }
    println!("\n--- spans (exported over OTLP in production; one SERVER and one CLIENT per exchange) ---");
    for line in spans.summaries() {
        println!("{line}");
    }
    println!("\n--- metrics (GET /metrics on the admin port, OpenMetrics; a selection) ---");
    let metrics = fetch(&client, &format!("http://{}/metrics", sidecar.admin_addr())).await?;
    for line in metrics.lines().filter(|l| is_highlight(l)) {
        println!("{line}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!("\n--- access log lines (JSON, one per exchange; ship them to Loki) ---");
    for line in logs
        .lines()
        .iter()
        .filter(|l| l.contains("request completed"))
    {
        println!("{line}");
    }

    conversation::run(&client, &mock).await?;

    sidecar.stop().await;
    sampling::show(&client, &mock.url()).await?;
    mock.stop();
    println!(
        "\nNext: point it at a real backend.\n  \
         1. edit sidecar.toml: [upstream] url = \"http://127.0.0.1:11434\" (your Ollama or any HTTP API)\n  \
         2. otel-sidecar --config sidecar.toml\n  \
         3. send your clients to the listener address instead of the backend (default :8080)\n  \
         4. otel-sidecar check --config sidecar.toml   prints the effective settings"
    );
    Ok(())
}

async fn send(
    client: &DemoClient,
    base: &str,
    method: &str,
    path: &str,
    body: &str,
    correlation: Option<&str>,
) -> anyhow::Result<()> {
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes())?)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json");
    if let Some(id) = correlation {
        builder = builder.header("x-correlation-id", id);
    }
    let start = Instant::now();
    let response = client
        .request(builder.body(Full::new(Bytes::from(body.to_owned())))?)
        .await?;
    let id = response
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    println!(
        "\n{method} {path}  ->  {}  x-correlation-id: {id}",
        response.status()
    );
    let mut body = response.into_body();
    let mut first_chunk = None;
    let mut chunks = 0;
    let mut preview = String::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            first_chunk.get_or_insert_with(|| start.elapsed());
            chunks += 1;
            if preview.len() < 160 {
                preview.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
    let preview: String = preview.replace('\n', " ").chars().take(160).collect();
    println!(
        "   {chunks} chunk(s), first after {:.1} ms, done after {:.1} ms",
        first_chunk.unwrap_or_default().as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3
    );
    println!("   {preview}…");
    Ok(())
}

/// A proxy in front of `upstream` on loopback ports, as each scene runs one.
fn scene_config(upstream: &str) -> anyhow::Result<Config> {
    let mut config = Config::default();
    config.upstream.url = upstream.parse().map_err(anyhow::Error::msg)?;
    config.listener.address = LOOPBACK;
    config.admin.address = LOOPBACK;
    // Nothing routes to the demo: no reason to keep accepting at the end.
    config.listener.shutdown_delay = Duration::ZERO;
    config.service.name = "demo-agent-api".to_owned();
    Ok(config)
}

/// Starts a scene's proxy with its spans kept in memory for printing.
async fn start_scene(config: Config) -> anyhow::Result<(Sidecar, CapturedSpans)> {
    let spans = CapturedSpans::default();
    let extras = crate::Extras {
        traces: Some(TracePipeline::with_exporter(&config, spans.clone())),
        ..Default::default()
    };
    Ok((Sidecar::start_with(config, extras).await?, spans))
}

async fn fetch(client: &DemoClient, url: &str) -> anyhow::Result<String> {
    let response = client.get(url.parse()?).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The series a newcomer should see first: RED counts and GenAI usage.
fn is_highlight(line: &str) -> bool {
    const PREFIXES: [&str; 5] = [
        "http_requests_total",
        "http_request_duration_seconds_sum",
        "gen_ai_client_token_usage_sum",
        "gen_ai_server_time_to_first_token_seconds_sum",
        "gen_ai_server_time_to_first_token_seconds_count",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
}
