//! Zipkin B3 propagation (github.com/openzipkin/b3-propagation): the single
//! `b3` header and the multiple `X-B3-*` headers, read strictly and written
//! as Zipkin's own tracers write them.
//!
//! Read:
//! - ids are lower-case hex: a trace id of 32 or 16 digits (a 64-bit id is
//!   the low half of a 128-bit one, the high half zero), a span id of 16;
//!   all-zero ids are invalid. A parent span id, when sent, must be 16 hex
//!   digits (zero is tolerated: some tracers send it for a root) and is not
//!   used: the caller's span id is this hop's parent.
//! - the sampling state: `1` accept, `0` deny, `d` debug (single header);
//!   `X-B3-Sampled: 1|0` (and the legacy `true|false` the spec lets a
//!   lenient reader accept), `X-B3-Flags: 1` debug, any other flags value
//!   ignored as the spec says. Absent is "defer": this hop decides.
//! - a sampling state alone (`b3: 0`, `X-B3-Sampled: 0` without ids) is a
//!   decision for the trace this hop starts, not a context.
//! - of repeated headers the first value wins, as the spec says; anything
//!   malformed (an empty header, `-` as an id, a third field that is not a
//!   sampling state) makes the whole encoding invalid.
//!
//! Written: the trace id as 16 digits when its high half is zero (the
//! 64-bit id a Zipkin client sent comes back as it sent it), else 32;
//! debug as `d` / `X-B3-Flags: 1` without `X-B3-Sampled`, as the spec asks.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use super::hex::{hex_into, lower_hex_u128, lower_hex_u64, trim_ows};

pub static B3: HeaderName = HeaderName::from_static("b3");
pub static X_B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub static X_B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub static X_B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub static X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub static X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// The longest `b3`: `{32}-{16}-{1}-{16}`.
const SINGLE_MAX: usize = 32 + 1 + 16 + 2 + 1 + 16;

/// B3's sampling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// No decision: the receiver decides.
    Defer,
    Deny,
    Accept,
    /// A forced accept, kept on every span of the trace.
    Debug,
}

impl Sampling {
    /// The caller's decision, `None` when it left it to this hop.
    pub fn sampled(self) -> Option<bool> {
        match self {
            Sampling::Defer => None,
            Sampling::Deny => Some(false),
            Sampling::Accept | Sampling::Debug => Some(true),
        }
    }
}

/// What one B3 encoding of a request said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The caller's span, to continue.
    Span {
        trace_id: TraceId,
        span_id: SpanId,
        sampling: Sampling,
    },
    /// A sampling decision without ids, for the trace this hop starts.
    Decision(Sampling),
}

impl Received {
    pub fn sampling(&self) -> Sampling {
        match *self {
            Received::Span { sampling, .. } | Received::Decision(sampling) => sampling,
        }
    }

    /// The caller's span as a remote parent: sampled flag for accept and
    /// debug; never the random flag, which B3 does not carry.
    pub fn parent(&self) -> Option<SpanContext> {
        match *self {
            Received::Span {
                trace_id,
                span_id,
                sampling,
            } => {
                let flags = if sampling.sampled() == Some(true) {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                };
                Some(SpanContext::new(
                    trace_id,
                    span_id,
                    flags,
                    true,
                    TraceState::default(),
                ))
            }
            Received::Decision(_) => None,
        }
    }
}

/// The single `b3` header (its first value), when present and valid.
pub fn extract_single(headers: &HeaderMap) -> Option<(Received, HeaderValue)> {
    let value = headers.get(&B3)?;
    Some((parse_single(value.as_bytes())?, value.clone()))
}

/// `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`, or a sampling state alone.
pub fn parse_single(raw: &[u8]) -> Option<Received> {
    let v = trim_ows(raw);
    if v.len() == 1 {
        return single_sampling(v).map(Received::Decision);
    }
    if v.len() > SINGLE_MAX {
        return None;
    }
    let mut fields = v.split(|b| *b == b'-');
    let trace_id = trace_id(fields.next()?)?;
    let span_id = span_id(fields.next()?)?;
    let sampling = match fields.next() {
        None => Sampling::Defer,
        Some(field) => single_sampling(field)?,
    };
    if let Some(parent) = fields.next() {
        parent_span_id(parent)?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Received::Span {
        trace_id,
        span_id,
        sampling,
    })
}

/// A sampling state of the single header; defer is its absence, not a value.
fn single_sampling(field: &[u8]) -> Option<Sampling> {
    match field {
        b"0" => Some(Sampling::Deny),
        b"1" => Some(Sampling::Accept),
        b"d" => Some(Sampling::Debug),
        _ => None,
    }
}

/// The `X-B3-*` headers of a valid multiple-header encoding, first values
/// only: what passes through when tracing is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultiHeaders {
    trace_id: Option<HeaderValue>,
    span_id: Option<HeaderValue>,
    parent_span_id: Option<HeaderValue>,
    sampled: Option<HeaderValue>,
    /// Only `1` (debug): other values mean nothing and are not passed on.
    flags: Option<HeaderValue>,
}

impl MultiHeaders {
    /// Writes these headers (after [`remove`] took the client's away).
    pub fn write(self, headers: &mut HeaderMap) {
        let pairs = [
            (&X_B3_TRACE_ID, self.trace_id),
            (&X_B3_SPAN_ID, self.span_id),
            (&X_B3_PARENT_SPAN_ID, self.parent_span_id),
            (&X_B3_SAMPLED, self.sampled),
            (&X_B3_FLAGS, self.flags),
        ];
        for (name, value) in pairs {
            if let Some(value) = value {
                headers.insert(name, value);
            }
        }
    }
}

/// The multiple-header encoding, when present and valid.
pub fn extract_multi(headers: &HeaderMap) -> Option<(Received, MultiHeaders)> {
    let trace = headers.get(&X_B3_TRACE_ID);
    let span = headers.get(&X_B3_SPAN_ID);
    let parent = headers.get(&X_B3_PARENT_SPAN_ID);
    let sampled = headers.get(&X_B3_SAMPLED);
    let flags = headers
        .get(&X_B3_FLAGS)
        .filter(|v| trim_ows(v.as_bytes()) == b"1");
    let sampling = match sampled.map(|v| trim_ows(v.as_bytes())) {
        None => Sampling::Defer,
        Some(b"1" | b"true") => Sampling::Accept,
        Some(b"0" | b"false") => Sampling::Deny,
        Some(_) => return None,
    };
    // Debug implies accept, whatever `X-B3-Sampled` says.
    let sampling = if flags.is_some() {
        Sampling::Debug
    } else {
        sampling
    };
    let received = match (trace, span) {
        (Some(trace), Some(span)) => {
            if let Some(parent) = parent {
                parent_span_id(trim_ows(parent.as_bytes()))?;
            }
            Received::Span {
                trace_id: trace_id(trim_ows(trace.as_bytes()))?,
                span_id: span_id(trim_ows(span.as_bytes()))?,
                sampling,
            }
        }
        (None, None) if parent.is_none() && sampling != Sampling::Defer => {
            Received::Decision(sampling)
        }
        _ => return None,
    };
    let as_received = MultiHeaders {
        trace_id: trace.cloned(),
        span_id: span.cloned(),
        parent_span_id: parent.cloned(),
        sampled: sampled.cloned(),
        flags: flags.cloned(),
    };
    Some((received, as_received))
}

fn trace_id(field: &[u8]) -> Option<TraceId> {
    if field.len() != 16 && field.len() != 32 {
        return None;
    }
    let id = lower_hex_u128(field)?;
    (id != 0).then(|| TraceId::from(id))
}

fn span_id(field: &[u8]) -> Option<SpanId> {
    let id = parent_span_id(field)?;
    (id != 0).then(|| SpanId::from(id))
}

fn parent_span_id(field: &[u8]) -> Option<u64> {
    if field.len() != 16 {
        return None;
    }
    lower_hex_u64(field)
}

/// Removes every B3 header of the encodings named, before the proxy writes its own.
pub fn remove(headers: &mut HeaderMap, single: bool, multi: bool) {
    if single {
        headers.remove(&B3);
    }
    if multi {
        for name in [
            &X_B3_TRACE_ID,
            &X_B3_SPAN_ID,
            &X_B3_PARENT_SPAN_ID,
            &X_B3_SAMPLED,
            &X_B3_FLAGS,
        ] {
            headers.remove(name);
        }
    }
}

/// The span the upstream call is, as B3 tells it.
#[derive(Debug, Clone, Copy)]
pub struct Outbound {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    /// Accept, deny or debug: this hop has decided.
    pub sampling: Sampling,
}

impl Outbound {
    /// The ids as hex: the trace id in 16 digits when its high half is zero.
    fn ids(&self) -> ([u8; 32], usize, [u8; 16], Option<[u8; 16]>) {
        let bytes = self.trace_id.to_bytes();
        let mut trace = [0u8; 32];
        let trace_len = if bytes[..8] == [0; 8] {
            hex_into(&mut trace[..16], &bytes[8..]);
            16
        } else {
            hex_into(&mut trace, &bytes);
            32
        };
        let mut span = [0u8; 16];
        hex_into(&mut span, &self.span_id.to_bytes());
        let parent = self.parent_span_id.map(|p| {
            let mut out = [0u8; 16];
            hex_into(&mut out, &p.to_bytes());
            out
        });
        (trace, trace_len, span, parent)
    }

    /// `b3: {trace}-{span}-{1|0|d}[-{parent}]`.
    pub fn single(&self) -> HeaderValue {
        let (trace, trace_len, span, parent) = self.ids();
        let mut buf = [0u8; SINGLE_MAX];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        put(&trace[..trace_len]);
        put(b"-");
        put(&span);
        put(match self.sampling {
            Sampling::Debug => b"-d",
            Sampling::Accept => b"-1",
            Sampling::Deny | Sampling::Defer => b"-0",
        });
        if let Some(parent) = &parent {
            put(b"-");
            put(parent);
        }
        HeaderValue::from_bytes(&buf[..len]).expect("hex digits and dashes")
    }

    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId` and
    /// `X-B3-Sampled`, or `X-B3-Flags: 1` for debug.
    pub fn multi(&self) -> MultiHeaders {
        let (trace, trace_len, span, parent) = self.ids();
        let hex = |bytes: &[u8]| HeaderValue::from_bytes(bytes).expect("hex digits");
        let (sampled, flags) = match self.sampling {
            Sampling::Debug => (None, Some(HeaderValue::from_static("1"))),
            Sampling::Accept => (Some(HeaderValue::from_static("1")), None),
            Sampling::Deny | Sampling::Defer => (Some(HeaderValue::from_static("0")), None),
        };
        MultiHeaders {
            trace_id: Some(hex(&trace[..trace_len])),
            span_id: Some(hex(&span)),
            parent_span_id: parent.as_ref().map(|p| hex(p)),
            sampled,
            flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE_128: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const TRACE_64: &str = "80f198ee56343ba8";
    const SPAN: &str = "e457b5a2e4d86bd1";
    const PARENT: &str = "05e3ac9a4f6e3b90";

    fn span(trace: &str, sampling: Sampling) -> Received {
        Received::Span {
            trace_id: TraceId::from(u128::from_str_radix(trace, 16).unwrap()),
            span_id: SpanId::from(u64::from_str_radix(SPAN, 16).unwrap()),
            sampling,
        }
    }

    fn single(value: &str) -> Option<Received> {
        parse_single(value.as_bytes())
    }

    /// The examples of the B3 specification's single-header section.
    #[test]
    fn single_header_examples_of_the_spec() {
        assert_eq!(
            single(&format!("{TRACE_128}-{SPAN}-1-{PARENT}")),
            Some(span(TRACE_128, Sampling::Accept))
        );
        assert_eq!(
            single(&format!("{TRACE_128}-{SPAN}-1")),
            Some(span(TRACE_128, Sampling::Accept))
        );
        assert_eq!(
            single(&format!("{TRACE_128}-{SPAN}-d")),
            Some(span(TRACE_128, Sampling::Debug))
        );
        assert_eq!(
            single(&format!("{TRACE_128}-{SPAN}")),
            Some(span(TRACE_128, Sampling::Defer))
        );
        assert_eq!(
            single(&format!("{TRACE_64}-{SPAN}-0-{PARENT}")),
            Some(span(TRACE_64, Sampling::Deny))
        );
        assert_eq!(single("0"), Some(Received::Decision(Sampling::Deny)));
        assert_eq!(single("1"), Some(Received::Decision(Sampling::Accept)));
        assert_eq!(single("d"), Some(Received::Decision(Sampling::Debug)));
    }

    #[test]
    fn a_64_bit_trace_id_is_the_low_half() {
        let parent = single(&format!("{TRACE_64}-{SPAN}-1"))
            .unwrap()
            .parent()
            .unwrap();
        assert_eq!(
            parent.trace_id().to_string(),
            format!("0000000000000000{TRACE_64}")
        );
        assert_eq!(parent.span_id().to_string(), SPAN);
        assert!(parent.is_sampled() && parent.is_remote());
        assert_eq!(
            parent.trace_flags() & crate::context::trace_context::RANDOM,
            TraceFlags::default()
        );
    }

    #[test]
    fn malformed_single_headers_are_invalid() {
        for bad in [
            String::new(),
            "-".into(),
            "2".into(),
            "true".into(),
            "00".into(),
            TRACE_128.into(),
            format!("{TRACE_128}-"),
            format!("{TRACE_128}-{SPAN}-"),
            format!("{TRACE_128}-{SPAN}-2"),
            format!("{TRACE_128}-{SPAN}-true"),
            format!("{TRACE_128}-{SPAN}-{PARENT}"),
            format!("{TRACE_128}-{SPAN}-1-"),
            format!("{TRACE_128}-{SPAN}-1--"),
            format!("{TRACE_128}-{SPAN}-1-{PARENT}-1"),
            format!("{TRACE_128}-{SPAN}-1-05e3ac9a4f6e3b9"),
            format!("{TRACE_128}-{SPAN}-1-{PARENT}0"),
            format!("{}-{SPAN}-1", TRACE_128.to_uppercase()),
            format!("{TRACE_128}-{}-1", SPAN.to_uppercase()),
            format!("{}-{SPAN}-1", &TRACE_128[..31]),
            format!("{}-{SPAN}-1", &TRACE_128[..24]),
            format!("{TRACE_128}0-{SPAN}-1"),
            format!("{TRACE_128}-{}-1", &SPAN[..15]),
            format!("{}-{SPAN}-1", "0".repeat(32)),
            format!("{}-{SPAN}-1", "0".repeat(16)),
            format!("{TRACE_128}-0000000000000000-1"),
            format!("{TRACE_128}-{SPAN}-1-{PARENT}-{PARENT}"),
            format!("{TRACE_128}_{SPAN}-1"),
        ] {
            assert_eq!(single(&bad), None, "{bad:?} accepted");
        }
        // A zero parent is tolerated (some tracers send it for a root).
        assert!(single(&format!("{TRACE_128}-{SPAN}-1-0000000000000000")).is_some());
        assert!(single(&format!(" {TRACE_128}-{SPAN}-1 ")).is_some());
    }

    fn multi(pairs: &[(&str, &str)]) -> Option<Received> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        extract_multi(&h).map(|(r, _)| r)
    }

    /// The multiple-header encoding, as Zipkin's tracers (Brave) and Envoy
    /// send it: `X-B3-*` in any case, 64 or 128-bit trace ids.
    #[test]
    fn multiple_headers_as_zipkin_and_envoy_send_them() {
        let envoy = [
            ("x-b3-traceid", TRACE_64),
            ("x-b3-spanid", SPAN),
            ("x-b3-parentspanid", PARENT),
            ("x-b3-sampled", "1"),
        ];
        assert_eq!(multi(&envoy), Some(span(TRACE_64, Sampling::Accept)));
        let brave = [
            ("X-B3-TraceId", TRACE_128),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "0"),
        ];
        assert_eq!(multi(&brave), Some(span(TRACE_128, Sampling::Deny)));
        let debug = [
            ("X-B3-TraceId", TRACE_128),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Flags", "1"),
        ];
        assert_eq!(multi(&debug), Some(span(TRACE_128, Sampling::Debug)));
        let deferred = [("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN)];
        assert_eq!(multi(&deferred), Some(span(TRACE_128, Sampling::Defer)));
        let legacy = [
            ("X-B3-TraceId", TRACE_128),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "true"),
        ];
        assert_eq!(multi(&legacy), Some(span(TRACE_128, Sampling::Accept)));
        let ignored_flags = [
            ("X-B3-TraceId", TRACE_128),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "0"),
            ("X-B3-Flags", "0"),
        ];
        assert_eq!(multi(&ignored_flags), Some(span(TRACE_128, Sampling::Deny)));
        // The first value wins.
        let repeated = [
            ("X-B3-TraceId", TRACE_128),
            ("X-B3-TraceId", "bad"),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "1"),
            ("X-B3-Sampled", "0"),
        ];
        assert_eq!(multi(&repeated), Some(span(TRACE_128, Sampling::Accept)));
    }

    #[test]
    fn a_sampling_state_alone_is_a_decision() {
        assert_eq!(
            multi(&[("X-B3-Sampled", "0")]),
            Some(Received::Decision(Sampling::Deny))
        );
        assert_eq!(
            multi(&[("X-B3-Sampled", "1")]),
            Some(Received::Decision(Sampling::Accept))
        );
        assert_eq!(
            multi(&[("X-B3-Flags", "1")]),
            Some(Received::Decision(Sampling::Debug))
        );
        assert_eq!(multi(&[("X-B3-Flags", "0")]), None);
        assert_eq!(multi(&[]), None);
    }

    #[test]
    fn malformed_multiple_headers_are_invalid() {
        let ok = |extra: (&'static str, &'static str)| {
            let mut pairs = vec![("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN)];
            pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(extra.0));
            pairs.push(extra);
            pairs
        };
        for bad in [
            ok(("X-B3-Sampled", "")),
            ok(("X-B3-Sampled", "yes")),
            ok(("X-B3-Sampled", "d")),
            ok(("X-B3-ParentSpanId", "-")),
            ok(("X-B3-ParentSpanId", "")),
            ok(("X-B3-TraceId", "")),
            ok(("X-B3-TraceId", "80F198EE56343BA864FE8B2A57D3EFF7")),
            ok(("X-B3-TraceId", "00000000000000000000000000000000")),
            ok(("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff")),
            ok(("X-B3-SpanId", "0000000000000000")),
            ok(("X-B3-SpanId", "e457b5a2e4d86bd")),
            vec![("X-B3-TraceId", TRACE_128)],
            vec![("X-B3-SpanId", SPAN), ("X-B3-Sampled", "1")],
            vec![("X-B3-ParentSpanId", PARENT), ("X-B3-Sampled", "1")],
        ] {
            assert_eq!(multi(&bad), None, "{bad:?} accepted");
        }
    }

    fn outbound(trace: u128, sampling: Sampling, parent: Option<u64>) -> Outbound {
        Outbound {
            trace_id: TraceId::from(trace),
            span_id: SpanId::from(0xe457_b5a2_e4d8_6bd1_u64),
            parent_span_id: parent.map(SpanId::from),
            sampling,
        }
    }

    #[test]
    fn written_as_zipkin_writes_it() {
        let t128 = u128::from_str_radix(TRACE_128, 16).unwrap();
        let t64 = u128::from_str_radix(TRACE_64, 16).unwrap();
        let p = Some(0x05e3_ac9a_4f6e_3b90);
        assert_eq!(
            outbound(t128, Sampling::Accept, p).single(),
            format!("{TRACE_128}-{SPAN}-1-{PARENT}")
        );
        assert_eq!(
            outbound(t64, Sampling::Deny, None).single(),
            format!("{TRACE_64}-{SPAN}-0")
        );
        assert_eq!(
            outbound(t128, Sampling::Debug, p).single(),
            format!("{TRACE_128}-{SPAN}-d-{PARENT}")
        );
        let mut h = HeaderMap::new();
        outbound(t64, Sampling::Accept, p).multi().write(&mut h);
        assert_eq!(h["x-b3-traceid"], TRACE_64);
        assert_eq!(h["x-b3-spanid"], SPAN);
        assert_eq!(h["x-b3-parentspanid"], PARENT);
        assert_eq!(h["x-b3-sampled"], "1");
        assert!(h.get("x-b3-flags").is_none());
        let mut h = HeaderMap::new();
        outbound(t128, Sampling::Debug, None).multi().write(&mut h);
        assert_eq!(h["x-b3-traceid"], TRACE_128);
        assert_eq!(h["x-b3-flags"], "1");
        assert!(h.get("x-b3-sampled").is_none(), "debug implies accept");
        assert!(h.get("x-b3-parentspanid").is_none());
    }

    proptest::proptest! {
        /// What is written reads back as the same span and decision.
        #[test]
        fn written_headers_read_back(trace in 1u128.., low in 1u64.., span in 1u64.., parent in proptest::option::of(1u64..), sampling in 0usize..3, short in proptest::bool::ANY) {
            let trace = if short { u128::from(low) } else { trace };
            let sampling = [Sampling::Deny, Sampling::Accept, Sampling::Debug][sampling];
            let out = Outbound { trace_id: TraceId::from(trace), span_id: SpanId::from(span), parent_span_id: parent.map(SpanId::from), sampling };
            let expected = Received::Span { trace_id: TraceId::from(trace), span_id: SpanId::from(span), sampling };
            proptest::prop_assert_eq!(parse_single(out.single().as_bytes()), Some(expected));
            let mut h = HeaderMap::new();
            out.multi().write(&mut h);
            proptest::prop_assert_eq!(extract_multi(&h).map(|(r, _)| r), Some(expected));
        }

        /// Any bytes: no panic, and what is accepted is a valid context.
        #[test]
        fn any_single_header_is_safe(value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            if let Some(received) = parse_single(&value) {
                if let Some(parent) = received.parent() {
                    proptest::prop_assert!(parent.is_valid());
                }
            }
        }
    }
}
