//! A mock Ollama on loopback, for trying otel-sidecar without a model.
//!
//! It speaks Ollama's native API (`/api/generate`, `/api/chat` as NDJSON
//! streams, `/api/embed`, `/api/tags`) and the OpenAI-compatible `/v1` API
//! (SSE streams with `stream_options.include_usage`), with deterministic
//! token counts.
//!
//! Run it, then the sidecar in front of it, then a client:
//!
//! ```text
//! cargo run --example mock_ollama -- 127.0.0.1:11434
//! cargo run --release -- --config sidecar.toml
//! curl -N localhost:8080/api/generate -d '{"model":"llama3.2:1b","prompt":"Why is the sky blue?"}'
//! ```

use std::time::Duration;

use otel_sidecar::mock_ollama::{MockOllama, MockOptions};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:11434".to_owned());
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let delay_ms = std::env::var("MOCK_TOKEN_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mock = MockOllama::start(
        addr,
        MockOptions {
            token_delay: Duration::from_millis(delay_ms),
            ..MockOptions::default()
        },
    )
    .await?;
    println!(
        "mock Ollama listening on {} ({delay_ms} ms per token); Ctrl-C stops it",
        mock.url()
    );
    tokio::signal::ctrl_c().await?;
    mock.stop();
    Ok(())
}
