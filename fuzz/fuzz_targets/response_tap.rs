//! The GenAI response tap reads usage from NDJSON, SSE and JSON answers as
//! they stream past: wherever the chunks split, it must read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otel_sidecar::genai::{GenAiUsage, ResponseTap};

const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/x-ndjson"),
    Some("text/event-stream; charset=utf-8"),
    Some("application/json"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[(seed & 3) as usize];
    let streaming = seed & 4 != 0;
    let mut whole = ResponseTap::new(content_type, streaming);
    whole.feed(body);
    let mut split = ResponseTap::new(content_type, streaming);
    let mut rest = body;
    let mut i = 0usize;
    while !rest.is_empty() {
        let size = 1 + (seed as usize >> 3).wrapping_add(i * 5) % 13;
        let (head, tail) = rest.split_at(size.min(rest.len()));
        split.feed(head);
        rest = tail;
        i += 1;
    }
    let (a, b) = (comparable(whole.finish()), comparable(split.finish()));
    assert_eq!(a, b);
});

/// The usage without its arrival instant, which differs between two runs.
fn comparable(mut usage: GenAiUsage) -> (GenAiUsage, bool) {
    let first_token = usage.first_token_at.take().is_some();
    (usage, first_token)
}
