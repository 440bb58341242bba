//! Correlation IDs: a valid inbound value is kept byte for byte, anything else
//! is replaced by a fresh UUID and reported, never passed on.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use otel_sidecar::context::correlation::is_valid;
use otel_sidecar::context::CorrelationId;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let name = HeaderName::from_static("x-request-id");
    let mut headers = HeaderMap::new();
    headers.insert(&name, value);
    let (id, rejected) = CorrelationId::from_headers(&headers, std::slice::from_ref(&name));
    if is_valid(data) {
        assert_eq!(id.as_str().as_bytes(), data);
        assert!(rejected.is_none());
    } else {
        assert_eq!(id.as_str().len(), 36, "a replacement is a hyphenated UUID");
        assert!(is_valid(id.as_str().as_bytes()));
        assert_eq!(rejected.map(|r| r.length), Some(data.len()));
    }
});
