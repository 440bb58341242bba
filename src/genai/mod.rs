//! GenAI telemetry read from the traffic as it passes: the request's `model`
//! and `stream` from the JSON body on its way upstream, and the response's
//! model, token usage, finish reasons and time to first token from the
//! NDJSON lines (Ollama), SSE events (OpenAI-compatible) or JSON body.
//!
//! Nothing here holds a frame or a line: one incremental JSON scanner
//! (`json_scan`) reads each frame's bytes as they pass and keeps a few
//! hundred bytes whatever the body's size. Malformed input makes a tap give
//! up quietly; the bytes flow on unchanged either way.
//!
//! The same scan counts tool calls and, when `[genai] capture_content` is
//! on, captures the messages in bounded memory (`content`).

pub mod content;
mod json_scan;
mod request_scan;
mod response_tap;
mod routes;
mod tee;
mod tool_calls;

pub use content::{CaptureConfig, Rendered};
pub use request_scan::{RequestInfo, RequestScanner};
pub use response_tap::{GenAiUsage, ResponseTap};
pub use routes::{GenAiRoute, Operation, Provider};
pub use tool_calls::ToolCalls;
