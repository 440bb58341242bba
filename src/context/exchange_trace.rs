//! The exchange's trace: ids and the sampling decision made at arrival, and
//! for a sampled exchange the few facts its spans need beyond the exchange's.
//! Under the `outcome` sampler the decision is only begun at arrival and
//! settled when the exchange completes (`exchange::sampling`); such an
//! exchange keeps its facts until then, since it may yet be kept. The spans
//! themselves (SERVER, and its CLIENT child around the upstream call) are
//! built in one go when the exchange completes (`sinks::spans`): nothing is
//! locked, shared or allocated per span while the request is in flight, and
//! an unsampled exchange pays for its ids and nothing else.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::Sampler;

use super::propagation::Inbound;
use super::trace_context::RANDOM;
use crate::telemetry::TracePipeline;

/// The trace of one exchange.
#[derive(Debug, Clone)]
pub struct ExchangeTrace {
    trace_id: TraceId,
    server_span_id: SpanId,
    client_span_id: SpanId,
    /// The inbound parent (a remote span), when a configured format held one.
    pub parent: Option<SpanId>,
    /// Whether the spans are exported. Under the `outcome` sampler, until
    /// the exchange settles, what arrival alone decided.
    sampled: bool,
    /// The flag propagated upstream: `sampled`, except under the `outcome`
    /// sampler with `upstream_sampled = "always"`.
    upstream_sampled: bool,
    /// Under the `outcome` sampler until the exchange settles: what arrival knew.
    pending: Option<Arrival>,
    /// W3C Level 2's random trace-id flag: set when the proxy made the
    /// trace id, as received when it continues a trace.
    random: bool,
    /// Facts for the spans that the exchange does not hold; only when sampled.
    pub facts: Option<Box<SpanFacts>>,
    /// When the upstream call began and its redacted URL, once it began.
    pub client: Option<ClientCall>,
}

/// What the `outcome` sampler knows about an exchange at arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The inbound parent was sampled and `honour_parent` is on.
    ParentSampled,
    /// The trace id falls in the ratio.
    InRatio,
    /// Only the outcome can keep it.
    Undecided,
}

/// The arrival half of the `outcome` sampler's settings.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeArrival {
    pub honour_parent: bool,
    /// Send sampled=1 upstream whatever arrival decided.
    pub upstream_always: bool,
}

/// What the SERVER span records beyond the exchange's own facts (method,
/// route, path, protocol, correlation id), which it reads from the exchange.
#[derive(Debug, Clone)]
pub struct SpanFacts {
    /// The request's arrival on the wall clock, the span's start.
    pub start: SystemTime,
    pub user_agent: Option<String>,
    /// The `Host` the client addressed, without its port.
    pub server_address: Option<String>,
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

    /// Whether the spans are exported; final once the exchange completed.
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The sampled flag propagated upstream.
    pub fn upstream_sampled(&self) -> bool {
        self.upstream_sampled
    }

    /// Under the `outcome` sampler, before the exchange settles: what arrival knew.
    pub fn pending(&self) -> Option<Arrival> {
        self.pending
    }

    /// Ends the `outcome` sampler's decision: the spans are exported or not.
    pub fn settle(&mut self, keep: bool) {
        self.sampled = keep;
        self.pending = None;
    }

    /// Whether the facts for spans are gathered: the spans may be exported.
    fn may_export(&self) -> bool {
        self.sampled || self.pending.is_some()
    }

    /// The sampled and random flags of the exchange's spans.
    pub fn flags(&self) -> TraceFlags {
        self.flags_with(self.sampled)
    }

    fn flags_with(&self, sampled: bool) -> TraceFlags {
        let sampled = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        if self.random {
            sampled | RANDOM
        } else {
            sampled
        }
    }

    /// The parent of the span [`upstream_context`](Self::upstream_context)
    /// names: the server span once the call began, else the inbound parent.
    pub fn upstream_parent(&self) -> Option<SpanId> {
        if self.client.is_some() {
            Some(self.server_span_id)
        } else {
            self.parent
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
            self.flags_with(self.upstream_sampled),
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

/// Decides the exchange's trace at arrival, continuing the client's
/// context (`inbound`) when it has one; `facts` is read only for an
/// exchange whose spans may be exported. With `outcome`, `sampler` is its
/// trace-id ratio and the decision waits for the completion.
pub fn start_server(
    traces: &TracePipeline,
    sampler: &Sampler,
    outcome: Option<&OutcomeArrival>,
    inbound: Option<&Inbound>,
    route: &str,
    facts: impl FnOnce() -> SpanFacts,
) -> ExchangeTrace {
    let parent = inbound.and_then(|i| i.parent.as_ref());
    let caller_sampled = inbound.and_then(|i| i.sampled);
    let decision = traces.decide(sampler, parent, caller_sampled, route);
    let pending = outcome.map(|o| {
        if o.honour_parent && caller_sampled == Some(true) {
            Arrival::ParentSampled
        } else if decision.sampled {
            Arrival::InRatio
        } else {
            Arrival::Undecided
        }
    });
    let sampled = pending.map_or(decision.sampled, |p| p != Arrival::Undecided);
    let mut trace = ExchangeTrace {
        trace_id: decision.trace_id,
        server_span_id: decision.span_id,
        client_span_id: traces.new_span_id(),
        parent: parent.map(|p| p.span_id()),
        sampled,
        upstream_sampled: sampled || outcome.is_some_and(|o| o.upstream_always),
        pending,
        // A new trace id comes from the pipeline's random generator.
        random: parent.is_none_or(|p| p.trace_flags() & RANDOM == RANDOM),
        facts: None,
        client: None,
    };
    if trace.may_export() {
        trace.facts = Some(Box::new(facts()));
    }
    trace
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
        url: trace.may_export().then(url),
        host,
        port,
        resends: Vec::new(),
    });
}
