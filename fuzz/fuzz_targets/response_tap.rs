//! The GenAI response tap reads usage, tool calls and (with capture on)
//! content from NDJSON, SSE and JSON answers as they stream past: wherever
//! the chunks split, it must read the same, and capture within its cap.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use otel_sidecar::config::Config;
use otel_sidecar::genai::{CaptureConfig, GenAiUsage, ResponseTap};

/// Content capture with a small cap, so cuts happen often.
static CAPTURE: LazyLock<Arc<CaptureConfig>> = LazyLock::new(|| {
    let mut config = Config::default();
    config.genai.capture_content = true;
    config.genai.max_content_bytes.0 = 512;
    CaptureConfig::from_config(&config)
        .expect("the default patterns compile")
        .expect("capture is on")
});

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
    let capture = (seed & 8 != 0).then(|| CAPTURE.clone());
    let mut whole = ResponseTap::new(content_type, streaming, capture.clone());
    whole.feed(body);
    let mut split = ResponseTap::new(content_type, streaming, capture);
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
    if let Some(messages) = a.0.output.and_then(|o| o.messages) {
        assert!(messages.len() <= 512);
        assert!(serde_json::from_str::<serde_json::Value>(&messages).is_ok());
    }
});

/// The usage without its arrival instant, which differs between two runs.
fn comparable(mut usage: GenAiUsage) -> (GenAiUsage, bool) {
    let first_token = usage.first_token_at.take().is_some();
    (usage, first_token)
}
