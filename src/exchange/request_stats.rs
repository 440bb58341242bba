//! What the request body told on its way upstream, shared between the body
//! (which writes it) and the exchange's recorder (which reads it at the end).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::genai::{Rendered, RequestInfo};

/// Shared between the body (writer) and the exchange's recorder (reader).
#[derive(Debug, Default)]
pub struct RequestStats {
    bytes: AtomicU64,
    too_large: AtomicBool,
    /// `model` and `stream` of a GenAI request, as far as read so far.
    genai: Mutex<RequestInfo>,
    /// The captured messages, once the body has been read.
    input: Mutex<Option<Rendered>>,
}

impl RequestStats {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }

    pub fn genai(&self) -> RequestInfo {
        self.genai.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts `len` more bytes; returns the total so far.
    pub fn add_bytes(&self, len: u64) -> u64 {
        self.bytes.fetch_add(len, Ordering::Relaxed) + len
    }

    pub fn mark_too_large(&self) {
        self.too_large.store(true, Ordering::Relaxed);
    }

    pub fn set_genai(&self, info: RequestInfo) {
        *self.genai.lock().unwrap_or_else(|e| e.into_inner()) = info;
    }

    pub fn take_input(&self) -> Option<Rendered> {
        self.input.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn set_input(&self, input: Rendered) {
        *self.input.lock().unwrap_or_else(|e| e.into_inner()) = Some(input);
    }
}
