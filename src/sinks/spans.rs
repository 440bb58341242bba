//! Builds the exchange's two spans from its [`Completion`] and queues them
//! for export: status codes, `error.type` and span status per the HTTP
//! semantic conventions, GenAI attributes on the client span. The server span
//! ends when the response body ends, so a 40 s stream is a 40 s span.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanKind, Status};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::context::ExchangeTrace;
use crate::error::ErrorSide;
use crate::exchange::Sink;
use crate::exchange::{protocol_semconv, Completion, GenAiCompletion, Outcome};
use crate::genai::Operation;
use crate::telemetry::TracePipeline;

/// `error.type` of a client that left before the response ended.
pub const CLIENT_ABORT: &str = "client_abort";

/// The exchange's correlation id on its SERVER span (DESIGN.md).
const CORRELATION_ID: &str = "correlation_id";

/// The event of each resend on the CLIENT span, named after its attribute
/// `http.request.resend_count`.
const RESEND_EVENT: &str = "http.request.resend";

/// The GenAI conventions' keys. The `opentelemetry-semantic-conventions`
/// crate has them only behind its experimental feature, deprecated there
/// since they moved to the GenAI conventions' own repository.
mod genai_keys {
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub const FIRST_TOKEN_EVENT: &str = "gen_ai.first_token";
    /// The conventions define no count of the tool calls a response asks
    /// for: this one sits beside `gen_ai.response.finish_reasons`.
    pub const RESPONSE_TOOL_CALLS: &str = "gen_ai.response.tool_calls";
    pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    /// Set when the capture of a direction was cut at `max_content_bytes`.
    pub const INPUT_TRUNCATED: &str = "otel_sidecar.gen_ai.input.truncated";
    pub const OUTPUT_TRUNCATED: &str = "otel_sidecar.gen_ai.output.truncated";
}

pub struct SpanSink {
    pipeline: Arc<TracePipeline>,
}

impl SpanSink {
    pub fn new(pipeline: Arc<TracePipeline>) -> Self {
        Self { pipeline }
    }

    fn span(
        &self,
        trace: &ExchangeTrace,
        kind: SpanKind,
        name: Cow<'static, str>,
        times: (SystemTime, SystemTime),
    ) -> SpanData {
        let (span_context, parent_span_id, parent_span_is_remote) = match kind {
            SpanKind::Client => (trace.client_context(), trace.span_id(), false),
            _ => (
                trace.server_context(),
                trace
                    .parent
                    .unwrap_or(opentelemetry::trace::SpanId::INVALID),
                trace.parent.is_some(),
            ),
        };
        SpanData {
            span_context,
            parent_span_id,
            parent_span_is_remote,
            span_kind: kind,
            name,
            start_time: times.0,
            end_time: times.1,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: self.pipeline.scope().clone(),
        }
    }

    fn server_span(
        &self,
        c: &Completion,
        trace: &ExchangeTrace,
        end: SystemTime,
    ) -> Option<SpanData> {
        let facts = trace.facts.as_deref()?;
        let e = &c.exchange;
        let method = e.known_method.semconv();
        let name = format!("{method} {}", e.handler.name);
        let mut span = self.span(trace, SpanKind::Server, name.into(), (facts.start, end));
        let mut attributes = vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, method),
            KeyValue::new(semconv::URL_PATH, e.target.path().to_owned()),
            KeyValue::new(semconv::URL_SCHEME, e.client.scheme()),
            KeyValue::new(semconv::HTTP_ROUTE, e.handler.name.clone()),
            KeyValue::new(
                semconv::NETWORK_PROTOCOL_VERSION,
                protocol_semconv(e.version),
            ),
            KeyValue::new(CORRELATION_ID, e.correlation_id.as_str().to_owned()),
            KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(c.status)),
        ];
        if let Some(agent) = &facts.user_agent {
            attributes.push(KeyValue::new(semconv::USER_AGENT_ORIGINAL, agent.clone()));
        }
        if let Some(host) = &facts.server_address {
            attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, host.clone()));
        }
        let error = match (c.outcome, c.error_kind()) {
            (Outcome::ClientAbort, _) => Some(CLIENT_ABORT.to_owned()),
            (_, Some(kind)) => Some(kind.as_str().to_owned()),
            _ if c.status >= 500 => Some(c.status.to_string()),
            _ => None,
        };
        if let Some(error) = error {
            span.status = Status::error(error.clone());
            attributes.push(KeyValue::new(semconv::ERROR_TYPE, error));
        }
        if let Some(genai) = &c.genai {
            content_attributes(&mut attributes, genai);
        }
        span.attributes = attributes;
        Some(span)
    }

    fn client_span(
        &self,
        c: &Completion,
        trace: &ExchangeTrace,
        end: SystemTime,
    ) -> Option<SpanData> {
        let call = trace.client.as_ref()?;
        let facts = trace.facts.as_deref()?;
        let method = c.exchange.known_method.semconv();
        let name: Cow<'static, str> = match &c.genai {
            Some(g) => format!(
                "{} {}",
                g.route.operation.as_str(),
                g.request.model.as_deref().unwrap_or("unknown")
            )
            .into(),
            None => method.into(),
        };
        let mut span = self.span(trace, SpanKind::Client, name, (call.start, end));
        let mut attributes = vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, method),
            KeyValue::new(semconv::SERVER_ADDRESS, call.host.clone()),
            KeyValue::new(semconv::SERVER_PORT, i64::from(call.port)),
        ];
        if let Some(url) = &call.url {
            attributes.push(KeyValue::new(semconv::URL_FULL, url.clone()));
        }
        if let Some(status) = c.upstream_status {
            attributes.push(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
        }
        let error = match (c.error_kind(), c.upstream_status) {
            (Some(kind), _) if kind.side() == ErrorSide::Upstream => Some(kind.as_str().to_owned()),
            (_, Some(status)) if status >= 400 => Some(status.to_string()),
            _ => None,
        };
        if let Some(error) = error {
            span.status = Status::error(error.clone());
            attributes.push(KeyValue::new(semconv::ERROR_TYPE, error));
        }
        if !call.resends.is_empty() {
            attributes.push(KeyValue::new(
                semconv::HTTP_REQUEST_RESEND_COUNT,
                call.resends.len() as i64,
            ));
            for resend in &call.resends {
                span.events.events.push(Event::new(
                    RESEND_EVENT,
                    resend.at,
                    vec![KeyValue::new(semconv::ERROR_TYPE, resend.error)],
                    0,
                ));
            }
        }
        if let Some(genai) = &c.genai {
            genai_attributes(&mut attributes, genai);
            if let Some(ttft) = genai.time_to_first_token {
                let at = facts.start + ttft;
                span.events.events.push(Event::new(
                    genai_keys::FIRST_TOKEN_EVENT,
                    at,
                    Vec::new(),
                    0,
                ));
            }
        }
        span.attributes = attributes;
        Some(span)
    }
}

impl Sink for SpanSink {
    fn record(&self, c: &Completion) {
        let Some(trace) = c.exchange.trace.as_ref().filter(|t| t.is_sampled()) else {
            return;
        };
        let end = SystemTime::now();
        if let Some(span) = self.client_span(c, trace, end) {
            self.pipeline.export(span);
        }
        if let Some(span) = self.server_span(c, trace, end) {
            self.pipeline.export(span);
        }
    }
}

/// The GenAI conventions' attributes for the client span.
fn genai_attributes(attributes: &mut Vec<KeyValue>, g: &GenAiCompletion) {
    attributes.push(KeyValue::new(
        genai_keys::OPERATION_NAME,
        g.route.operation.as_str(),
    ));
    attributes.push(KeyValue::new(
        genai_keys::PROVIDER_NAME,
        g.route.provider.as_str(),
    ));
    if let Some(model) = &g.request.model {
        attributes.push(KeyValue::new(genai_keys::REQUEST_MODEL, model.clone()));
    }
    if let Some(model) = &g.usage.response_model {
        attributes.push(KeyValue::new(genai_keys::RESPONSE_MODEL, model.clone()));
    }
    if let Some(tokens) = g.usage.input_tokens {
        attributes.push(KeyValue::new(genai_keys::USAGE_INPUT_TOKENS, tokens as i64));
    }
    if let Some(tokens) = g.usage.output_tokens {
        attributes.push(KeyValue::new(
            genai_keys::USAGE_OUTPUT_TOKENS,
            tokens as i64,
        ));
    }
    if g.route.operation != Operation::Embeddings {
        attributes.push(KeyValue::new(
            genai_keys::RESPONSE_TOOL_CALLS,
            g.usage.tool_calls.count as i64,
        ));
    }
    if !g.usage.finish_reasons.is_empty() {
        let reasons: Vec<StringValue> = g
            .usage
            .finish_reasons
            .iter()
            .map(|r| StringValue::from(r.clone()))
            .collect();
        attributes.push(KeyValue::new(
            genai_keys::RESPONSE_FINISH_REASONS,
            Value::Array(Array::String(reasons)),
        ));
    }
}

/// The captured content, on the server span (the exchange as the agent saw
/// it), as JSON strings: the Rust SDK has no structured attribute values.
fn content_attributes(attributes: &mut Vec<KeyValue>, g: &GenAiCompletion) {
    let directions = [
        (
            g.input.as_ref(),
            genai_keys::INPUT_MESSAGES,
            genai_keys::INPUT_TRUNCATED,
        ),
        (
            g.usage.output.as_ref(),
            genai_keys::OUTPUT_MESSAGES,
            genai_keys::OUTPUT_TRUNCATED,
        ),
    ];
    for (rendered, messages, truncated) in directions {
        let Some(rendered) = rendered else {
            continue;
        };
        if let Some(system) = &rendered.system_instructions {
            attributes.push(KeyValue::new(
                genai_keys::SYSTEM_INSTRUCTIONS,
                system.clone(),
            ));
        }
        if let Some(json) = &rendered.messages {
            attributes.push(KeyValue::new(messages, json.clone()));
        }
        if rendered.truncated {
            attributes.push(KeyValue::new(truncated, true));
        }
    }
}
