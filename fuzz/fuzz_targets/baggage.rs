//! W3C Baggage: whatever the client sends, the outbound header keeps the
//! spec's limits, carries our correlation id exactly once, and is valid.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use otel_sidecar::context::baggage::{merged, BAGGAGE};
use otel_sidecar::context::CorrelationId;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(&BAGGAGE, value);
        }
    }
    let (id, _) = CorrelationId::from_headers(
        &HeaderMap::new(),
        &[HeaderName::from_static("x-request-id")],
    );
    let out = merged(&headers, &id);
    let text = out.to_str().expect("outbound baggage is visible ASCII");
    assert!(text.len() <= 8192, "baggage of {} bytes", text.len());
    let members: Vec<&str> = text.split(',').collect();
    assert!(members.len() <= 64, "{} baggage members", members.len());
    let own = members
        .iter()
        .filter(|m| m.split('=').next().map(str::trim) == Some("correlation_id"))
        .count();
    assert_eq!(own, 1, "correlation_id must appear once: {text}");
    assert!(
        members.iter().all(|m| m.contains('=')),
        "a member without a value: {text}"
    );
});
