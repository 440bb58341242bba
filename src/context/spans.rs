//! The exchange's trace: ids and the sampling decision made at arrival, and
//! for a sampled exchange the request facts its spans will need. The spans
//! themselves (SERVER, and its CLIENT child around the upstream call) are
//! built in one go when the exchange completes (`sinks::spans`): nothing is
//! locked, shared or allocated per span while the request is in flight, and
//! an unsampled exchange pays for its ids and nothing else.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Version};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use super::{trace_context, Handler};
use crate::telemetry::Tracing;

/// The trace of one exchange.
#[derive(Debug, Clone)]
pub struct ExchangeTrace {
    trace_id: TraceId,
    server_span_id: SpanId,
    client_span_id: SpanId,
    /// The inbound parent (a remote span), when the traceparent was valid.
    pub parent: Option<SpanId>,
    sampled: bool,
    /// Facts for the spans; present only when sampled.
    pub request: Option<Box<RequestAttributes>>,
    /// When the upstream call began and its redacted URL, once it began.
    pub client: Option<ClientCall>,
}

/// What the SERVER span records about the request.
#[derive(Debug, Clone)]
pub struct RequestAttributes {
    pub start: SystemTime,
    pub method: &'static str,
    pub route: Arc<str>,
    pub path: String,
    pub scheme: &'static str,
    pub protocol: &'static str,
    pub user_agent: Option<String>,
    pub server_address: Option<String>,
    pub correlation_id: String,
}

/// What the CLIENT span records about the upstream call.
#[derive(Debug, Clone)]
pub struct ClientCall {
    pub start: SystemTime,
    /// Present only when sampled: the upstream URL, query values redacted.
    pub url: Option<String>,
    pub host: Arc<str>,
    pub port: u16,
    /// Each time the request was sent again, and the failure before it.
    pub resends: Vec<Resend>,
}

/// One resend of the upstream request (`proxy::resend`).
#[derive(Debug, Clone)]
pub struct Resend {
    pub at: SystemTime,
    /// `error.type` of the attempt that failed.
    pub error: &'static str,
}

impl ExchangeTrace {
    /// The trace id, shown in logs and error bodies.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The server span's id: the exchange's own span in logs.
    pub fn span_id(&self) -> SpanId {
        self.server_span_id
    }

    /// The client span's id (the upstream's parent).
    pub fn client_span_id(&self) -> SpanId {
        self.client_span_id
    }

    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    fn flags(&self) -> TraceFlags {
        if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        }
    }

    /// The context to propagate upstream: the client span's once the call began.
    pub fn upstream_context(&self) -> SpanContext {
        let span = if self.client.is_some() {
            self.client_span_id
        } else {
            self.server_span_id
        };
        SpanContext::new(
            self.trace_id,
            span,
            self.flags(),
            false,
            TraceState::default(),
        )
    }

    /// The SERVER span's context.
    pub fn server_context(&self) -> SpanContext {
        SpanContext::new(
            self.trace_id,
            self.server_span_id,
            self.flags(),
            false,
            TraceState::default(),
        )
    }

    /// The CLIENT span's context.
    pub fn client_context(&self) -> SpanContext {
        SpanContext::new(
            self.trace_id,
            self.client_span_id,
            self.flags(),
            false,
            TraceState::default(),
        )
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

/// Decides the exchange's trace at arrival, continuing a valid inbound `traceparent`.
pub fn start_server(tracing: &Tracing, facts: &RequestFacts<'_>) -> ExchangeTrace {
    let parent = trace_context::extract(facts.headers);
    let decision = tracing.decide(parent.as_ref(), &facts.handler.name);
    let request = decision.sampled.then(|| {
        Box::new(RequestAttributes {
            start: facts.start,
            method: method_name(facts.method),
            route: facts.handler.name.clone(),
            path: facts.path.to_owned(),
            scheme: facts.scheme,
            protocol: protocol_version(facts.version),
            user_agent: facts
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            server_address: facts.host.map(str::to_owned),
            correlation_id: facts.correlation_id.to_owned(),
        })
    });
    ExchangeTrace {
        trace_id: decision.trace_id,
        server_span_id: decision.span_id,
        client_span_id: tracing.new_span_id(),
        parent: parent.map(|p| p.span_id()),
        sampled: decision.sampled,
        request,
        client: None,
    }
}

/// Marks the start of the upstream call; `url` builds the redacted upstream
/// URL and is called only for a sampled exchange.
pub fn start_client(
    trace: &mut ExchangeTrace,
    host: Arc<str>,
    port: u16,
    url: &dyn Fn() -> String,
) {
    trace.client = Some(ClientCall {
        start: SystemTime::now(),
        url: trace.sampled.then(url),
        host,
        port,
        resends: Vec::new(),
    });
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
