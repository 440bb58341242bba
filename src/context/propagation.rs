//! The trace context formats the proxy reads and writes: `[tracing]
//! propagators` / `OTEL_PROPAGATORS` — `tracecontext` (W3C `traceparent`
//! and `tracestate`), `baggage` (W3C `baggage`), `b3` (the single `b3`
//! header) and `b3multi` (`X-B3-*`).
//!
//! Inbound, the configured formats are tried in their order and the first
//! that holds a valid context gives the remote parent; the decision is made
//! once, when the exchange starts ([`Propagators::inbound`]). Outbound, every
//! configured format is written ([`Propagators::outgoing`]) after the
//! client's headers of that format are removed, so the upstream never sees
//! a stale parent. The headers of a format that is not configured are not
//! the proxy's business: they travel like any other header.
//!
//! With tracing off the proxy is not part of the trace: each configured
//! format's headers pass through as received when valid, and are removed
//! when not — an invalid value is never forwarded.
//!
//! The correlation id rides in `baggage`, so without `baggage` the proxy
//! neither adds it nor rewrites a client's `baggage` header.

use http::header::{HeaderMap, HeaderValue};
use opentelemetry::trace::{SpanContext, TraceFlags, TraceId};

use super::b3::{self, MultiHeaders, Sampling};
use super::baggage::BAGGAGE;
use super::trace_context::{self, RANDOM, TRACEPARENT, TRACESTATE};
use super::ExchangeTrace;
use crate::config::Propagator;

/// A format that carries a trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    TraceContext,
    B3Single,
    B3Multi,
}

/// The configured propagators, built once per configuration (a reload
/// builds new ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Propagators {
    /// In the configured order, each once: the order decides which wins inbound.
    formats: Vec<Format>,
    baggage: bool,
}

impl Propagators {
    pub fn new(names: &[Propagator]) -> Self {
        let mut formats = Vec::new();
        let mut baggage = false;
        for name in names {
            let format = match name {
                Propagator::Tracecontext => Format::TraceContext,
                Propagator::B3 => Format::B3Single,
                Propagator::B3multi => Format::B3Multi,
                Propagator::Baggage => {
                    baggage = true;
                    continue;
                }
            };
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        Self { formats, baggage }
    }

    fn has(&self, format: Format) -> bool {
        self.formats.contains(&format)
    }

    /// Whether `baggage` (and with it the correlation id) is written upstream.
    pub fn baggage(&self) -> bool {
        self.baggage
    }

    /// The client's trace context, read once when the exchange starts;
    /// `None` (and no allocation) when no configured format holds anything valid.
    pub fn inbound(&self, headers: &HeaderMap) -> Option<Box<Inbound>> {
        let mut inbound: Option<Box<Inbound>> = None;
        // The W3C parent's trace and flags: whose tracestate it is, and its random flag.
        let mut w3c: Option<(TraceId, TraceFlags)> = None;
        // A B3 decision sent without ids: it decides a new trace if no format held a context.
        let mut decision: Option<Sampling> = None;
        for format in &self.formats {
            let received = match format {
                Format::TraceContext => {
                    let Some(parent) = trace_context::extract(headers) else {
                        continue;
                    };
                    let i = inbound.get_or_insert_with(Box::default);
                    i.traceparent = headers.get(&TRACEPARENT).cloned();
                    i.tracestate = trace_context::valid_tracestate(headers);
                    w3c = Some((parent.trace_id(), parent.trace_flags()));
                    if i.parent.is_none() {
                        i.sampled = Some(parent.is_sampled());
                        i.parent = Some(parent);
                    }
                    continue;
                }
                Format::B3Single => {
                    let Some((received, value)) = b3::extract_single(headers) else {
                        continue;
                    };
                    inbound.get_or_insert_with(Box::default).b3 = Some(value);
                    received
                }
                Format::B3Multi => {
                    let Some((received, values)) = b3::extract_multi(headers) else {
                        continue;
                    };
                    inbound.get_or_insert_with(Box::default).b3_multi = Some(values);
                    received
                }
            };
            let i = inbound.get_or_insert_with(Box::default);
            match received.parent() {
                Some(parent) if i.parent.is_none() => {
                    i.sampled = received.sampling().sampled();
                    i.debug = received.sampling() == Sampling::Debug;
                    i.parent = Some(parent);
                }
                Some(_) => {}
                None => {
                    decision.get_or_insert(received.sampling());
                }
            }
        }
        let i = inbound.as_deref_mut()?;
        match (&mut i.parent, decision) {
            (None, Some(sampling)) => {
                i.sampled = sampling.sampled();
                i.debug = sampling == Sampling::Debug;
            }
            (Some(parent), _) => {
                if let Some((w3c_trace, w3c_flags)) = w3c {
                    // The tracestate belongs to the traceparent's trace: it goes
                    // on only when that is the trace continued.
                    i.tracestate_continues = w3c_trace == parent.trace_id();
                    // B3 has no random flag; a traceparent of the same trace has.
                    if i.tracestate_continues && w3c_flags & RANDOM == RANDOM {
                        *parent = SpanContext::new(
                            parent.trace_id(),
                            parent.span_id(),
                            parent.trace_flags() | RANDOM,
                            true,
                            parent.trace_state().clone(),
                        );
                    }
                }
            }
            (None, None) => {}
        }
        inbound
    }

    /// The trace headers for the upstream request: from the exchange's
    /// trace when tracing is on, else the client's valid ones as received.
    /// `baggage` builds the `baggage` value; it is called only when
    /// `baggage` is configured.
    pub fn outgoing(
        &self,
        trace: Option<&ExchangeTrace>,
        inbound: Option<&Inbound>,
        baggage: impl FnOnce() -> HeaderValue,
    ) -> Outgoing {
        let mut out = Outgoing {
            tracecontext: self.has(Format::TraceContext),
            b3_single: self.has(Format::B3Single),
            b3_multi: self.has(Format::B3Multi),
            baggage: self.baggage.then(baggage),
            ..Outgoing::default()
        };
        match trace {
            Some(trace) => {
                let context = trace.upstream_context();
                if out.tracecontext {
                    out.traceparent = Some(trace_context::traceparent_value(&context));
                    out.tracestate = inbound
                        .filter(|i| i.tracestate_continues)
                        .and_then(|i| i.tracestate.clone());
                }
                if out.b3_single || out.b3_multi {
                    let debug = inbound.is_some_and(|i| i.debug);
                    let sampling = match (trace.upstream_sampled(), debug) {
                        (true, true) => Sampling::Debug,
                        (true, false) => Sampling::Accept,
                        (false, _) => Sampling::Deny,
                    };
                    let b3 = b3::Outbound {
                        trace_id: context.trace_id(),
                        span_id: context.span_id(),
                        parent_span_id: trace.upstream_parent(),
                        sampling,
                    };
                    out.b3 = out.b3_single.then(|| b3.single());
                    out.b3_values = out.b3_multi.then(|| b3.multi());
                }
            }
            None => {
                if let Some(i) = inbound {
                    out.traceparent = i.traceparent.clone();
                    out.tracestate = i.tracestate.clone();
                    out.b3 = i.b3.clone();
                    out.b3_values = i.b3_multi.clone();
                }
            }
        }
        out
    }
}

/// The client's trace context, decided once when the exchange starts.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// The remote parent: the caller's span from the first configured
    /// format that held a valid context.
    pub parent: Option<SpanContext>,
    /// The caller's sampling decision: the parent's (W3C flag, B3 state),
    /// or a B3 decision sent without ids; `None` when the caller left it to
    /// this hop (B3 without a sampling state).
    pub sampled: Option<bool>,
    /// B3 debug: the caller forces the trace, and the upstream is told so.
    pub debug: bool,
    /// The client's valid headers, per format, as received.
    traceparent: Option<HeaderValue>,
    tracestate: Option<Vec<HeaderValue>>,
    /// The valid traceparent is of the trace continued, so its tracestate goes on.
    tracestate_continues: bool,
    b3: Option<HeaderValue>,
    b3_multi: Option<MultiHeaders>,
}

/// The trace headers of one upstream request, decided before the request
/// is rewritten and written by [`Outgoing::write`].
#[derive(Debug, Default)]
pub struct Outgoing {
    tracecontext: bool,
    b3_single: bool,
    b3_multi: bool,
    traceparent: Option<HeaderValue>,
    tracestate: Option<Vec<HeaderValue>>,
    b3: Option<HeaderValue>,
    b3_values: Option<MultiHeaders>,
    baggage: Option<HeaderValue>,
}

impl Outgoing {
    /// Replaces the client's headers of every configured format with these;
    /// a format that is not configured is neither removed nor written.
    pub fn write(self, headers: &mut HeaderMap) {
        if self.tracecontext {
            headers.remove(&TRACEPARENT);
            headers.remove(&TRACESTATE);
            if let Some(traceparent) = self.traceparent {
                headers.insert(&TRACEPARENT, traceparent);
            }
            for value in self.tracestate.into_iter().flatten() {
                headers.append(&TRACESTATE, value);
            }
        }
        b3::remove(headers, self.b3_single, self.b3_multi);
        if let Some(b3) = self.b3.filter(|_| self.b3_single) {
            headers.insert(&b3::B3, b3);
        }
        if let Some(values) = self.b3_values.filter(|_| self.b3_multi) {
            values.write(headers);
        }
        if let Some(baggage) = self.baggage {
            headers.insert(&BAGGAGE, baggage);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::header::HeaderName;
    use opentelemetry::trace::SpanId;
    use opentelemetry_sdk::trace::Sampler;

    use super::*;
    use crate::config::{Config, Propagator as P};
    use crate::context::exchange_trace::{start_client, start_server, SpanFacts};
    use crate::telemetry::TracePipeline;

    const W3C_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const TRACEPARENT_01: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const B3_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const B3_SPAN: &str = "e457b5a2e4d86bd1";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn parent_of(propagators: &[P], pairs: &[(&str, &str)]) -> Option<(String, String, u8)> {
        let inbound = Propagators::new(propagators).inbound(&headers(pairs))?;
        let p = inbound.parent?;
        Some((
            p.trace_id().to_string(),
            p.span_id().to_string(),
            p.trace_flags().to_u8(),
        ))
    }

    #[test]
    fn names_become_formats_in_order_once() {
        let p = Propagators::new(&[P::B3multi, P::Baggage, P::Tracecontext, P::B3multi]);
        assert_eq!(p.formats, [Format::B3Multi, Format::TraceContext]);
        assert!(p.baggage());
        assert!(!Propagators::new(&[P::Tracecontext]).baggage());
        assert_eq!(Propagators::new(&[]), Propagators::default());
    }

    #[test]
    fn nothing_valid_reads_as_nothing() {
        let all = [P::Tracecontext, P::B3, P::B3multi, P::Baggage];
        assert!(Propagators::new(&all).inbound(&HeaderMap::new()).is_none());
        let invalid = headers(&[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            ),
            ("tracestate", "foo=1"),
            ("b3", "nonsense"),
            ("x-b3-traceid", B3_TRACE),
        ]);
        assert!(Propagators::new(&all).inbound(&invalid).is_none());
        // A format that is not configured is not read.
        let b3 = headers(&[("b3", &format!("{B3_TRACE}-{B3_SPAN}-1"))]);
        assert!(Propagators::new(&[P::Tracecontext]).inbound(&b3).is_none());
        assert!(Propagators::new(&[]).inbound(&b3).is_none());
    }

    #[test]
    fn the_first_configured_format_with_a_valid_context_wins() {
        let both = [
            ("traceparent", TRACEPARENT_01),
            ("b3", &format!("{B3_TRACE}-{B3_SPAN}-0") as &str),
        ];
        let w3c = (W3C_TRACE.to_owned(), "b7ad6b7169203331".to_owned(), 0x01);
        let b3 = (B3_TRACE.to_owned(), B3_SPAN.to_owned(), 0x00);
        assert_eq!(
            parent_of(&[P::Tracecontext, P::B3], &both),
            Some(w3c.clone())
        );
        assert_eq!(
            parent_of(&[P::B3, P::Tracecontext], &both),
            Some(b3.clone())
        );
        // An invalid first format gives way to the next.
        let broken_w3c = [
            (
                "traceparent",
                "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            ),
            ("b3", &format!("{B3_TRACE}-{B3_SPAN}-0") as &str),
        ];
        assert_eq!(parent_of(&[P::Tracecontext, P::B3], &broken_w3c), Some(b3));
        let multi = [
            ("x-b3-traceid", "80f198ee56343ba8"),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-sampled", "1"),
            ("b3", "80f198ee56343ba8-"),
        ];
        assert_eq!(
            parent_of(&[P::B3, P::B3multi], &multi),
            Some((
                "000000000000000080f198ee56343ba8".into(),
                B3_SPAN.into(),
                0x01
            ))
        );
    }

    #[test]
    fn a_b3_decision_without_ids_decides_a_new_trace_unless_a_context_is_there() {
        let p = Propagators::new(&[P::B3, P::Tracecontext]);
        let deny = p.inbound(&headers(&[("b3", "0")])).unwrap();
        assert!(deny.parent.is_none());
        assert_eq!((deny.sampled, deny.debug), (Some(false), false));
        let debug = p.inbound(&headers(&[("b3", "d")])).unwrap();
        assert_eq!((debug.sampled, debug.debug), (Some(true), true));
        // A later format's context beats an earlier one's bare decision.
        let both = p
            .inbound(&headers(&[("b3", "0"), ("traceparent", TRACEPARENT_01)]))
            .unwrap();
        assert_eq!(both.parent.unwrap().trace_id().to_string(), W3C_TRACE);
        assert_eq!(both.sampled, Some(true));
        // B3 without a sampling state defers the decision to this hop.
        let deferred = p
            .inbound(&headers(&[("b3", &format!("{B3_TRACE}-{B3_SPAN}"))]))
            .unwrap();
        assert!(deferred.parent.is_some());
        assert_eq!(deferred.sampled, None);
    }

    #[test]
    fn tracestate_and_the_random_flag_go_with_their_traceparent() {
        let p = Propagators::new(&[P::B3, P::Tracecontext]);
        let random = "00-80f198ee56343ba864fe8b2a57d3eff7-b7ad6b7169203331-02";
        let same_trace = headers(&[
            ("b3", &format!("{B3_TRACE}-{B3_SPAN}-1")),
            ("traceparent", random),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let inbound = p.inbound(&same_trace).unwrap();
        let parent = inbound.parent.as_ref().unwrap();
        assert_eq!(parent.span_id().to_string(), B3_SPAN, "b3 came first");
        assert_eq!(
            parent.trace_flags().to_u8(),
            0x03,
            "sampled by b3, random by W3C"
        );
        assert!(inbound.tracestate_continues);

        let other_trace = headers(&[
            ("b3", &format!("{B3_TRACE}-{B3_SPAN}-1")),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let inbound = p.inbound(&other_trace).unwrap();
        assert_eq!(inbound.parent.as_ref().unwrap().trace_flags().to_u8(), 0x01);
        assert!(!inbound.tracestate_continues);
    }

    fn written(
        p: &Propagators,
        inbound: Option<&Inbound>,
        trace: Option<&ExchangeTrace>,
        client: &HeaderMap,
    ) -> HeaderMap {
        let mut out = client.clone();
        p.outgoing(trace, inbound, || {
            HeaderValue::from_static("correlation_id=c-1")
        })
        .write(&mut out);
        out
    }

    fn values(map: &HeaderMap, name: &str) -> Vec<String> {
        map.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn tracing_off_passes_each_valid_format_through_and_drops_the_invalid() {
        let all = Propagators::new(&[P::Tracecontext, P::B3, P::B3multi, P::Baggage]);
        let client = headers(&[
            ("traceparent", TRACEPARENT_01),
            ("tracestate", "rojo=1,rojo=2"),
            ("b3", "0"),
            ("x-b3-traceid", "80f198ee56343ba8"),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
            ("x-b3-sampled", "1"),
            ("x-b3-sampled", "0"),
            ("x-b3-flags", "0"),
            ("baggage", "k=v"),
        ]);
        let inbound = all.inbound(&client);
        let out = written(&all, inbound.as_deref(), None, &client);
        assert_eq!(values(&out, "traceparent"), [TRACEPARENT_01]);
        assert_eq!(values(&out, "tracestate"), ["rojo=1"]);
        assert_eq!(values(&out, "b3"), ["0"]);
        assert_eq!(values(&out, "x-b3-traceid"), ["80f198ee56343ba8"]);
        assert_eq!(values(&out, "x-b3-parentspanid"), ["05e3ac9a4f6e3b90"]);
        assert_eq!(values(&out, "x-b3-sampled"), ["1"], "the first value only");
        assert!(
            values(&out, "x-b3-flags").is_empty(),
            "a meaningless flags value"
        );
        assert_eq!(values(&out, "baggage"), ["correlation_id=c-1"]);

        let bad = headers(&[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            ),
            ("tracestate", "foo=1"),
            ("b3", "1-2-3"),
            ("x-b3-traceid", B3_TRACE),
            ("x-b3-spanid", "-"),
            ("x-b3-sampled", "1"),
        ]);
        let out = written(&all, all.inbound(&bad).as_deref(), None, &bad);
        for name in [
            "traceparent",
            "tracestate",
            "b3",
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-sampled",
        ] {
            assert!(values(&out, name).is_empty(), "invalid {name} forwarded");
        }
    }

    #[test]
    fn formats_not_configured_are_left_alone() {
        let w3c_only = Propagators::new(&[P::Tracecontext]);
        let client = headers(&[
            ("b3", "garbage"),
            ("x-b3-sampled", "maybe"),
            ("baggage", "anything goes"),
            ("traceparent", "invalid"),
        ]);
        let out = written(
            &w3c_only,
            w3c_only.inbound(&client).as_deref(),
            None,
            &client,
        );
        assert_eq!(values(&out, "b3"), ["garbage"]);
        assert_eq!(values(&out, "x-b3-sampled"), ["maybe"]);
        assert_eq!(
            values(&out, "baggage"),
            ["anything goes"],
            "no baggage propagator: not rewritten"
        );
        assert!(values(&out, "traceparent").is_empty());
        let none = Propagators::new(&[]);
        let out = written(&none, none.inbound(&client).as_deref(), None, &client);
        assert_eq!(out, client);
    }

    fn pipeline() -> TracePipeline {
        TracePipeline::discarding(&Config::default())
    }

    fn facts() -> SpanFacts {
        SpanFacts {
            start: std::time::SystemTime::now(),
            user_agent: None,
            server_address: None,
        }
    }

    /// The exchange's trace as the proxy starts it, with the upstream call begun.
    fn traced(
        traces: &TracePipeline,
        sampler: &Sampler,
        p: &Propagators,
        client: &HeaderMap,
    ) -> (Option<Box<Inbound>>, ExchangeTrace) {
        let inbound = p.inbound(client);
        let mut trace = start_server(traces, sampler, None, inbound.as_deref(), "/x", facts);
        start_client(&mut trace, Arc::from("upstream"), 80, &String::new);
        (inbound, trace)
    }

    fn parent_based() -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }

    #[tokio::test]
    async fn new_traces_carry_the_random_flag_and_continued_ones_keep_theirs() {
        let traces = pipeline();
        let p = Propagators::new(&[P::Tracecontext]);
        let (_, new) = traced(&traces, &parent_based(), &p, &HeaderMap::new());
        assert_eq!(new.flags().to_u8(), 0x03);
        assert_eq!(new.server_context().trace_flags().to_u8(), 0x03);
        let tp = |flags: &str| {
            headers(&[(
                "traceparent",
                &format!("00-{W3C_TRACE}-b7ad6b7169203331-{flags}"),
            )])
        };
        for (inbound, expected, sampled) in [
            ("00", 0x00, false),
            ("01", 0x01, true),
            ("02", 0x02, false),
            ("03", 0x03, true),
            ("ff", 0x03, true),
        ] {
            let (_, trace) = traced(&traces, &parent_based(), &p, &tp(inbound));
            assert_eq!(trace.trace_id().to_string(), W3C_TRACE);
            assert_eq!(trace.flags().to_u8(), expected, "inbound flags {inbound}");
            assert_eq!(
                trace.is_sampled(),
                sampled,
                "the sampler reads the sampled bit of {inbound}"
            );
        }
        // An always-on sampler samples an unsampled parent; the random bit stays.
        let (_, trace) = traced(&traces, &Sampler::AlwaysOn, &p, &tp("02"));
        assert_eq!(trace.flags().to_u8(), 0x03);
        // B3 carries no random flag.
        let b3 = Propagators::new(&[P::B3]);
        let (_, trace) = traced(
            &traces,
            &parent_based(),
            &b3,
            &headers(&[("b3", &format!("{B3_TRACE}-{B3_SPAN}-1"))]),
        );
        assert_eq!(trace.flags().to_u8(), 0x01);
    }

    #[tokio::test]
    async fn b3_decisions_reach_parent_based_samplers_only() {
        let traces = pipeline();
        let b3 = Propagators::new(&[P::B3]);
        let deny = headers(&[("b3", "0")]);
        let accept = headers(&[("b3", "1")]);
        let never = Sampler::ParentBased(Box::new(Sampler::AlwaysOff));
        assert!(!traced(&traces, &parent_based(), &b3, &deny).1.is_sampled());
        assert!(traced(&traces, &never, &b3, &accept).1.is_sampled());
        assert!(
            traced(&traces, &Sampler::AlwaysOn, &b3, &deny)
                .1
                .is_sampled(),
            "always_on says otherwise"
        );
        // A deferred B3 context: the ids continue, the root sampler decides.
        let deferred = headers(&[("b3", &format!("{B3_TRACE}-{B3_SPAN}"))]);
        let (_, trace) = traced(&traces, &parent_based(), &b3, &deferred);
        assert_eq!(trace.trace_id().to_string(), B3_TRACE);
        assert!(trace.is_sampled());
        assert!(!traced(&traces, &never, &b3, &deferred).1.is_sampled());
        // A denied B3 context: a parent-based sampler drops it.
        let denied = headers(&[("b3", &format!("{B3_TRACE}-{B3_SPAN}-0"))]);
        assert!(!traced(&traces, &parent_based(), &b3, &denied)
            .1
            .is_sampled());
    }

    #[tokio::test]
    async fn every_configured_format_names_the_client_span_as_parent() {
        let traces = pipeline();
        let all = Propagators::new(&[P::B3multi, P::B3, P::Tracecontext, P::Baggage]);
        let client = headers(&[
            ("x-b3-traceid", "80f198ee56343ba8"),
            ("x-b3-spanid", B3_SPAN),
            ("x-b3-flags", "1"),
            ("b3", "0"),
            ("traceparent", TRACEPARENT_01),
            ("tracestate", "congo=1"),
            ("baggage", "k=v"),
        ]);
        let (inbound, trace) = traced(&traces, &parent_based(), &all, &client);
        let out = written(&all, inbound.as_deref(), Some(&trace), &client);
        let span = trace.client_span_id().to_string();
        let server = trace.span_id().to_string();
        assert_eq!(trace.trace_id(), TraceId::from(0x80f1_98ee_5634_3ba8_u128));
        assert_eq!(
            values(&out, "traceparent"),
            [format!("00-000000000000000080f198ee56343ba8-{span}-01")]
        );
        assert!(
            values(&out, "tracestate").is_empty(),
            "tracestate of another trace"
        );
        assert_eq!(
            values(&out, "b3"),
            [format!("80f198ee56343ba8-{span}-d-{server}")]
        );
        assert_eq!(values(&out, "x-b3-traceid"), ["80f198ee56343ba8"]);
        assert_eq!(values(&out, "x-b3-spanid"), [span.as_str()]);
        assert_eq!(values(&out, "x-b3-parentspanid"), [server.as_str()]);
        assert_eq!(values(&out, "x-b3-flags"), ["1"]);
        assert!(values(&out, "x-b3-sampled").is_empty());
        assert_eq!(values(&out, "baggage"), ["correlation_id=c-1"]);
        assert_eq!(trace.parent, Some(SpanId::from(0xe457_b5a2_e4d8_6bd1_u64)));

        // A sampled-out new trace: ids are still propagated, with the deny.
        let never = Sampler::AlwaysOff;
        let (inbound, trace) = traced(&traces, &never, &all, &HeaderMap::new());
        let out = written(&all, inbound.as_deref(), Some(&trace), &HeaderMap::new());
        let (id, span) = (
            trace.trace_id().to_string(),
            trace.client_span_id().to_string(),
        );
        assert_eq!(values(&out, "traceparent"), [format!("00-{id}-{span}-02")]);
        assert_eq!(
            values(&out, "b3"),
            [format!("{id}-{span}-0-{}", trace.span_id())]
        );
        assert_eq!(values(&out, "x-b3-sampled"), ["0"]);
        assert_eq!(trace.flags() & TraceFlags::SAMPLED, TraceFlags::default());
    }
}
