//! Reports failed exchanges to Sentry: one event per qualifying completion
//! (status in `report_status`, or an upstream failure), and optionally a
//! share of all exchanges as transactions carrying the OTLP trace id.
//! Both name the trace only when it was exported (sampled, or kept by the
//! `outcome` sampler), so no Sentry link leads to a missing trace.
//!
//! Events are built already redacted; the client's `before_send` scrubs them
//! again, so no path can skip redaction. Capturing only queues: sending
//! happens on the transport's own thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::header::HOST;
use http::HeaderName;
use sentry::protocol::{self, Context, Event, Exception, Level, TraceContext, Transaction, User};

use crate::config::{Config, StatusRange};
use crate::error::{ErrorSide, ProxyErrorKind};
use crate::exchange::Sink;
use crate::exchange::{Completion, Outcome};
use crate::redact::Redactor;
use crate::telemetry::SentryClient;

pub struct SentrySink {
    client: Arc<SentryClient>,
    redactor: Arc<Redactor>,
    report_status: Vec<StatusRange>,
    user_header: Option<HeaderName>,
    traces_sample_rate: f64,
    upstream: String,
    /// `sentry.include_content`: captured GenAI content goes on events.
    include_content: bool,
}

impl SentrySink {
    pub fn new(config: &Config, client: Arc<SentryClient>, redactor: Arc<Redactor>) -> Self {
        Self {
            client,
            redactor,
            report_status: config.sentry.report_status.clone(),
            user_header: config.sentry.user_header.as_ref().map(|h| h.0.clone()),
            traces_sample_rate: config.sentry.traces_sample_rate,
            upstream: config.upstream.url.to_string(),
            include_content: config.sentry.include_content,
        }
    }

    /// Reported: a configured status, or a failure on the upstream side.
    /// Never a client that left, nor a request shed for overload: those come
    /// in floods exactly when Sentry can help least, and the metrics count them.
    fn qualifies(&self, c: &Completion) -> bool {
        let kind = c.error_kind();
        if kind == Some(ProxyErrorKind::Overloaded) {
            return false;
        }
        let upstream_failure = kind.is_some_and(|k| k.side() == ErrorSide::Upstream);
        let reported_status = c.outcome != Outcome::ClientAbort
            && self.report_status.iter().any(|r| r.contains(c.status));
        upstream_failure || reported_status
    }

    fn event(&self, c: &Completion) -> Event<'static> {
        let e = &c.exchange;
        let method = e.known_method.label();
        let handler = &*e.handler.name;
        let mut event = Event {
            level: Level::Error,
            message: Some(format!("HTTP {} {method} {handler}", c.status)),
            logger: Some("otel-sidecar".to_owned()),
            fingerprint: vec![format!("{method} {handler} {}", c.status).into()].into(),
            tags: self.tags(c),
            request: Some(self.request(c)),
            user: self.user(c),
            ..Event::default()
        };
        if let Some(kind) = c.error_kind() {
            event.exception = vec![Exception {
                ty: kind.as_str().to_owned(),
                value: c.error_detail.clone(),
                module: Some("otel_sidecar::proxy".to_owned()),
                ..Exception::default()
            }]
            .into();
        }
        event.extra.insert(
            "duration_ms".into(),
            (c.duration.as_secs_f64() * 1e3).into(),
        );
        if let Some(status) = c.upstream_status {
            event.extra.insert("upstream_status".into(), status.into());
        }
        if self.include_content {
            add_content(&mut event, c);
        }
        // Only an exported trace: a link to a trace the sampler dropped leads nowhere.
        if let Some(trace) = e.trace.as_ref().filter(|t| t.is_sampled()) {
            event.contexts.insert(
                "trace".into(),
                Context::Trace(Box::new(trace_context(trace, "http.server"))),
            );
        }
        event
    }

    fn tags(&self, c: &Completion) -> BTreeMap<String, String> {
        let e = &c.exchange;
        let mut tags = BTreeMap::new();
        tags.insert(
            "correlation_id".to_owned(),
            e.correlation_id.as_str().to_owned(),
        );
        tags.insert("http.method".to_owned(), e.known_method.label().to_owned());
        tags.insert("http.status_code".to_owned(), c.status.to_string());
        tags.insert("handler".to_owned(), e.handler.name.to_string());
        tags.insert("upstream".to_owned(), self.upstream.clone());
        if let Some(kind) = c.error_kind() {
            tags.insert("error.type".to_owned(), kind.as_str().to_owned());
        }
        tags
    }

    /// The client's request: URL with secret query values redacted and no
    /// credentials, headers filtered; never cookies, bodies or the client IP.
    fn request(&self, c: &Completion) -> protocol::Request {
        let e = &c.exchange;
        let headers = e.request_headers.as_deref();
        let host = headers
            .and_then(|h| h.get(HOST))
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.contains('@'))
            .unwrap_or("localhost");
        let target = self.redactor.target(e.target.as_str());
        protocol::Request {
            url: format!("{}://{host}{target}", e.client.scheme())
                .parse()
                .ok(),
            method: Some(e.known_method.label().to_owned()),
            query_string: e
                .target
                .query()
                .map(|q| self.redactor.query(q).into_owned()),
            headers: headers
                .map(|h| self.redactor.headers(h).into_iter().collect())
                .unwrap_or_default(),
            ..protocol::Request::default()
        }
    }

    fn user(&self, c: &Completion) -> Option<User> {
        let name = self.user_header.as_ref()?;
        let value = c
            .exchange
            .request_headers
            .as_ref()?
            .get(name)?
            .to_str()
            .ok()?;
        Some(User {
            id: Some(value.to_owned()),
            ..User::default()
        })
    }

    /// A transaction for the exchange, for teams that use Sentry alone for latency.
    fn transaction(&self, c: &Completion) -> Transaction<'static> {
        let e = &c.exchange;
        let end = SystemTime::now();
        let start = end.checked_sub(c.duration).unwrap_or(end);
        let mut transaction = Transaction {
            name: Some(format!("{} {}", e.known_method.label(), e.handler.name)),
            start_timestamp: start,
            timestamp: Some(end),
            tags: self.tags(c),
            request: Some(self.request(c)),
            user: self.user(c),
            ..Transaction::default()
        };
        if let Some(trace) = &e.trace {
            let mut context = trace_context(trace, "http.server");
            context.status = Some(span_status(c.status));
            transaction
                .contexts
                .insert("trace".into(), Context::Trace(Box::new(context)));
            if let (Some(_), Some(upstream)) = (&trace.client, c.upstream_duration) {
                transaction.spans.push(protocol::Span {
                    span_id: trace.client_span_id().to_bytes().into(),
                    trace_id: trace.trace_id().to_bytes().into(),
                    parent_span_id: Some(trace.span_id().to_bytes().into()),
                    op: Some("http.client".to_owned()),
                    description: Some(format!("{} {}", e.known_method.label(), self.upstream)),
                    start_timestamp: end.checked_sub(upstream).unwrap_or(start),
                    timestamp: Some(end),
                    status: c.upstream_status.map(span_status),
                    ..protocol::Span::default()
                });
            }
        }
        transaction
    }

    /// The same share of traces as a ratio sampler: decided by the trace id,
    /// so every service sampling by trace id keeps the same traces.
    fn sample_transaction(&self, c: &Completion) -> bool {
        if self.traces_sample_rate <= 0.0 {
            return false;
        }
        let Some(trace) = &c.exchange.trace else {
            return rand_unit() < self.traces_sample_rate;
        };
        // A transaction names its trace id; only an exported trace's.
        if !trace.is_sampled() {
            return false;
        }
        let bytes = trace.trace_id().to_bytes();
        let low = u64::from_be_bytes(bytes[8..].try_into().expect("a trace id has 16 bytes"));
        (low >> 11) as f64 / (1u64 << 53) as f64 <= self.traces_sample_rate
    }
}

impl Sink for SentrySink {
    fn record(&self, c: &Completion) {
        if self.qualifies(c) {
            self.client.client().capture_event(self.event(c), None);
        }
        if self.sample_transaction(c) {
            let mut transaction = self.transaction(c);
            self.redactor.scrub_transaction(&mut transaction);
            self.client.client().send_envelope(transaction.into());
        }
    }
}

/// The captured GenAI content (already redacted), under the span
/// attributes' names, when `sentry.include_content` is on.
fn add_content(event: &mut Event<'static>, c: &Completion) {
    let Some(genai) = &c.genai else {
        return;
    };
    let input = genai.input.as_ref();
    let output = genai.usage.output.as_ref();
    let values = [
        (
            "gen_ai.system_instructions",
            input.and_then(|r| r.system_instructions.as_ref()),
        ),
        (
            "gen_ai.input.messages",
            input.and_then(|r| r.messages.as_ref()),
        ),
        (
            "gen_ai.output.messages",
            output.and_then(|r| r.messages.as_ref()),
        ),
    ];
    for (key, value) in values {
        if let Some(json) = value {
            event.extra.insert(key.into(), json.clone().into());
        }
    }
}

fn trace_context(trace: &crate::context::ExchangeTrace, op: &str) -> TraceContext {
    TraceContext {
        trace_id: trace.trace_id().to_bytes().into(),
        span_id: trace.span_id().to_bytes().into(),
        op: Some(op.to_owned()),
        ..TraceContext::default()
    }
}

fn span_status(status: u16) -> protocol::SpanStatus {
    use protocol::SpanStatus::*;
    match status {
        0..=399 => Ok,
        400 => InvalidArgument,
        401 => Unauthenticated,
        403 => PermissionDenied,
        404 => NotFound,
        409 => AlreadyExists,
        429 => ResourceExhausted,
        499 => Cancelled,
        402..=498 => FailedPrecondition,
        501 => Unimplemented,
        503 => Unavailable,
        504 => DeadlineExceeded,
        _ => InternalError,
    }
}

/// A uniform number in [0, 1) for exchanges without a trace id.
fn rand_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}
