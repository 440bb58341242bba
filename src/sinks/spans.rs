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

use crate::context::ExchangeTrace;
use crate::error::ErrorSide;
use crate::exchange::Sink;
use crate::exchange::{Completion, GenAiCompletion, Outcome};
use crate::telemetry::Tracing;

/// `error.type` of a client that left before the response ended.
pub const CLIENT_ABORT: &str = "client_abort";

pub struct SpanSink {
    tracing: Arc<Tracing>,
}

impl SpanSink {
    pub fn new(tracing: Arc<Tracing>) -> Self {
        Self { tracing }
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
            instrumentation_scope: self.tracing.scope().clone(),
        }
    }

    fn server_span(
        &self,
        c: &Completion,
        trace: &ExchangeTrace,
        end: SystemTime,
    ) -> Option<SpanData> {
        let request = trace.request.as_deref()?;
        let name = format!("{} {}", request.method, request.route);
        let mut span = self.span(trace, SpanKind::Server, name.into(), (request.start, end));
        let mut attributes = vec![
            KeyValue::new("http.request.method", request.method),
            KeyValue::new("url.path", request.path.clone()),
            KeyValue::new("url.scheme", request.scheme),
            KeyValue::new("http.route", request.route.clone()),
            KeyValue::new("network.protocol.version", request.protocol),
            KeyValue::new("correlation_id", request.correlation_id.clone()),
            KeyValue::new("http.response.status_code", i64::from(c.status)),
        ];
        if let Some(agent) = &request.user_agent {
            attributes.push(KeyValue::new("user_agent.original", agent.clone()));
        }
        if let Some(host) = &request.server_address {
            attributes.push(KeyValue::new("server.address", host.clone()));
        }
        let error = match (c.outcome, c.error_kind()) {
            (Outcome::ClientAbort, _) => Some(CLIENT_ABORT.to_owned()),
            (_, Some(kind)) => Some(kind.as_str().to_owned()),
            _ if c.status >= 500 => Some(c.status.to_string()),
            _ => None,
        };
        if let Some(error) = error {
            span.status = Status::error(error.clone());
            attributes.push(KeyValue::new("error.type", error));
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
        let request = trace.request.as_deref()?;
        let name: Cow<'static, str> = match &c.genai {
            Some(g) => format!(
                "{} {}",
                g.route.operation.as_str(),
                g.request.model.as_deref().unwrap_or("unknown")
            )
            .into(),
            None => request.method.into(),
        };
        let mut span = self.span(trace, SpanKind::Client, name, (call.start, end));
        let mut attributes = vec![
            KeyValue::new("http.request.method", request.method),
            KeyValue::new("server.address", call.host.clone()),
            KeyValue::new("server.port", i64::from(call.port)),
        ];
        if let Some(url) = &call.url {
            attributes.push(KeyValue::new("url.full", url.clone()));
        }
        if let Some(status) = c.upstream_status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
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
            attributes.push(KeyValue::new("error.type", error));
        }
        if !call.resends.is_empty() {
            attributes.push(KeyValue::new(
                "http.request.resend_count",
                call.resends.len() as i64,
            ));
            for resend in &call.resends {
                span.events.events.push(Event::new(
                    "http.request.resend",
                    resend.at,
                    vec![KeyValue::new("error.type", resend.error)],
                    0,
                ));
            }
        }
        if let Some(genai) = &c.genai {
            genai_attributes(&mut attributes, genai);
            if let Some(ttft) = genai.time_to_first_token {
                let at = request.start + ttft;
                span.events
                    .events
                    .push(Event::new("gen_ai.first_token", at, Vec::new(), 0));
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
            self.tracing.export(span);
        }
        if let Some(span) = self.server_span(c, trace, end) {
            self.tracing.export(span);
        }
    }
}

/// The GenAI conventions' attributes for the client span.
fn genai_attributes(attributes: &mut Vec<KeyValue>, g: &GenAiCompletion) {
    attributes.push(KeyValue::new(
        "gen_ai.operation.name",
        g.route.operation.as_str(),
    ));
    attributes.push(KeyValue::new(
        "gen_ai.provider.name",
        g.route.provider.as_str(),
    ));
    if let Some(model) = &g.request.model {
        attributes.push(KeyValue::new("gen_ai.request.model", model.clone()));
    }
    if let Some(model) = &g.usage.response_model {
        attributes.push(KeyValue::new("gen_ai.response.model", model.clone()));
    }
    if let Some(tokens) = g.usage.input_tokens {
        attributes.push(KeyValue::new("gen_ai.usage.input_tokens", tokens as i64));
    }
    if let Some(tokens) = g.usage.output_tokens {
        attributes.push(KeyValue::new("gen_ai.usage.output_tokens", tokens as i64));
    }
    if !g.usage.finish_reasons.is_empty() {
        let reasons: Vec<StringValue> = g
            .usage
            .finish_reasons
            .iter()
            .map(|r| StringValue::from(r.clone()))
            .collect();
        attributes.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(Array::String(reasons)),
        ));
    }
}
