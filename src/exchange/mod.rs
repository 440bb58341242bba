//! One exchange: what is known when the request arrives ([`Exchange`]) and the
//! single record written when the response body ends ([`Completion`]).
//!
//! Every sink (metrics, spans, access log, Sentry) reads the same `Completion`,
//! so they cannot disagree about status, duration or size.

use std::time::{Duration, Instant};

use http::{Method, Version};

mod client;
mod log_ids;
mod names;
mod recorder;
mod request_stats;
mod sampling;

pub use client::ClientSide;
pub(crate) use log_ids::exchange_event;
pub use log_ids::LogIds;
pub use names::{protocol_log_name, protocol_semconv, KnownMethod};
pub use recorder::{Recorder, Recording, Sink};
pub use request_stats::RequestStats;
pub use sampling::OutcomeSampler;

use crate::context::propagation::Inbound;
use crate::context::{CorrelationId, ExchangeTrace, Handler};
use crate::error::ProxyErrorKind;
use crate::genai::{GenAiRoute, GenAiUsage, Rendered, RequestInfo};

/// Request-side context, built once in the listener's service and carried by
/// value into the response body. Later layers read it, never re-derive it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub correlation_id: CorrelationId,
    /// As received: the access log shows it.
    pub method: Method,
    /// Bounded: metrics, spans and Sentry name it.
    pub known_method: KnownMethod,
    pub handler: Handler,
    /// Path and query as received, for logs (redacted before writing).
    pub target: http::uri::PathAndQuery,
    pub version: Version,
    /// The client's address and its IP as text, from the connection.
    pub client: ClientSide,
    pub start: Instant,
    /// The client's valid trace context, read once for the span and for
    /// what is forwarded upstream.
    pub inbound: Option<Box<Inbound>>,
    /// The exchange's spans; `None` when tracing is off.
    pub trace: Option<ExchangeTrace>,
    /// The GenAI route, when the path is one and `[genai] enabled`.
    pub genai: Option<GenAiRoute>,
    /// The request's headers, kept only when Sentry may need them for an event.
    pub request_headers: Option<Box<http::HeaderMap>>,
}

impl Exchange {
    /// The ids its log lines carry.
    pub fn log_ids(&self) -> LogIds {
        LogIds {
            correlation_id: self.correlation_id.clone(),
            trace: self.trace.as_ref().map(|t| (t.trace_id(), t.span_id())),
        }
    }

    /// Trace and span id as hex, for log lines and error bodies.
    pub fn trace_ids(&self) -> Option<(String, String)> {
        use crate::context::trace_context::{span_id_hex, trace_id_hex};
        self.trace
            .as_ref()
            .map(|t| (trace_id_hex(t.trace_id()), span_id_hex(t.span_id())))
    }
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole response body reached the client.
    Complete,
    /// The client went away before the response ended (recorded as 499).
    ClientAbort,
    /// The proxy answered itself (502, 504, 413, 431, ...).
    ProxyError(ProxyErrorKind),
    /// The upstream failed after headers were sent; the stream was cut.
    ResponseBodyError(ProxyErrorKind),
}

/// Status recorded for a client that left before the response ended (nginx's convention).
pub const STATUS_CLIENT_CLOSED: u16 = 499;

/// Everything recorded about one finished exchange.
#[derive(Debug)]
pub struct Completion {
    pub exchange: Exchange,
    pub outcome: Outcome,
    /// The status sent to the client, or 499 when it left early.
    pub status: u16,
    /// Status the upstream answered with, if it answered.
    pub upstream_status: Option<u16>,
    /// From request start to response headers.
    pub first_byte: Option<Duration>,
    /// From sending upstream to the upstream's response headers.
    pub upstream_headers: Option<Duration>,
    /// From sending upstream to the end of the exchange (the upstream's body end).
    pub upstream_duration: Option<Duration>,
    /// From request start to the end of the response body.
    pub duration: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// GenAI usage, on GenAI routes.
    pub genai: Option<GenAiCompletion>,
    /// The failure and its causes, when the exchange failed.
    pub error_detail: Option<String>,
}

/// What a GenAI exchange asked for and got.
#[derive(Debug, Clone)]
pub struct GenAiCompletion {
    pub route: GenAiRoute,
    pub request: RequestInfo,
    pub usage: GenAiUsage,
    /// From request start to the first chunk with content.
    pub time_to_first_token: Option<Duration>,
    /// The request's captured system instructions and messages (the
    /// answer's are in `usage.output`), when content is captured.
    pub input: Option<Rendered>,
}

impl GenAiCompletion {
    pub fn new(route: GenAiRoute, request: RequestInfo, usage: GenAiUsage, start: Instant) -> Self {
        let time_to_first_token = usage
            .first_token_at
            .map(|at| at.saturating_duration_since(start));
        Self {
            route,
            request,
            usage,
            time_to_first_token,
            input: None,
        }
    }

    /// The model named in the request, else the one that answered.
    pub fn model(&self) -> Option<&str> {
        self.request
            .model
            .as_deref()
            .or(self.usage.response_model.as_deref())
    }
}

impl Completion {
    /// The kind of failure, if the exchange failed in the proxy or upstream.
    pub fn error_kind(&self) -> Option<ProxyErrorKind> {
        match self.outcome {
            Outcome::ProxyError(kind) | Outcome::ResponseBodyError(kind) => Some(kind),
            Outcome::Complete | Outcome::ClientAbort => None,
        }
    }
}
