//! The exchange's two spans: SERVER from the request's arrival, CLIENT (its
//! child) around the upstream call. Attributes are only built for spans the
//! sampler records; an unsampled exchange pays for ids and nothing else.

use std::time::SystemTime;

use http::{HeaderMap, Method, Version};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt, TraceId, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use super::{trace_context, Handler};

/// The spans of one exchange, held in OpenTelemetry contexts so they can be
/// ended through a shared reference at completion.
#[derive(Debug, Clone)]
pub struct ExchangeTrace {
    pub server: Context,
    pub client: Option<Context>,
}

impl ExchangeTrace {
    /// The trace id, shown in logs and error bodies.
    pub fn trace_id(&self) -> TraceId {
        self.server.span().span_context().trace_id()
    }

    /// The server span's id: the exchange's own span in logs.
    pub fn span_id(&self) -> SpanId {
        self.server.span().span_context().span_id()
    }

    pub fn is_sampled(&self) -> bool {
        self.server.span().span_context().is_sampled()
    }

    /// The context to propagate upstream: the client span's.
    pub fn upstream_context(&self) -> SpanContext {
        self.client
            .as_ref()
            .unwrap_or(&self.server)
            .span()
            .span_context()
            .clone()
    }
}

/// What the server span needs from the request.
pub struct RequestFacts<'a> {
    pub method: &'a Method,
    pub handler: &'a Handler,
    pub path: &'a str,
    pub scheme: &'static str,
    pub version: Version,
    pub headers: &'a HeaderMap,
    pub host: Option<&'a str>,
    pub correlation_id: &'a str,
    pub start: SystemTime,
}

/// Starts the SERVER span, continuing a valid inbound `traceparent`.
pub fn start_server(tracer: &SdkTracer, facts: &RequestFacts<'_>) -> ExchangeTrace {
    let parent = match trace_context::extract(facts.headers) {
        Some(remote) => Context::new().with_remote_span_context(remote),
        None => Context::new(),
    };
    let span = tracer
        .span_builder(format!(
            "{} {}",
            method_name(facts.method),
            facts.handler.name
        ))
        .with_kind(SpanKind::Server)
        .with_start_time(facts.start)
        .start_with_context(tracer, &parent);
    let server = parent.with_span(span);
    let span = server.span();
    if span.is_recording() {
        let mut attributes = vec![
            KeyValue::new("http.request.method", method_name(facts.method)),
            KeyValue::new("url.path", facts.path.to_owned()),
            KeyValue::new("url.scheme", facts.scheme),
            KeyValue::new("http.route", facts.handler.name.clone()),
            KeyValue::new("network.protocol.version", protocol_version(facts.version)),
            KeyValue::new("correlation_id", facts.correlation_id.to_owned()),
        ];
        if let Some(agent) = facts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
        }
        if let Some(host) = facts.host {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        span.set_attributes(attributes);
    }
    ExchangeTrace {
        server,
        client: None,
    }
}

/// What the client span needs from the upstream request.
pub struct UpstreamFacts<'a> {
    pub method: &'a Method,
    pub host: &'a str,
    pub port: u16,
    /// Builds the upstream URL with secret query values redacted; called only
    /// for a recorded span.
    pub url: &'a dyn Fn() -> String,
}

/// Starts the CLIENT span as a child of the server span.
pub fn start_client(tracer: &SdkTracer, trace: &mut ExchangeTrace, facts: UpstreamFacts<'_>) {
    let span = tracer
        .span_builder(method_name(facts.method))
        .with_kind(SpanKind::Client)
        .start_with_context(tracer, &trace.server);
    let client = trace.server.with_span(span);
    let span = client.span();
    if span.is_recording() {
        span.set_attributes([
            KeyValue::new("http.request.method", method_name(facts.method)),
            KeyValue::new("server.address", facts.host.to_owned()),
            KeyValue::new("server.port", i64::from(facts.port)),
            KeyValue::new("url.full", (facts.url)()),
        ]);
    }
    trace.client = Some(client);
}

/// The method as HTTP semantic conventions name it: standard methods as is,
/// anything else `_OTHER`, so a client cannot mint span names.
pub fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
