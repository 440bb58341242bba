//! GenAI content capture and tool calls through the real proxy: the official
//! Python clients call tools on the mock Ollama, streamed and not; the
//! conversation lands on the server spans (OTLP receiver), redacted and
//! bounded, never in the logs, and in Sentry only when asked.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{json, Value};

use crate::metrics::{scrape, value};
use crate::otlp::{OtlpReceiver, Received};
use crate::sentry::{Ingest, SentryIngest};
use crate::support::*;

/// Planted in the user's message; the mock puts it in the tool call too.
const SECRET: &str = "sk-proj-PLANTEDsecret0123456789";
const MAILBOX: &str = "ops@example.com";
const MODELS: [&str; 4] = [
    "py-ollama-json",
    "py-ollama-stream",
    "py-openai-json",
    "py-openai-stream",
];

/// Both clients, each streamed and not: a tool call, then the answer to
/// the tool's result.
fn python_agent(base: &str) -> String {
    format!(
        r#"
import json, ollama, openai
SECRET = "{SECRET}"
tools = [{{"type": "function", "function": {{"name": "get_weather", "description": "Weather of a city",
    "parameters": {{"type": "object", "properties": {{"city": {{"type": "string"}}}}, "required": ["city"]}}}}}}]
system = {{"role": "system", "content": "You answer about weather. Mail {MAILBOX}"}}
user = {{"role": "user", "content": f"Weather in {{SECRET}}"}}
c = ollama.Client(host="{base}")
for stream in (False, True):
    model = "py-ollama-stream" if stream else "py-ollama-json"
    if stream:
        calls = [t for part in c.chat(model=model, messages=[system, user], tools=tools, stream=True)
                 for t in (part.message.tool_calls or [])]
    else:
        calls = c.chat(model=model, messages=[system, user], tools=tools).message.tool_calls
    assert len(calls) == 1 and calls[0].function.name == "get_weather", calls
    follow = [system, user,
              {{"role": "assistant", "content": "", "tool_calls": [{{"function": {{"name": "get_weather", "arguments": calls[0].function.arguments}}}}]}},
              {{"role": "tool", "content": "rainy, 12 C", "tool_name": "get_weather"}}]
    reply = c.chat(model=model, messages=follow, tools=tools)
    assert reply.message.content == "The tool says: rainy, 12 C", reply
o = openai.OpenAI(base_url="{base}/v1", api_key="sk-test-not-a-secret")
for stream in (False, True):
    model = "py-openai-stream" if stream else "py-openai-json"
    if stream:
        call_id, name, arguments = None, None, ""
        for chunk in o.chat.completions.create(model=model, messages=[system, user], tools=tools, stream=True):
            for d in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call_id = d.id or call_id
                name = d.function.name or name
                arguments += d.function.arguments or ""
    else:
        call = o.chat.completions.create(model=model, messages=[system, user], tools=tools).choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert name == "get_weather" and json.loads(arguments) == {{"city": SECRET}}, (name, arguments)
    follow = [system, user,
              {{"role": "assistant", "content": None, "tool_calls": [{{"id": call_id, "type": "function", "function": {{"name": name, "arguments": arguments}}}}]}},
              {{"role": "tool", "tool_call_id": call_id, "content": "rainy, 12 C"}}]
    reply = o.chat.completions.create(model=model, messages=follow, tools=tools, stream=stream)
    text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices) if stream else reply.choices[0].message.content
    assert text == "The tool says: rainy, 12 C", text
print("ok")
"#
    )
}

async fn run_python(script: String) {
    let python = crate::tools::python_with(&["ollama", "openai"]);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python clients failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json_attr(span: &Received, key: &str) -> Option<Value> {
    span.str_attr(key).map(|s| {
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {s}"))
    })
}

/// The (client, server) spans of each exchange with `model`, in order.
fn exchanges<'a>(spans: &'a [Received], model: &str) -> Vec<(&'a Received, &'a Received)> {
    spans
        .iter()
        .filter(|s| {
            s.span.kind == SpanKind::Client as i32 && s.span.name == format!("chat {model}")
        })
        .map(|client| {
            let server = spans
                .iter()
                .find(|s| {
                    s.span.kind == SpanKind::Server as i32 && s.trace_id() == client.trace_id()
                })
                .expect("the server span of the exchange");
            (client, server)
        })
        .collect()
}

fn tool_call_part(model: &str) -> Value {
    let mut call =
        json!({"type": "tool_call", "name": "get_weather", "arguments": {"city": "[REDACTED]"}});
    if model.starts_with("py-openai") {
        call.as_object_mut()
            .unwrap()
            .shift_insert(1, "id".into(), "call_mock_1".into());
    }
    call
}

#[tokio::test]
async fn python_agents_calling_tools_are_captured_redacted_on_spans_and_never_logged() {
    let mock = mock_ollama(Duration::from_millis(1), Duration::from_millis(5)).await;
    let receiver = OtlpReceiver::grpc().await;
    let sentry = SentryIngest::start(Ingest::Accept).await;
    let config = format!(
        "[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"{}\"\n\
         [tracing]\nsampler = \"always_on\"\n[tracing.otlp]\nendpoint = \"{}\"\n\
         [genai]\ncapture_content = true\n\
         [sentry]\ndsn = \"{}\"\nreport_status = [\"200-599\"]\ninclude_content = true\n",
        mock.url(),
        receiver.endpoint(),
        sentry.dsn()
    );
    let binary = spawn_binary(&config);
    run_python(python_agent(&format!("http://{}", binary.listener))).await;
    let admin = binary.admin();
    let (_, metrics) = send(&client(), get(format!("http://{admin}/metrics"))).await;
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    let (code, binary) = binary.terminate().await;
    assert_eq!(code, 0);

    let spans = receiver.wait_for(16).await;
    for model in MODELS {
        let exchanges = exchanges(&spans, model);
        assert_eq!(exchanges.len(), 2, "{model}: a tool call, then the answer");
        let (call_client, call) = exchanges[0];
        let (answer_client, answer) = exchanges[1];
        assert_eq!(
            call_client.int_attr("gen_ai.response.tool_calls"),
            Some(1),
            "{model}"
        );
        assert_eq!(
            answer_client.int_attr("gen_ai.response.tool_calls"),
            Some(0),
            "{model}"
        );
        let system = json!({"role": "system", "parts": [{"type": "text", "content": "You answer about weather. Mail [REDACTED]"}]});
        let user = json!({"role": "user", "parts": [{"type": "text", "content": "Weather in [REDACTED]"}]});
        assert_eq!(
            json_attr(call, "gen_ai.input.messages"),
            Some(json!([system, user])),
            "{model}"
        );
        let reason = if model.starts_with("py-openai") {
            "tool_call"
        } else {
            "stop"
        };
        assert_eq!(
            json_attr(call, "gen_ai.output.messages"),
            Some(
                json!([{"role": "assistant", "parts": [tool_call_part(model)], "finish_reason": reason}])
            ),
            "{model}"
        );
        let input = json_attr(answer, "gen_ai.input.messages").unwrap();
        assert_eq!(
            input[2]["parts"],
            json!([tool_call_part(model)]),
            "{model}: {input}"
        );
        let mut response = json!({"type": "tool_call_response", "response": "rainy, 12 C"});
        if model.starts_with("py-openai") {
            response
                .as_object_mut()
                .unwrap()
                .shift_insert(1, "id".into(), "call_mock_1".into());
        }
        assert_eq!(
            input[3],
            json!({"role": "tool", "parts": [response]}),
            "{model}"
        );
        assert_eq!(
            json_attr(answer, "gen_ai.output.messages"),
            Some(
                json!([{"role": "assistant", "parts": [{"type": "text", "content": "The tool says: rainy, 12 C"}], "finish_reason": "stop"}])
            ),
            "{model}"
        );
        for span in [call, answer] {
            assert!(span.attr("otel_sidecar.gen_ai.input.truncated").is_none());
            assert!(
                span.attr("gen_ai.system_instructions").is_none(),
                "chat history only"
            );
        }
        assert_eq!(
            value(
                &metrics,
                &format!(
                    r#"gen_ai_response_tool_calls_total{{gen_ai_tool_name="get_weather",gen_ai_request_model="{model}"}}"#
                )
            ),
            Some(1.0),
            "{metrics}"
        );
    }
    let everything = format!("{spans:?}");
    for planted in [SECRET, MAILBOX] {
        assert!(!everything.contains(planted), "{planted} reached a span");
    }

    let stdout = binary.lines.lock().unwrap().clone();
    assert!(stdout.iter().any(|l| l.contains("request completed")));
    for line in &stdout {
        for never in [SECRET, MAILBOX, "rainy", "Weather in", "get_weather"] {
            assert!(!line.contains(never), "{never} in a log line: {line}");
        }
    }

    let mut events = Vec::new();
    for _ in 0..200 {
        events = sentry.events();
        if events.len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(events.len(), 8, "one event per exchange");
    let with_answer = events
        .iter()
        .filter(|e| {
            e["extra"]["gen_ai.output.messages"]
                .as_str()
                .is_some_and(|m| m.contains("The tool says: rainy"))
        })
        .count();
    assert_eq!(with_answer, 4, "include_content puts the content on events");
    let raw = format!("{events:?}");
    for planted in [SECRET, MAILBOX] {
        assert!(!raw.contains(planted), "{planted} reached Sentry");
    }
    mock.stop();
}

async fn post(sidecar: &otel_sidecar::Sidecar, path: &str, body: String) -> Bytes {
    let req = Request::post(format!("http://{}{path}", sidecar.proxy_addr()))
        .header("content-type", "application/json")
        .body(full(body))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 200, "{path}: {body:?}");
    body
}

fn tool_request(model: &str, stream: bool) -> String {
    json!({"model": model, "stream": stream,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {}}}}}],
        "messages": [{"role": "user", "content": "find x"}]})
    .to_string()
}

#[tokio::test]
async fn tool_calls_are_counted_with_capture_off_and_nothing_is_captured() {
    let mock = mock_ollama(Duration::ZERO, Duration::ZERO).await;
    let receiver = OtlpReceiver::grpc().await;
    let mut config = test_config(&mock.url());
    receiver.receive_every_span(&mut config);
    let sidecar = start_sidecar(config).await;
    for (path, stream) in [
        ("/api/chat", true),
        ("/api/chat", false),
        ("/v1/chat/completions", true),
        ("/v1/chat/completions", false),
    ] {
        post(&sidecar, path, tool_request("off", stream)).await;
    }
    post(
        &sidecar,
        "/api/generate",
        json!({"model": "off", "prompt": "no tools here"}).to_string(),
    )
    .await;
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(10).await;
    let counts: Vec<Option<i64>> = spans
        .iter()
        .filter(|s| s.span.kind == SpanKind::Client as i32)
        .map(|s| s.int_attr("gen_ai.response.tool_calls"))
        .collect();
    assert_eq!(
        counts.iter().filter(|c| **c == Some(1)).count(),
        4,
        "{counts:?}"
    );
    assert_eq!(
        counts.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{counts:?}"
    );
    for span in &spans {
        for key in [
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
        ] {
            assert!(span.attr(key).is_none(), "{key} captured while off");
        }
    }
    let text = scrape(&sidecar, None).await.2;
    assert_eq!(
        value(
            &text,
            r#"gen_ai_response_tool_calls_total{gen_ai_tool_name="lookup",gen_ai_request_model="off"}"#
        ),
        Some(4.0),
        "{text}"
    );
    sidecar.stop().await;
    mock.stop();
}

#[tokio::test]
async fn a_huge_prompt_is_cut_to_the_cap_and_sentry_gets_no_content_unless_asked() {
    let mock = mock_ollama(Duration::ZERO, Duration::ZERO).await;
    let receiver = OtlpReceiver::grpc().await;
    let sentry = SentryIngest::start(Ingest::Accept).await;
    let mut config = test_config(&mock.url());
    receiver.receive_every_span(&mut config);
    config.genai.capture_content = true;
    config.genai.max_content_bytes.0 = 1024;
    config.sentry.dsn = otel_sidecar::config::SentryDsn::parse(&sentry.dsn()).unwrap();
    config.sentry.report_status = vec!["200-599".parse().unwrap()];
    let sidecar = start_sidecar(config).await;
    let prompt = format!("{} and then {SECRET}", "many words ".repeat(100_000));
    post(
        &sidecar,
        "/api/generate",
        // The system instructions first: what comes after the cut is left out.
        json!({"model": "big", "system": "be brief", "prompt": prompt, "stream": false})
            .to_string(),
    )
    .await;
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let server = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Server as i32)
        .unwrap();
    let input = server
        .str_attr("gen_ai.input.messages")
        .unwrap_or_else(|| panic!("{:?}", server.span.attributes));
    let system = server.str_attr("gen_ai.system_instructions").unwrap();
    assert_eq!(system, r#"[{"type":"text","content":"be brief"}]"#);
    assert!(input.len() + system.len() <= 1024, "{}", input.len());
    assert!(
        input.starts_with(r#"[{"role":"user","parts":[{"type":"text","content":"many words many"#)
    );
    assert!(server.attr("otel_sidecar.gen_ai.input.truncated").is_some());
    assert!(server
        .attr("otel_sidecar.gen_ai.output.truncated")
        .is_none());
    let output = json_attr(server, "gen_ai.output.messages").unwrap();
    assert_eq!(
        output[0]["parts"][0]["content"],
        otel_sidecar::mock_ollama::ANSWER
    );
    let mut events = Vec::new();
    for _ in 0..200 {
        events = sentry.events();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(events.len(), 1);
    let extra = events[0]["extra"].as_object().unwrap();
    assert!(
        extra.keys().all(|k| !k.starts_with("gen_ai.")),
        "no content without include_content: {extra:?}"
    );
    sidecar.stop().await;
    mock.stop();
}

#[test]
fn the_demo_shows_a_captured_conversation_with_a_tool_call() {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}");
    let scene = stdout
        .split_once("--- content capture")
        .map(|(_, scene)| scene)
        .unwrap_or_else(|| panic!("no content capture scene:\n{stdout}"));
    for expected in [
        "gen_ai.input.messages",
        r#"{"role":"system","parts":[{"type":"text","content":"You are a weather agent. Escalate to [REDACTED]."}]}"#,
        r#"{"type":"tool_call","id":"call_mock_1","name":"get_weather","arguments":{"city":"Paris"}}"#,
        r#""finish_reason":"tool_call""#,
        r#"{"type":"tool_call_response","id":"call_mock_1","response":"18 C, sunny"}"#,
        r#"{"type":"text","content":"The tool says: 18 C, sunny"}"#,
        "gen_ai.response.tool_calls = 1",
        r#"gen_ai_response_tool_calls_total{gen_ai_tool_name="get_weather",gen_ai_request_model="llama3.2:1b"} 1"#,
    ] {
        assert!(
            scene.contains(expected),
            "the scene lacks {expected}:\n{scene}"
        );
    }
    assert!(!stdout.contains("ops@example.com"), "{stdout}");
}
