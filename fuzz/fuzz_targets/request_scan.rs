//! The GenAI request scanner reads `model` and `stream` from a body that
//! arrives in chunks: wherever the chunks split, it must read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otel_sidecar::genai::RequestScanner;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let mut whole = RequestScanner::default();
    whole.feed(body);
    let mut split = RequestScanner::default();
    for chunk in chunks(body, seed) {
        split.feed(chunk);
    }
    assert_eq!(whole.info(), split.info());
});

/// Splits `body` into pieces of 1..=seed%16+1 bytes, varied by position.
fn chunks(body: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0usize;
    while !rest.is_empty() {
        let size = 1 + (seed as usize + i * 7) % (seed as usize % 16 + 1);
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
        i += 1;
    }
    out
}
