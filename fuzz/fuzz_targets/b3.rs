//! Zipkin B3: any `b3` header and any set of `X-B3-*` headers. What is
//! accepted is a valid context, and the proxy's own encoding of it reads
//! back as the same span and sampling state.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use otel_sidecar::context::b3::{
    extract_multi, parse_single, Outbound, Received, Sampling, X_B3_FLAGS, X_B3_PARENT_SPAN_ID,
    X_B3_SAMPLED, X_B3_SPAN_ID, X_B3_TRACE_ID,
};

fn round_trip(received: Received) {
    let Received::Span {
        trace_id,
        span_id,
        sampling,
    } = received
    else {
        assert_ne!(received.sampling(), Sampling::Defer, "a decision decides");
        return;
    };
    assert!(received.parent().expect("a span is a parent").is_valid());
    // The proxy always decides before writing: defer goes out as deny.
    let sampling = if sampling == Sampling::Defer {
        Sampling::Deny
    } else {
        sampling
    };
    let out = Outbound {
        trace_id,
        span_id,
        parent_span_id: None,
        sampling,
    };
    let expected = Received::Span {
        trace_id,
        span_id,
        sampling,
    };
    assert_eq!(parse_single(out.single().as_bytes()), Some(expected));
    let mut headers = HeaderMap::new();
    out.multi().write(&mut headers);
    assert_eq!(extract_multi(&headers).map(|(r, _)| r), Some(expected));
}

fuzz_target!(|data: &[u8]| {
    // First line: `b3`; the next five: X-B3-TraceId, -SpanId,
    // -ParentSpanId, -Sampled, -Flags (an empty line leaves one out).
    let mut lines = data.split(|b| *b == b'\n');
    if let Some(received) = lines.next().and_then(parse_single) {
        round_trip(received);
    }
    let mut headers = HeaderMap::new();
    let names = [
        &X_B3_TRACE_ID,
        &X_B3_SPAN_ID,
        &X_B3_PARENT_SPAN_ID,
        &X_B3_SAMPLED,
        &X_B3_FLAGS,
    ];
    for (name, line) in names.into_iter().zip(lines) {
        if line.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(name, value);
        }
    }
    if let Some((received, _)) = extract_multi(&headers) {
        round_trip(received);
    }
});
