//! The demo's `outcome` sampler part: a second proxy in front of the same
//! mock, keeping only what matters (ratio 0, so nothing is kept by luck):
//! a slow generation is exported, a fast tag listing is not, and
//! `sidecar_traces_sampled_total` says why. The threshold is the generate
//! route's own; every other route's is an hour, so what is dropped does not
//! depend on how busy the machine is.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};

use super::{fetch, scene_config, start_scene, DemoClient};
use crate::config::{OutcomeRoute, Sampler};

/// Slower than this a generation is kept; the demo's takes about 480 ms
/// (16 tokens 25 ms apart after 80 ms).
const SLOWER_THAN: Duration = Duration::from_millis(250);

pub async fn show(client: &DemoClient, upstream: &str) -> anyhow::Result<()> {
    let mut config = scene_config(upstream)?;
    config.logging.access_log = false;
    config.tracing.sampler = Sampler::Outcome;
    config.tracing.outcome.ratio = 0.0;
    config.tracing.outcome.slower_than = Duration::from_secs(3600);
    config.tracing.outcome.routes = vec![OutcomeRoute {
        name: "/api/generate".to_owned(),
        slower_than: Some(SLOWER_THAN),
        ttft_slower_than: None,
    }];
    // The response's `server-timing` names the trace, kept or not.
    config.tracing.server_timing = true;
    let (sidecar, spans) = start_scene(config).await?;
    let proxy = format!("http://{}", sidecar.proxy_addr());

    println!(
        "\n--- outcome sampling: a second proxy with [tracing] sampler = \"outcome\", \
         ratio = 0, and slower_than = \"{}ms\" on /api/generate ---",
        SLOWER_THAN.as_millis()
    );
    let fast = exchange(client, &proxy, "GET", "/api/tags", "").await?;
    let slow = exchange(
        client,
        &proxy,
        "POST",
        "/api/generate",
        r#"{"model":"llama3.2:1b","prompt":"Tell a long story","options":{"num_predict":16}}"#,
    )
    .await?;
    if let Some(traces) = sidecar.traces() {
        traces.flush().await;
    }
    let exported = spans.trace_ids();
    for (what, (trace_id, took)) in [("fast", fast), ("slow", slow)] {
        let kept = exported.iter().filter(|t| **t == trace_id).count();
        let verdict = if kept > 0 {
            format!("kept, {kept} spans exported")
        } else {
            "dropped, nothing exported".to_owned()
        };
        println!(
            "{what:<4} {:>7.1} ms  trace={trace_id}  {verdict}",
            took.as_secs_f64() * 1e3
        );
    }
    let metrics = fetch(client, &format!("http://{}/metrics", sidecar.admin_addr())).await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("sidecar_traces_sampled_total{"))
    {
        println!("{line}");
    }
    sidecar.stop().await;
    Ok(())
}

/// Sends one request, reads its body to the end, and returns the trace id
/// from `server-timing` and how long it took.
async fn exchange(
    client: &DemoClient,
    base: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(String, Duration)> {
    let start = Instant::now();
    let request = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response = client.request(request).await?;
    // `trace;desc="00-<trace id>-<span id>-<flags>"`
    let trace_id = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .unwrap_or("-")
        .to_owned();
    response.into_body().collect().await?;
    Ok((trace_id, start.elapsed()))
}
