//! The GenAI request scanner reads `model` and `stream` (and, capturing,
//! the messages) from a body that arrives in chunks: wherever the chunks
//! split, it must read the same, and capture within its cap.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use otel_sidecar::config::Config;
use otel_sidecar::genai::{CaptureConfig, RequestScanner};

/// Content capture with a small cap, so cuts happen often.
static CAPTURE: LazyLock<Arc<CaptureConfig>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.genai.capture_content = true;
    config.genai.max_content_bytes.0 = 512;
    CaptureConfig::from_config(&config)
        .expect("the default patterns compile")
        .expect("capture is on")
});

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let scanner = || match seed & 0x80 {
        0 => RequestScanner::default(),
        _ => RequestScanner::capturing(CAPTURE.clone()),
    };
    let mut whole = scanner();
    whole.feed(body);
    let mut split = scanner();
    for chunk in chunks(body, seed) {
        split.feed(chunk);
    }
    assert_eq!(whole.info(), split.info());
    let (a, b) = (whole.render_content(), split.render_content());
    assert_eq!(a, b);
    if let Some(input) = a {
        let size = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        assert!(size(&input.messages) + size(&input.system_instructions) <= 512);
    }
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
