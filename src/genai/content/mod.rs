//! Opt-in capture of GenAI content (`[genai] capture_content`).
//!
//! Content is read by the same incremental scan as usage, never from a
//! buffered body: each direction's `Transcript` holds at most
//! `max_content_bytes`, is redacted ([`ContentRedactor`]) and rendered as
//! the GenAI conventions' JSON once, when its body ends.

mod redact;
mod request;
mod response;
mod transcript;

use std::sync::Arc;

pub use redact::{ContentRedactor, REDACTED};
pub(crate) use request::RequestContent;
pub(crate) use response::ResponseContent;
pub use transcript::Rendered;

use crate::config::Config;

/// What capture needs, built once per configuration.
#[derive(Debug)]
pub struct CaptureConfig {
    /// Bytes of JSON per direction.
    pub max_bytes: usize,
    pub redactor: ContentRedactor,
}

impl CaptureConfig {
    /// `None` unless `[genai] capture_content` is on; fails on a redaction
    /// pattern that does not compile (validation reports it first).
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>, regex::Error> {
        if !config.genai.enabled || !config.genai.capture_content {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self {
            max_bytes: usize::try_from(config.genai.max_content_bytes.0).unwrap_or(usize::MAX),
            redactor: ContentRedactor::new(config)?,
        })))
    }
}
