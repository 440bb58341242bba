//! GenAI telemetry through the real proxy in front of the mock Ollama: exact
//! tokens and models on spans, metrics and the access log; streams untouched.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otel_sidecar::config::Config;
use otel_sidecar::mock_ollama::MockOllama;

use crate::metrics::{scrape, token_usage_sum, value};
use crate::otlp::{OtlpReceiver, Received};
use crate::support::*;

async fn mock() -> MockOllama {
    mock_ollama(Duration::from_millis(1), Duration::from_millis(30)).await
}

fn traced(upstream: &str, receiver: &OtlpReceiver) -> Config {
    let mut config = test_config(upstream);
    receiver.receive_every_span(&mut config);
    config
}

/// POSTs `body` to `path`, returns the whole response body.
async fn post(sidecar: &otel_sidecar::Sidecar, path: &str, body: &str) -> Bytes {
    let req = Request::post(format!("http://{}{path}", sidecar.proxy_addr()))
        .header("content-type", "application/json")
        .body(full(body.to_owned()))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 200, "{path}: {body:?}");
    body
}

fn client_span<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Client as i32 && s.span.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no client span {name:?} in {:?}",
                spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
            )
        })
}

struct Case {
    path: &'static str,
    body: &'static str,
    span_name: &'static str,
    provider: &'static str,
    input: i64,
    output: Option<i64>,
    finish: Option<&'static str>,
}

#[tokio::test]
async fn tokens_and_models_for_every_route_streamed_and_not() {
    let mock = mock().await;
    let receiver = OtlpReceiver::grpc().await;
    let sidecar = start_sidecar(traced(&mock.url(), &receiver)).await;
    // The mock answers with the first N words of a 19-word sentence and
    // counts one input token per prompt word.
    let cases = [
        Case {
            path: "/api/generate",
            body: r#"{"model":"gen-stream","prompt":"why is the sky blue","options":{"num_predict":4}}"#,
            span_name: "text_completion gen-stream",
            provider: "ollama",
            input: 5,
            output: Some(4),
            finish: Some("length"),
        },
        Case {
            path: "/api/generate",
            body: r#"{"model":"gen-json","prompt":"one two","stream":false}"#,
            span_name: "text_completion gen-json",
            provider: "ollama",
            input: 2,
            output: Some(19),
            finish: Some("stop"),
        },
        Case {
            path: "/api/chat",
            body: r#"{"model":"chat-stream","messages":[{"role":"user","content":"a b c"}],"options":{"num_predict":7}}"#,
            span_name: "chat chat-stream",
            provider: "ollama",
            input: 3,
            output: Some(7),
            finish: Some("length"),
        },
        Case {
            path: "/api/chat",
            body: r#"{"stream":false,"messages":[{"role":"user","content":"hi"}],"model":"chat-json"}"#,
            span_name: "chat chat-json",
            provider: "ollama",
            input: 1,
            output: Some(19),
            finish: Some("stop"),
        },
        Case {
            path: "/api/embed",
            body: r#"{"model":"embedder","input":["one two three","four"]}"#,
            span_name: "embeddings embedder",
            provider: "ollama",
            input: 4,
            output: None,
            finish: None,
        },
        Case {
            path: "/v1/chat/completions",
            body: r#"{"model":"oai-usage","messages":[{"role":"user","content":"x y"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":6}"#,
            span_name: "chat oai-usage",
            provider: "openai",
            input: 2,
            output: Some(6),
            finish: Some("length"),
        },
        Case {
            path: "/v1/chat/completions",
            body: r#"{"model":"oai-json","messages":[{"role":"user","content":"x y z"}]}"#,
            span_name: "chat oai-json",
            provider: "openai",
            input: 3,
            output: Some(19),
            finish: Some("stop"),
        },
        Case {
            path: "/v1/embeddings",
            body: r#"{"model":"oai-embed","input":"a b c d e"}"#,
            span_name: "embeddings oai-embed",
            provider: "openai",
            input: 5,
            output: None,
            finish: None,
        },
    ];
    for case in &cases {
        post(&sidecar, case.path, case.body).await;
    }
    // Streamed without include_usage: no usage is sent, so none is recorded.
    post(
        &sidecar,
        "/v1/chat/completions",
        r#"{"model":"oai-no-usage","messages":[{"role":"user","content":"x"}],"stream":true}"#,
    )
    .await;

    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2 * (cases.len() + 1)).await;
    for case in &cases {
        let span = client_span(&spans, case.span_name);
        let model = case.span_name.split(' ').nth(1).unwrap();
        assert_eq!(
            span.str_attr("gen_ai.provider.name").as_deref(),
            Some(case.provider),
            "{}",
            case.span_name
        );
        assert_eq!(
            span.str_attr("gen_ai.request.model").as_deref(),
            Some(model)
        );
        assert_eq!(
            span.str_attr("gen_ai.response.model").as_deref(),
            Some(model)
        );
        assert_eq!(
            span.int_attr("gen_ai.usage.input_tokens"),
            Some(case.input),
            "{}",
            case.span_name
        );
        assert_eq!(
            span.int_attr("gen_ai.usage.output_tokens"),
            case.output,
            "{}",
            case.span_name
        );
        let reasons = span.attr("gen_ai.response.finish_reasons");
        match case.finish {
            Some(reason) => assert!(
                format!("{reasons:?}").contains(reason),
                "{}: {reasons:?}",
                case.span_name
            ),
            None => assert!(reasons.is_none()),
        }
        let first_token = span
            .span
            .events
            .iter()
            .any(|e| e.name == "gen_ai.first_token");
        assert_eq!(
            first_token,
            case.output.is_some(),
            "{}: first-token event",
            case.span_name
        );
    }
    let no_usage = client_span(&spans, "chat oai-no-usage");
    assert_eq!(no_usage.int_attr("gen_ai.usage.output_tokens"), None);
    assert!(no_usage
        .span
        .events
        .iter()
        .any(|e| e.name == "gen_ai.first_token"));

    let text = scrape(&sidecar, None).await.2;
    let token_sum = |kind, model, op| token_usage_sum(&text, kind, model, op);
    assert_eq!(
        token_sum("input", "gen-stream", "text_completion"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        token_sum("output", "gen-stream", "text_completion"),
        Some(4.0)
    );
    assert_eq!(token_sum("output", "chat-json", "chat"), Some(19.0));
    assert_eq!(token_sum("input", "embedder", "embeddings"), Some(4.0));
    assert_eq!(token_sum("output", "oai-usage", "chat"), Some(6.0));
    assert_eq!(token_sum("output", "oai-no-usage", "chat"), None);
    let ttft = value(
        &text,
        r#"gen_ai_server_time_to_first_token_seconds_sum{gen_ai_request_model="chat-stream"}"#,
    )
    .unwrap();
    assert!(
        ttft >= 0.03,
        "the mock waits 30 ms before the first token: {ttft}"
    );
    assert_eq!(
        value(
            &text,
            r#"gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="embedder"}"#
        ),
        None
    );
    assert_eq!(
        value(
            &text,
            r#"gen_ai_client_operation_duration_seconds_count{gen_ai_request_model="embedder",gen_ai_operation_name="embeddings"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"gen_ai_server_time_per_output_token_seconds_count{gen_ai_request_model="chat-stream"}"#
        ),
        Some(1.0)
    );
    sidecar.stop().await;
    mock.stop();
}

#[tokio::test]
async fn model_after_a_five_mib_prompt_is_read_and_the_body_arrives_intact() {
    let upstream = TestUpstream::start(|req| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let digest = body.iter().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
        Response::builder()
            .header("content-type", "application/json")
            .body(full(format!(r#"{{"model":"big-model","response":"ok","done":true,"prompt_eval_count":{},"eval_count":{digest}}}"#, body.len())))
            .unwrap()
    })
    .await;
    let receiver = OtlpReceiver::grpc().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver)).await;
    let prompt = "lorem ipsum \\\"dolor\\\" ".repeat(5 * 1024 * 1024 / 20);
    let body = format!(
        r#"{{"prompt":"{prompt}","options":{{"temperature":0}},"stream":false,"model":"big-model"}}"#
    );
    let expected_digest = body
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let reply = post(&sidecar, "/api/generate", &body).await;
    let reply = json_body(&reply);
    assert_eq!(
        reply["prompt_eval_count"],
        body.len(),
        "body length changed in transit"
    );
    assert_eq!(
        reply["eval_count"], expected_digest,
        "body bytes changed in transit"
    );
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let span = client_span(&spans, "text_completion big-model");
    assert_eq!(
        span.str_attr("gen_ai.request.model").as_deref(),
        Some("big-model")
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn malformed_stream_is_proxied_byte_exact_without_genai_attributes() {
    let garbage: &'static [&'static [u8]] = &[
        b"{\"model\":\"m\",\"resp",
        b"onse\":\"a\"}\nnot json at all\n\xff\xfe\x00binary",
        b"\n{\"done\":tru",
    ];
    let upstream = TestUpstream::start(move |_req| async move {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            for chunk in garbage {
                let _ = tx.send(Bytes::from_static(chunk)).await;
            }
        });
        Response::builder()
            .header("content-type", "application/x-ndjson")
            .body(body)
            .unwrap()
    })
    .await;
    let receiver = OtlpReceiver::grpc().await;
    let sidecar = start_sidecar(traced(&upstream.url(), &receiver)).await;
    let req = Request::post(format!("http://{}/api/generate", sidecar.proxy_addr()))
        .body(full("not even json {"))
        .unwrap();
    let (parts, body) = send(&client(), req).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, Bytes::from(garbage.concat()));
    sidecar.traces().unwrap().flush().await;
    let spans = receiver.wait_for(2).await;
    let span = client_span(&spans, "text_completion unknown");
    assert_eq!(
        span.str_attr("gen_ai.operation.name").as_deref(),
        Some("text_completion")
    );
    for key in [
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.response.finish_reasons",
    ] {
        assert!(span.attr(key).is_none(), "{key} on a malformed stream");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn model_labels_are_capped() {
    let mock = mock().await;
    let mut config = test_config(&mock.url());
    config.metrics.max_models = 3;
    let sidecar = start_sidecar(config).await;
    for i in 0..6 {
        let body = format!(r#"{{"model":"model-{i}","prompt":"x","stream":false}}"#);
        post(&sidecar, "/api/generate", &body).await;
    }
    let text = scrape(&sidecar, None).await.2;
    let count = |model: &str| {
        value(
            &text,
            &format!(
                r#"gen_ai_client_operation_duration_seconds_count{{gen_ai_request_model="{model}",gen_ai_operation_name="text_completion"}}"#
            ),
        )
    };
    assert_eq!(
        (count("model-0"), count("model-2"), count("model-3")),
        (Some(1.0), Some(1.0), None)
    );
    assert_eq!(count("other"), Some(3.0));
    sidecar.stop().await;
    mock.stop();
}

#[tokio::test]
async fn genai_disabled_records_no_genai_telemetry() {
    let mock = mock().await;
    let mut config = test_config(&mock.url());
    config.genai.enabled = false;
    let sidecar = start_sidecar(config).await;
    post(&sidecar, "/api/generate", r#"{"model":"m","prompt":"x"}"#).await;
    let text = scrape(&sidecar, None).await.2;
    assert!(!text.contains("gen_ai_client_token_usage_sum"), "{text}");
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="POST",handler="/api/generate",status="200"}"#
        ),
        Some(1.0)
    );
    sidecar.stop().await;
    mock.stop();
}

/// The official Python clients (`pip install ollama openai`, done by .ci/run)
/// talk to the proxy as they would to Ollama.
#[tokio::test]
async fn real_python_clients_through_the_proxy() {
    let mock = mock().await;
    let sidecar = start_sidecar(test_config(&mock.url())).await;
    let base = format!("http://{}", sidecar.proxy_addr());
    let script = format!(
        r#"
import ollama, openai
c = ollama.Client(host="{base}")
text = "".join(part["response"] for part in c.generate(model="py-ollama", prompt="one two three", stream=True, options={{"num_predict": 5}}))
assert text == "The sky looks blue because", text
reply = c.chat(model="py-chat", messages=[{{"role": "user", "content": "hi"}}], stream=False)
assert reply["message"]["content"].startswith("The sky"), reply
o = openai.OpenAI(base_url="{base}/v1", api_key="sk-test-not-a-secret")
stream = o.chat.completions.create(model="py-openai", messages=[{{"role": "user", "content": "a b"}}], stream=True, stream_options={{"include_usage": True}}, max_tokens=3)
chunks = list(stream)
assert chunks[-1].usage.completion_tokens == 3, chunks[-1]
print("ok")
"#
    );
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
    let text = scrape(&sidecar, None).await.2;
    let sum = |kind, model, op| token_usage_sum(&text, kind, model, op);
    assert_eq!(
        sum("output", "py-ollama", "text_completion"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(sum("input", "py-ollama", "text_completion"), Some(3.0));
    assert_eq!(sum("output", "py-chat", "chat"), Some(19.0));
    assert_eq!(sum("output", "py-openai", "chat"), Some(3.0));
    sidecar.stop().await;
    mock.stop();
}
