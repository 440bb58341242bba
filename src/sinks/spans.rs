//! Ends the exchange's spans from its [`Completion`]: status codes, `error.type`
//! and span status per the HTTP semantic conventions. The server span ends
//! when the response body ends, so a 40 s stream is a 40 s span.

use std::time::SystemTime;

use opentelemetry::trace::{SpanRef, Status, TraceContextExt};
use opentelemetry::{Array, KeyValue, StringValue, Value};

use super::Sink;
use crate::exchange::{Completion, GenAiCompletion, Outcome};

/// `error.type` of a client that left before the response ended.
pub const CLIENT_ABORT: &str = "client_abort";

pub struct SpanSink;

impl Sink for SpanSink {
    fn record(&self, c: &Completion) {
        let Some(trace) = &c.exchange.trace else {
            return;
        };
        let end = SystemTime::now();

        if let Some(client) = &trace.client {
            let span = client.span();
            if span.is_recording() {
                let error = match (c.error_kind(), c.upstream_status) {
                    (Some(kind), _) if kind.side() == crate::proxy::ErrorSide::Upstream => {
                        Some(kind.as_str().to_owned())
                    }
                    (_, Some(status)) if status >= 400 => Some(status.to_string()),
                    _ => None,
                };
                if let Some(status) = c.upstream_status {
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status),
                    ));
                }
                if let Some(error) = error {
                    span.set_status(Status::error(error.clone()));
                    span.set_attribute(KeyValue::new("error.type", error));
                }
            }
            if let Some(genai) = &c.genai {
                genai_attributes(&span, genai, end.checked_sub(c.duration));
            }
            span.end_with_timestamp(end);
        }

        let span = trace.server.span();
        if span.is_recording() {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(c.status),
            ));
            let error = match (c.outcome, c.error_kind()) {
                (Outcome::ClientAbort, _) => Some(CLIENT_ABORT.to_owned()),
                (_, Some(kind)) => Some(kind.as_str().to_owned()),
                _ if c.status >= 500 => Some(c.status.to_string()),
                _ => None,
            };
            if let Some(error) = error {
                span.set_status(Status::error(error.clone()));
                span.set_attribute(KeyValue::new("error.type", error));
            }
        }
        span.end_with_timestamp(end);
    }
}

/// The GenAI conventions' name and attributes for the client span, and an
/// event at the first token.
fn genai_attributes(span: &SpanRef<'_>, g: &GenAiCompletion, start: Option<SystemTime>) {
    if !span.is_recording() {
        return;
    }
    let operation = g.route.operation.as_str();
    span.update_name(format!(
        "{operation} {}",
        g.request.model.as_deref().unwrap_or("unknown")
    ));
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", operation),
        KeyValue::new("gen_ai.provider.name", g.route.provider.as_str()),
    ];
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
    span.set_attributes(attributes);
    if let (Some(start), Some(ttft)) = (start, g.time_to_first_token) {
        span.add_event_with_timestamp("gen_ai.first_token", start + ttft, Vec::new());
    }
}
