//! The agent topology: one sidecar in front of an agent API
//! (`examples/agent/agent.py`, a real Python process) and one in front of the
//! Ollama it calls, both exporting to one OTLP receiver. The agent, not a
//! sidecar, makes the model calls, so whether the two sides' spans form one
//! trace depends only on the agent copying its inbound trace context and
//! correlation id onto those calls.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Request;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use otel_sidecar::config::{Config, RouteConfig, Sampler};
use otel_sidecar::mock_ollama::{MockOllama, MockOptions};
use otel_sidecar::Sidecar;

use crate::otlp::{OtlpReceiver, Received};
use crate::support::*;

const MODEL: &str = "agent-test-model";
/// The agent plans with one model call and answers with a second.
const MODEL_CALLS: usize = 2;

/// `python3 examples/agent/agent.py` on a free loopback port; killed when dropped.
struct Agent {
    child: Child,
    addr: String,
    /// Collects stderr until the process exits, for failure messages.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Agent {
    async fn start(ollama_host: String, propagate: bool) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agent/agent.py");
        let mut child = Command::new(crate::tools::require("python3"))
            .arg(script)
            .env("OLLAMA_HOST", ollama_host)
            .env("AGENT_HOST", "127.0.0.1")
            .env("AGENT_PORT", "0")
            .env("AGENT_MODEL", MODEL)
            .env("AGENT_TIMEOUT", "10")
            .env("AGENT_PROPAGATE_CONTEXT", propagate.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 did not run: {e}"));
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        }));
        // The agent prints its bound address once it accepts requests, so no
        // port is chosen here and raced for.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            lines.for_each(drop);
        });
        let first = tokio::task::spawn_blocking(move || rx.recv_timeout(STEP))
            .await
            .unwrap();
        let mut agent = Self {
            child,
            addr: String::new(),
            stderr,
        };
        let line = match first {
            Ok(Some(Ok(line))) => line,
            other => panic!(
                "agent did not start ({other:?}); stderr:\n{}",
                agent.stop_for_stderr()
            ),
        };
        let started = json_body(&line.clone().into());
        assert_eq!(started["propagate_context"], propagate, "{line}");
        agent.addr = started["address"].as_str().unwrap().to_owned();
        agent
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the agent and returns what it wrote to stderr (the pipe ends
    /// when the process does).
    fn stop_for_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn traced(upstream: &str, service: &str, receiver: &OtlpReceiver) -> Config {
    let mut config = test_config(upstream);
    receiver.receive_every_span(&mut config);
    // As shipped (parent-based): the Ollama side follows the sampling
    // decision that travels in a propagated traceparent, so a trace is kept
    // or dropped whole.
    config.tracing.sampler = Sampler::ParentbasedAlwaysOn;
    config.service.name = service.into();
    config
}

/// The stack of monitoring/docker-compose.yml on loopback, the receiver
/// standing in for the collector.
struct Topology {
    receiver: OtlpReceiver,
    mock: MockOllama,
    ollama_side: Sidecar,
    agent: Agent,
    agent_side: Sidecar,
}

impl Topology {
    async fn start(propagate: bool, ollama_host: fn(std::net::SocketAddr) -> String) -> Self {
        let receiver = OtlpReceiver::grpc().await;
        let options = MockOptions {
            token_delay: Duration::from_millis(1),
            first_token_delay: Duration::from_millis(20),
        };
        let mock = MockOllama::start("127.0.0.1:0".parse().unwrap(), options)
            .await
            .unwrap();
        let ollama_side = start_sidecar(traced(&mock.url(), "ollama", &receiver)).await;
        let agent = Agent::start(ollama_host(ollama_side.proxy_addr()), propagate).await;
        let mut config = traced(&agent.url(), "agent-api", &receiver);
        config.metrics.routes = vec![RouteConfig {
            name: "/agent/run".into(),
            path: Some("/agent/run".into()),
            prefix: None,
        }];
        let agent_side = start_sidecar(config).await;
        Self {
            receiver,
            mock,
            ollama_side,
            agent,
            agent_side,
        }
    }

    /// One agent run through the agent's sidecar: the correlation id the
    /// client got back, the agent's answer, and every span of both sidecars.
    async fn run(mut self) -> (String, serde_json::Value, Vec<Received>) {
        let req = Request::post(format!("http://{}/agent/run", self.agent_side.proxy_addr()))
            .header("content-type", "application/json")
            .body(full(r#"{"prompt": "why is the sky blue"}"#))
            .unwrap();
        let (parts, body) = send(&client(), req).await;
        if parts.status != 200 {
            panic!(
                "agent answered {}: {body:?}; agent stderr:\n{}",
                parts.status,
                self.agent.stop_for_stderr()
            );
        }
        let correlation = parts.headers["x-correlation-id"]
            .to_str()
            .unwrap()
            .to_owned();
        for sidecar in [&self.agent_side, &self.ollama_side] {
            sidecar.traces().unwrap().flush().await;
        }
        let spans = self.receiver.wait_for(2 + 2 * MODEL_CALLS).await;
        self.agent_side.stop().await;
        self.ollama_side.stop().await;
        self.mock.stop();
        (correlation, json_body(&body), spans)
    }
}

fn of(spans: &[Received], service: &str, kind: SpanKind) -> Vec<Received> {
    spans
        .iter()
        .filter(|s| {
            s.resource_attr("service.name").as_deref() == Some(service)
                && s.span.kind == kind as i32
        })
        .cloned()
        .collect()
}

/// The spans of one run, by side and kind, with their counts checked: one
/// SERVER and one CLIENT span on the agent's side, one of each per model call
/// on Ollama's.
struct Sides {
    agent_server: Received,
    agent_client: Received,
    model_servers: Vec<Received>,
    model_clients: Vec<Received>,
}

fn sides(spans: &[Received]) -> Sides {
    let names = || {
        spans
            .iter()
            .map(|s| (s.resource_attr("service.name"), s.span.name.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(spans.len(), 2 + 2 * MODEL_CALLS, "{:?}", names());
    let one = |service, kind| {
        let found = of(spans, service, kind);
        assert_eq!(found.len(), 1, "{service} {kind:?}: {:?}", names());
        found.into_iter().next().unwrap()
    };
    let sides = Sides {
        agent_server: one("agent-api", SpanKind::Server),
        agent_client: one("agent-api", SpanKind::Client),
        model_servers: of(spans, "ollama", SpanKind::Server),
        model_clients: of(spans, "ollama", SpanKind::Client),
    };
    assert_eq!(sides.model_servers.len(), MODEL_CALLS, "{:?}", names());
    assert_eq!(sides.model_clients.len(), MODEL_CALLS, "{:?}", names());
    assert_eq!(sides.agent_server.span.name, "POST /agent/run");
    assert_eq!(
        sides.agent_client.parent_span_id(),
        sides.agent_server.span_id()
    );
    // Each model call's client span is the child of its own server span.
    let servers: BTreeMap<String, &Received> = sides
        .model_servers
        .iter()
        .map(|s| (s.span_id(), s))
        .collect();
    for client in &sides.model_clients {
        let server = servers
            .get(&client.parent_span_id())
            .unwrap_or_else(|| panic!("{} has no server parent", client.span.name));
        assert_eq!(client.trace_id(), server.trace_id());
        assert_eq!(server.span.name, "POST /api/chat");
    }
    let parents: BTreeSet<String> = sides
        .model_clients
        .iter()
        .map(Received::parent_span_id)
        .collect();
    assert_eq!(
        parents.len(),
        MODEL_CALLS,
        "one client span per server span"
    );
    sides
}

/// The model, tokens and time to first token are read on Ollama's side,
/// where the model calls pass; the agent's side sees only its own API.
fn genai_is_on_the_model_side(sides: &Sides, answer: &serde_json::Value) {
    let mut on_spans: Vec<(i64, i64)> = sides
        .model_clients
        .iter()
        .map(|span| {
            assert_eq!(span.span.name, format!("chat {MODEL}"));
            assert_eq!(
                span.str_attr("gen_ai.request.model").as_deref(),
                Some(MODEL)
            );
            assert_eq!(
                span.str_attr("gen_ai.provider.name").as_deref(),
                Some("ollama")
            );
            (
                span.int_attr("gen_ai.usage.input_tokens").unwrap(),
                span.int_attr("gen_ai.usage.output_tokens").unwrap(),
            )
        })
        .collect();
    // What the agent read from Ollama's replies, call by call.
    let mut reported: Vec<(i64, i64)> = answer["model_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| {
            (
                call["input_tokens"].as_i64().unwrap(),
                call["output_tokens"].as_i64().unwrap(),
            )
        })
        .collect();
    on_spans.sort_unstable();
    reported.sort_unstable();
    assert_eq!(on_spans, reported, "tokens on spans vs in Ollama's replies");
    assert!(on_spans
        .iter()
        .all(|&(input, output)| input > 0 && output > 0));
    for span in [&sides.agent_server, &sides.agent_client] {
        assert!(span.attr("gen_ai.request.model").is_none(), "{span:?}");
    }
    assert_eq!(answer["model"], MODEL);
    assert!(answer["answer"].as_str().unwrap().starts_with("The sky"));
}

#[tokio::test]
async fn an_agent_that_forwards_trace_context_yields_one_trace_across_both_sidecars() {
    // OLLAMA_HOST with a scheme, as `http://ollama-sidecar:8080` in compose.
    let topology = Topology::start(true, |addr| format!("http://{addr}")).await;
    let (correlation, answer, spans) = topology.run().await;
    let sides = sides(&spans);
    genai_is_on_the_model_side(&sides, &answer);

    let trace = sides.agent_server.trace_id();
    assert!(
        spans.iter().all(|s| s.trace_id() == trace),
        "one trace: {:?}",
        spans.iter().map(Received::trace_id).collect::<Vec<_>>()
    );
    assert!(sides.agent_server.span.parent_span_id.is_empty(), "root");
    for server in &sides.model_servers {
        // The agent passed on the traceparent it received, whose parent id is
        // the agent side's client span.
        assert_eq!(server.parent_span_id(), sides.agent_client.span_id());
    }
    for server in std::iter::once(&sides.agent_server).chain(&sides.model_servers) {
        assert_eq!(
            server.str_attr("correlation_id").as_deref(),
            Some(correlation.as_str()),
            "{} of {:?}",
            server.span.name,
            server.resource_attr("service.name")
        );
    }
}

#[tokio::test]
async fn an_agent_that_does_not_forward_it_yields_separate_complete_traces() {
    // OLLAMA_HOST as bare host:port, Ollama's other convention.
    let topology = Topology::start(false, |addr| addr.to_string()).await;
    let (correlation, answer, spans) = topology.run().await;
    let sides = sides(&spans);
    genai_is_on_the_model_side(&sides, &answer);

    // The agent's request is one trace, each model call one more; each holds
    // exactly its side's SERVER and CLIENT span.
    let mut traces: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for span in &spans {
        traces
            .entry(span.trace_id())
            .or_default()
            .push(span.span.kind);
    }
    assert_eq!(traces.len(), 1 + MODEL_CALLS, "{traces:?}");
    traces.values_mut().for_each(|kinds| kinds.sort_unstable());
    let complete = [SpanKind::Server as i32, SpanKind::Client as i32];
    assert!(
        traces.values().all(|kinds| kinds == &complete),
        "{traces:?}"
    );
    assert_eq!(sides.agent_client.trace_id(), sides.agent_server.trace_id());
    for server in &sides.model_servers {
        assert!(
            server.span.parent_span_id.is_empty(),
            "a model call's trace starts at its sidecar"
        );
        assert_ne!(server.trace_id(), sides.agent_server.trace_id());
    }
    assert_eq!(
        sides.agent_server.str_attr("correlation_id").as_deref(),
        Some(correlation.as_str())
    );
    let mut ids: BTreeSet<String> = sides
        .model_servers
        .iter()
        .map(|s| s.str_attr("correlation_id").unwrap())
        .collect();
    ids.insert(correlation);
    assert_eq!(
        ids.len(),
        1 + MODEL_CALLS,
        "every trace its own correlation id: {ids:?}"
    );
}

/// The agent reads OLLAMA_HOST as the official ollama client does; its
/// doctests say how.
#[test]
fn the_agent_reads_ollama_host_by_ollamas_conventions() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agent/agent.py");
    let out = Command::new(crate::tools::require("python3"))
        .args(["-m", "doctest", "-v"])
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("python3 did not run: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed: u32 = text
        .lines()
        .find_map(|l| l.strip_suffix(" passed and 0 failed."))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no doctest summary:\n{text}"));
    assert!(passed > 0, "{text}");
}
