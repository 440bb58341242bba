//! The demo's content-capture scene: an agent asks the model about the
//! weather with a tool available, the model calls the tool (streamed, its
//! arguments in fragments), the agent sends the tool's answer back, the
//! model answers. A second proxy with `[genai] capture_content = true`
//! records the conversation on its server spans, redacted.

use opentelemetry::trace::SpanKind;
use opentelemetry::Value;

use super::{fetch, scene_config, send, start_scene, DemoClient};
use crate::config::Sampler;
use crate::mock_ollama::MockOllama;

const TOOLS: &str = r#"[{"type":"function","function":{"name":"get_weather","description":"Current weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]"#;
const SYSTEM: &str =
    r#"{"role":"system","content":"You are a weather agent. Escalate to ops@example.com."}"#;
const USER: &str = r#"{"role":"user","content":"What is the weather in Paris?"}"#;

/// Runs the scene against `mock` and prints what the spans captured.
pub async fn run(client: &DemoClient, mock: &MockOllama) -> anyhow::Result<()> {
    let mut config = scene_config(&mock.url())?;
    config.tracing.sampler = Sampler::AlwaysOn;
    config.genai.capture_content = true;
    let (sidecar, spans) = start_scene(config).await?;
    let proxy = format!("http://{}", sidecar.proxy_addr());

    println!(
        "\n--- content capture ([genai] capture_content = true, a second proxy at {proxy}) ---"
    );
    println!("An agent with a get_weather tool; its system prompt names an e-mail address.");
    let ask = format!(
        r#"{{"model":"llama3.2:1b","stream":true,"tools":{TOOLS},"messages":[{SYSTEM},{USER}]}}"#
    );
    send(client, &proxy, "POST", "/v1/chat/completions", &ask, None).await?;
    let answer_tool = format!(
        r#"{{"model":"llama3.2:1b","tools":{TOOLS},"messages":[{SYSTEM},{USER},
        {{"role":"assistant","content":null,"tool_calls":[{{"id":"call_mock_1","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}}}}]}},
        {{"role":"tool","tool_call_id":"call_mock_1","content":"18 C, sunny"}}]}}"#
    );
    send(
        client,
        &proxy,
        "POST",
        "/v1/chat/completions",
        &answer_tool,
        None,
    )
    .await?;

    if let Some(traces) = sidecar.traces() {
        traces.flush().await;
    }
    for (i, exchange) in spans.by_trace().iter().enumerate() {
        println!("\nexchange {}:", i + 1);
        for span in exchange {
            let keys: &[&str] = if span.span_kind == SpanKind::Server {
                &["gen_ai.input.messages", "gen_ai.output.messages"]
            } else {
                &["gen_ai.response.tool_calls"]
            };
            for key in keys {
                if let Some(value) = span.attributes.iter().find(|kv| kv.key.as_str() == *key) {
                    println!("  {key} = {}", pretty(&value.value));
                }
            }
        }
    }
    println!("\n--- tool calls by name (GET /metrics; counted with capture on or off) ---");
    let metrics = fetch(client, &format!("http://{}/metrics", sidecar.admin_addr())).await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("gen_ai_response_tool_calls_total"))
    {
        println!("{line}");
    }
    println!(
        "The content went to the spans only (and to Sentry with sentry.include_content):\n\
         never to the access log or stdout; the e-mail address was redacted before capture."
    );
    sidecar.stop().await;
    Ok(())
}

/// A JSON array attribute one message per line, anything else as it is.
fn pretty(value: &Value) -> String {
    let text = value.to_string();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(items)) => {
            let lines: Vec<String> = items.iter().map(|m| format!("    {m}")).collect();
            format!("[\n{}\n  ]", lines.join(",\n"))
        }
        _ => text,
    }
}
