//! What the GenAI response tap costs per streamed chunk, with content
//! capture off and on: an OpenAI SSE chat stream and an Ollama NDJSON chat
//! stream of 4,000 tokens each, one chunk per frame as the servers send
//! them, through `ResponseTap` alone (no sockets).
//!
//! Run: `cargo run --release --example tap_cost`

use std::hint::black_box;
use std::time::Instant;

use otel_sidecar::config::Config;
use otel_sidecar::genai::{CaptureConfig, ResponseTap};

const TOKENS: usize = 4_000;
const ROUNDS: usize = 50;

fn openai() -> Vec<String> {
    (0..TOKENS)
        .map(|i| {
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" tok{i}\"}},\"finish_reason\":null}}]}}\n\n"
            )
        })
        .chain(["data: [DONE]\n\n".to_owned()])
        .collect()
}

fn ollama() -> Vec<String> {
    (0..TOKENS)
        .map(|i| {
            format!(
                "{{\"model\":\"llama3.2:1b\",\"created_at\":\"2026-11-26T12:00:00.000000Z\",\"message\":{{\"role\":\"assistant\",\"content\":\" tok{i}\"}},\"done\":false}}\n"
            )
        })
        .collect()
}

/// Nanoseconds per chunk, the best of `ROUNDS` runs.
fn per_chunk(ct: &str, chunks: &[String], capture: Option<&std::sync::Arc<CaptureConfig>>) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut tap = ResponseTap::new(Some(ct), true, capture.cloned());
        for chunk in chunks {
            tap.feed(black_box(chunk.as_bytes()));
        }
        black_box(tap.finish());
        best = best.min(start.elapsed().as_nanos() as f64 / chunks.len() as f64);
    }
    best
}

fn main() {
    let mut config = Config::default();
    config.genai.capture_content = true;
    let capture = CaptureConfig::from_config(&config)
        .expect("the default patterns compile")
        .expect("capture is on");
    println!("stream                   capture off   capture on (16 KiB)   ns per chunk");
    for (name, ct, chunks) in [
        ("openai sse", "text/event-stream", openai()),
        ("ollama ndjson", "application/x-ndjson", ollama()),
    ] {
        let off = per_chunk(ct, &chunks, None);
        let on = per_chunk(ct, &chunks, Some(&capture));
        println!("{name:<24} {off:>11.0} {on:>21.0}");
    }
}
