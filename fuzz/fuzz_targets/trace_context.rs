//! W3C Trace Context: any traceparent/tracestate pair. What is accepted must
//! survive a round trip; what is forwarded must be within the spec's limits.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use otel_sidecar::context::trace_context::{
    extract, traceparent_value, valid_tracestate, TRACEPARENT, TRACESTATE,
};

fuzz_target!(|data: &[u8]| {
    // First line: traceparent; every further line: one tracestate header.
    let mut lines = data.split(|b| *b == b'\n');
    let mut headers = HeaderMap::new();
    if let Some(Ok(value)) = lines.next().map(HeaderValue::from_bytes) {
        headers.insert(&TRACEPARENT, value);
    }
    for line in lines {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(&TRACESTATE, value);
        }
    }

    let Some(context) = extract(&headers) else {
        return;
    };
    assert!(context.is_valid());
    let again = traceparent_value(&context);
    let mut echoed = HeaderMap::new();
    echoed.insert(&TRACEPARENT, again.clone());
    let parsed = extract(&echoed).expect("our own traceparent parses");
    assert_eq!(parsed.trace_id(), context.trace_id());
    assert_eq!(parsed.span_id(), context.span_id());
    assert_eq!(parsed.trace_flags(), context.trace_flags());
    assert_eq!(again.len(), 55);

    if let Some(states) = valid_tracestate(&headers) {
        let members: usize = states
            .iter()
            .map(|v| {
                v.as_bytes()
                    .split(|b| *b == b',')
                    .filter(|m| !m.trim_ascii().is_empty())
                    .count()
            })
            .sum();
        assert!(members <= 32, "{members} tracestate members forwarded");
        let mut keys: Vec<&[u8]> = states
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|m| !m.is_empty())
            .map(|m| m.split(|b| *b == b'=').next().unwrap_or_default())
            .collect();
        let forwarded = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), forwarded, "a tracestate key forwarded twice");
        for value in &states {
            assert!(
                value.to_str().is_ok(),
                "tracestate forwarded with non-ASCII bytes"
            );
        }
    }
});
